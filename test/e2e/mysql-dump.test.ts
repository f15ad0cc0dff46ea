import { spawn } from 'node:child_process';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * Debian's mariadb-dump through the proxy, and the catalog metadata introspection reads: an identity
 * allowed read, write and ddl dumps everything; one that sees masked values dumps masked values (and
 * catalog metadata in clear), and the dump restores.
 */
const DATABASE = 'dump_mysql';
const RESTORED = 'dump_mysql_restored';
const SCHEMA = `DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE}; USE ${DATABASE};
DROP DATABASE IF EXISTS ${RESTORED}; CREATE DATABASE ${RESTORED};
CREATE TABLE customers(id int PRIMARY KEY, name text NOT NULL, email varchar(100), ssn varchar(11), note text DEFAULT 'none' COMMENT 'free text');
CREATE TABLE orders(id int PRIMARY KEY, customer_id int, amount decimal(10,2), memo text, FOREIGN KEY (customer_id) REFERENCES customers(id));
INSERT INTO customers VALUES (1,'Alice Smith','alice@example.com','123-45-6789','vip\\tgold'),(2,'Bob Jones','bob@example.com','987-65-4321',NULL);
INSERT INTO orders VALUES (1,1,10.5,'two\\nlines'),(2,2,20,NULL);
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 15;`;

const PII = [
  'Alice Smith',
  'alice@example.com',
  '123-45-6789',
  'Bob Jones',
  'bob@example.com',
  '987-65-4321',
];
const PIECES = ['alice', 'smith', 'jones', '45-6789', '65-4321'];
const leaks = (text: string) =>
  [...PII, ...PIECES].filter((value) => text.toLowerCase().includes(value.toLowerCase()));

const server = inject('mariadb');
let proxy: ProxyProcess;

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(SCHEMA);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  await admin.end();
  const config = mysqlProxyConfig(server, {
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'pii', { autoDetect: true }),
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

function run(
  program: string,
  args: string[],
  input = '',
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
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
    child.stdin.end(input);
  });
}

const mariadbDump = (name: string, args: string[] = []) =>
  run('/usr/bin/mariadb-dump', [
    '--no-defaults',
    '--protocol=tcp',
    '-h',
    '127.0.0.1',
    '-P',
    String(proxy.port),
    '-u',
    name,
    `-p${name}-secret`,
    '--skip-ssl',
    ...args,
    DATABASE,
  ]);

/** The `(...)` rows of `INSERT INTO \`table\` VALUES` in a dump. */
function insertedRows(dump: string, table: string): string[] {
  const start = dump.indexOf(`INSERT INTO \`${table}\` VALUES`);
  if (start < 0) return [];
  const body = dump.slice(dump.indexOf('\n', start) + 1);
  return body
    .slice(0, body.indexOf(';\n'))
    .split('\n')
    .map((line) => line.replace(/,$/, ''));
}

describe('mariadb-dump through the proxy', () => {
  it('dumps everything in clear for an identity allowed read, write and ddl', async () => {
    const dump = await mariadbDump('admin');
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain('CREATE TABLE `customers`');
    expect(insertedRows(dump.stdout, 'customers')).toEqual([
      "(1,'Alice Smith','alice@example.com','123-45-6789','vip\tgold')",
      "(2,'Bob Jones','bob@example.com','987-65-4321',NULL)",
    ]);
  });

  it('dumps masked values and clear metadata for a read-only masked identity, and the dump restores', async () => {
    const dump = await mariadbDump('demo');
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(leaks(dump.stdout)).toEqual([]);
    // The schema is metadata: names, types, defaults and comments in clear.
    expect(dump.stdout).toContain("`note` text DEFAULT 'none' COMMENT 'free text'");
    expect(dump.stdout).toContain('CREATE TABLE `orders`');
    expect(dump.stdout).toContain('VIEW `big_orders` AS select');
    // Masked columns masked, the others (ids, amounts, text with escapes) as they are.
    expect(insertedRows(dump.stdout, 'customers')).toEqual([
      "(1,'****','****','****','vip\tgold')",
      "(2,'****','****','****',NULL)",
    ]);
    expect(insertedRows(dump.stdout, 'orders')).toEqual(["(1,1,10.50,'two\\nlines')", '(2,2,20.00,NULL)']);

    const restore = await run(
      '/usr/bin/mariadb',
      [
        '--no-defaults',
        '--protocol=tcp',
        '-h',
        server.host,
        '-P',
        String(server.port),
        '-u',
        server.admin.user,
        `-p${server.admin.password}`,
        '--skip-ssl',
        RESTORED,
      ],
      dump.stdout,
    );
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const direct = await directMysql(server, RESTORED);
    try {
      const [rows] = await direct.query('SELECT id, name, note FROM customers ORDER BY id');
      expect(rows).toEqual([
        { id: 1, name: '****', note: 'vip\tgold' },
        { id: 2, name: '****', note: null },
      ]);
    } finally {
      await direct.end();
    }
  });

  it.each([['--no-data'], ['--no-create-info']])('masked identity: mariadb-dump %s', async (option) => {
    const dump = await mariadbDump('demo', [option]);
    expect(dump.stderr).toBe('');
    expect(dump.code).toBe(0);
    expect(leaks(dump.stdout)).toEqual([]);
    expect(dump.stdout.includes('CREATE TABLE `customers`')).toBe(option === '--no-data');
    expect(insertedRows(dump.stdout, 'customers').length).toBe(option === '--no-data' ? 0 : 2);
  });
});

describe('catalog metadata for a masked identity', () => {
  let c: mysql.Connection;
  beforeAll(async () => {
    c = await mysqlClient(proxy.port, { database: DATABASE });
  });
  afterAll(async () => {
    await c?.end();
  });
  const rows = async (sql: string) => (await c.query({ sql, rowsAsArray: true }))[0] as unknown[][];

  it('reads information_schema tables, columns and routines metadata in clear', async () => {
    expect(
      await rows(
        'SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME',
      ),
    ).toEqual([
      ['big_orders', 'VIEW', 'VIEW'],
      ['customers', 'BASE TABLE', ''],
      ['orders', 'BASE TABLE', ''],
    ]);
    expect(
      await rows(
        "SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'customers' ORDER BY ORDINAL_POSITION",
      ),
    ).toEqual([
      ['id', 'int', 'NO', null, ''],
      ['name', 'text', 'NO', null, ''],
      ['email', 'varchar', 'YES', 'NULL', ''],
      ['ssn', 'varchar', 'YES', 'NULL', ''],
      ['note', 'text', 'YES', "'none'", 'free text'],
    ]);
    expect(
      await rows(
        'SELECT k.COLUMN_NAME, k.REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE k WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL',
      ),
    ).toEqual([['customer_id', 'customers']]);
    expect(
      await rows("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql'"),
    ).toEqual([[expect.any(Number)]]);
  });

  it('shows tables, columns and CREATE TABLE in clear', async () => {
    expect(await rows('SHOW FULL TABLES')).toEqual([
      ['big_orders', 'VIEW'],
      ['customers', 'BASE TABLE'],
      ['orders', 'BASE TABLE'],
    ]);
    expect((await rows('SHOW FULL COLUMNS FROM customers')).map((r) => r[0])).toEqual([
      'id',
      'name',
      'email',
      'ssn',
      'note',
    ]);
    const create = (await rows('SHOW CREATE TABLE customers'))[0]?.[1];
    expect(create).toContain('`ssn` varchar(11)');
  });

  it('keeps relations that hold statement texts or values masked', async () => {
    const processes = await rows(
      "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID() AND 'Alice Smith' <> ''",
    );
    expect(processes).toEqual([['****']]);
    expect(await rows('SELECT name FROM customers WHERE id = 1')).toEqual([['****']]);
  });
});
