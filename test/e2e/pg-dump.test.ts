import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directClient, localProxyConfig, psql } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The real pg_dump (Debian's PostgreSQL 15) through the proxy: an identity allowed to read and write
 * gets the whole database; one that sees masked values gets a dump whose masked columns hold masked
 * values (pg_dump reads table data with `COPY ... TO stdout`) and that restores.
 */
const pgInfo = inject('postgres');
const DATABASE = 'dump_through_proxy';
const RESTORED = 'dump_restored';
let proxy: ProxyProcess;

const SCHEMA = `
CREATE TABLE customers(id int PRIMARY KEY, name text NOT NULL, email text, ssn varchar(11), note text DEFAULT 'none');
CREATE TABLE orders(id int PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric, memo text);
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 15;
CREATE SEQUENCE invoice_seq;
INSERT INTO customers VALUES
  (1, 'Alice Smith', 'alice@example.com', '123-45-6789', E'vip\\tgold\\\\club'),
  (2, 'Bob Jones', 'bob@example.com', '987-65-4321', NULL);
INSERT INTO orders VALUES (1, 1, 10.5, E'two\\nlines'), (2, 2, 20, NULL);
ANALYZE customers; ANALYZE orders;`;

const PII = [
  'Alice Smith',
  'alice@example.com',
  '123-45-6789',
  'Bob Jones',
  'bob@example.com',
  '987-65-4321',
];
const PIECES = ['alice', 'smith', 'jones', '45-6789', '65-4321'];

function leaks(text: string): string[] {
  const lower = text.toLowerCase();
  return [...PII, ...PIECES].filter((value) => lower.includes(value.toLowerCase()));
}

beforeAll(async () => {
  const bootstrap = await directClient(pgInfo);
  for (const name of [DATABASE, RESTORED]) {
    await bootstrap.query(`DROP DATABASE IF EXISTS ${name}`);
    await bootstrap.query(`CREATE DATABASE ${name}`);
  }
  await bootstrap.end();
  const owner = await directClient({ ...pgInfo, database: DATABASE });
  await owner.query(SCHEMA);
  await owner.end();
  const config = localProxyConfig(pgInfo, {
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'pii', {
        autoDetect: true,
        rules: [{ columns: ['customers.email'], method: 'tokenize' }],
      }),
      policyDocument('DatabaseAccess', 'readers', {
        subjects: [localUser('demo')],
        allow: ['read'],
        maskingPolicies: ['pii'],
      }),
      policyDocument('DatabaseAccess', 'admin', {
        subjects: [localUser('admin')],
        allow: ['read', 'write', 'ddl'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
});

function pgDump(name: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const dsn = `host=127.0.0.1 port=${proxy.port} dbname=${DATABASE} user=${name} password=${name}-secret sslmode=disable`;
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/pg_dump', [...args, dsn], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? -1 });
    });
  });
}

/** The data lines of `COPY public.<table> ... FROM stdin;` in a plain-format dump. */
function copyRows(dump: string, table: string): string[] {
  const start = dump.indexOf(`COPY public.${table} `);
  if (start < 0) return [];
  const body = dump.slice(dump.indexOf('\n', start) + 1);
  return body.slice(0, body.indexOf('\n\\.\n')).split('\n');
}

const proxyDsn = (name: string) =>
  `host=127.0.0.1 port=${proxy.port} dbname=${DATABASE} user=${name} password=${name}-secret sslmode=disable`;

describe('pg_dump through the proxy', () => {
  it('dumps everything in clear for an identity allowed read, write and ddl', async () => {
    const dump = await pgDump('admin', []);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain('CREATE TABLE public.customers');
    expect(dump.stdout).toContain('CREATE VIEW public.big_orders');
    expect(copyRows(dump.stdout, 'customers')).toEqual([
      '1\tAlice Smith\talice@example.com\t123-45-6789\tvip\\tgold\\\\club',
      '2\tBob Jones\tbob@example.com\t987-65-4321\t\\N',
    ]);
  });

  it.each([[['--data-only']], [['--schema-only']]])('admin: pg_dump %s', async (args) => {
    const dump = await pgDump('admin', args);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(dump.stdout.includes('CREATE TABLE')).toBe(args[0] === '--schema-only');
    expect(dump.stdout.includes('alice@example.com')).toBe(args[0] === '--data-only');
  });

  it('dumps masked values for a read-only identity under a masking policy, and the dump restores', async () => {
    const dump = await pgDump('demo', []);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(leaks(dump.stdout + dump.stderr)).toEqual([]);
    const customers = copyRows(dump.stdout, 'customers').map((line) => line.split('\t'));
    expect(customers.map((row) => row[0])).toEqual(['1', '2']);
    // Masked like a SELECT of the column; clear columns pass byte for byte, escapes and all.
    expect(customers.map((row) => row[1])).toEqual(['****', '****']);
    const selected = await psql(proxyDsn('demo'), [
      '-At',
      '-F',
      '\t',
      '-c',
      'SELECT email, ssn FROM customers ORDER BY id',
    ]);
    expect(selected.stderr).toBe('');
    expect(customers.map((row) => `${row[2]}\t${row[3]}`).join('\n')).toBe(selected.stdout.trim());
    expect(customers.map((row) => row[4])).toEqual(['vip\\tgold\\\\club', '\\N']);
    expect(copyRows(dump.stdout, 'orders')).toEqual(['1\t1\t10.5\ttwo\\nlines', '2\t2\t20\t\\N']);

    // What the masked identity dumped is a database again (loaded straight into PostgreSQL).
    const restore = await psql(
      `host=${pgInfo.host} port=${pgInfo.port} dbname=${RESTORED} user=${pgInfo.admin.user} password=${pgInfo.admin.password} sslmode=disable`,
      [],
      { input: dump.stdout },
    );
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const restored = await directClient({ ...pgInfo, database: RESTORED });
    try {
      const { rows } = await restored.query('SELECT id, name, note FROM customers ORDER BY id');
      expect(rows).toEqual([
        { id: 1, name: '****', note: 'vip\tgold\\club' },
        { id: 2, name: '****', note: null },
      ]);
    } finally {
      await restored.end();
    }
  });

  it.each([[['--data-only']], [['--schema-only']]])('masked identity: pg_dump %s', async (args) => {
    const dump = await pgDump('demo', args);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(leaks(dump.stdout)).toEqual([]);
    expect(copyRows(dump.stdout, 'customers').length).toBe(args[0] === '--data-only' ? 2 : 0);
  });

  it("shows catalog metadata in clear to a masked identity, but not other sessions' statement texts", async () => {
    const columns = await psql(proxyDsn('demo'), [
      '-At',
      '-c',
      "SELECT column_name || ' ' || coalesce(column_default, '-') FROM information_schema.columns WHERE table_name = 'customers' ORDER BY ordinal_position",
    ]);
    expect(columns.stderr).toBe('');
    expect(columns.stdout.trim().split('\n')).toEqual([
      'id -',
      'name -',
      'email -',
      'ssn -',
      "note 'none'::text",
    ]);
    const described = await psql(proxyDsn('demo'), ['-c', '\\d customers']);
    expect(described.stderr).toBe('');
    expect(described.stdout).toContain('customers_pkey');
    const activity = await psql(proxyDsn('demo'), [
      '-At',
      '-c',
      "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid() AND 'Alice Smith' <> ''",
    ]);
    expect(activity.stderr).toBe('');
    expect(activity.stdout.trim()).toBe('****');
  });

  it('masks COPY TO STDOUT of masked columns in text format, and refuses the formats it cannot mask', async () => {
    const text = await psql(proxyDsn('demo'), ['-c', 'COPY customers (ssn, id) TO STDOUT']);
    expect(text.stderr).toBe('');
    expect(text.stdout).toBe('****\t1\n****\t2\n');
    const query = await psql(proxyDsn('demo'), ['-c', 'COPY (SELECT name, id FROM customers) TO STDOUT']);
    expect(query.stderr).toBe('');
    // The query's column types are not in the catalog: masked cells become NULL.
    expect(query.stdout).toBe('\\N\t1\n\\N\t2\n');
    for (const options of ['(FORMAT csv)', '(FORMAT binary)', "(DELIMITER ',')"]) {
      const refused = await psql(proxyDsn('demo'), ['-c', `COPY customers TO STDOUT ${options}`]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/refuses this statement/);
      expect(leaks(refused.stdout + refused.stderr)).toEqual([]);
    }
  });
});
