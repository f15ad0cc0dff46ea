import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { freePort } from '../harness/free-port.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig, proxyDsn, psql } from './support/clients.ts';
import { type CollectorProcess, startCollectorProcess } from './support/collector-process.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * What data a statement touched, end to end: psql through a proxy with a masking policy, whose
 * statement records name the tables and the source columns, clear or masked, and the purpose and run
 * id the session declared; shipped to a real collector that answers `--column customers.ssn`.
 */

const run = promisify(execFile);
const pgInfo = inject('postgres');
const DATABASE = 'data_touched_e2e';
const SHIPPER_TOKEN = 'e2e-touched-shipper-0123456789';
const READER = { name: 'lead', password: 'lead-secret' };
let admin: pg.Client;
let collector: CollectorProcess | undefined;
let proxy: ProxyProcess | undefined;
let collectorPort: number;

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE customers(id int, plan text, ssn text);
    CREATE TABLE visits(id int);
    INSERT INTO customers VALUES (1, 'gold', '123-45-6789');
    INSERT INTO visits VALUES (1);
    CREATE VIEW customer_view AS SELECT id, ssn FROM customers;
    CREATE FUNCTION ssn_of(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT ssn FROM customers WHERE id = $1';`);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-touched-e2e-'));
  collectorPort = await freePort();
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl('collector_touched_e2e') },
      auth: { shipperTokens: [{ value: SHIPPER_TOKEN }], localUsers: [READER] },
    }),
  );
  collector = await startCollectorProcess(join(dir, 'collector.yaml'), collectorPort);
  const config = localProxyConfig(pgInfo, {
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    audit: {
      file: 'audit.jsonl',
      stdout: false,
      ship: {
        url: `http://127.0.0.1:${collectorPort}`,
        token: SHIPPER_TOKEN,
        cluster: 'e2e',
        pod: 'proxy-0',
      },
    },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'ssn', { rules: [{ columns: ['customers.ssn'], method: 'redact' }] }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        maskingPolicies: ['ssn'],
      }),
      // No MaskingPolicy: admin sees every column in clear, and its records still name them.
      policyDocument('DatabaseAccess', 'admins', {
        subjects: [localUser('admin')],
        allow: ['read', 'write'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await collector?.stop();
  await admin?.end();
});

/** The statement records of the proxy's audit file whose text starts with `prefix`. */
function statementRecords(prefix: string): Record<string, unknown>[] {
  return readFileSync(proxy!.auditFile!, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((r) => r.type === 'statement' && String(r.statement).startsWith(prefix));
}

async function eventually<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('data touched', () => {
  it('names the tables and the source columns a SELECT read, masked and clear', async () => {
    const out = await psql(
      proxyDsn(proxy!.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`),
      ['-Atc', 'SELECT plan, ssn FROM customers'],
    );
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('gold');
    expect(out.stdout).not.toContain('123-45-6789');
    const [record] = await eventually(() => {
      const found = statementRecords('SELECT plan, ssn');
      return found.length > 0 ? found : undefined;
    });
    expect(record).toMatchObject({
      subject: 'local:demo',
      outcome: 'ok',
      tablesRead: ['public.customers'],
      columns: { 'public.customers.plan': 'clear', 'public.customers.ssn': 'redact' },
    });
  });

  it('records the purpose and run id a session declares, at startup and by SET', async () => {
    const dsn = proxyDsn(proxy!.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
    const out = await psql(
      `${dsn} options='-c gatehouse.purpose=train\\\\ churn -c gatehouse.run_id=run-1'`,
      [],
      {
        input: [
          'SELECT id FROM customers;',
          "SET gatehouse.run_id = 'run-2';",
          'SELECT plan FROM customers;',
          'RESET gatehouse.purpose;',
          'SELECT count(*) FROM customers;',
          "SELECT current_setting('gatehouse.run_id', true) AS upstream;",
        ].join('\n'),
      },
    );
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    // The SET was answered as the server answers one, and never reached it.
    expect(out.stdout).toContain('SET');
    expect(out.stdout).not.toMatch(/run-2/);
    const records = await eventually(() => {
      const found = statementRecords('SELECT current_setting');
      return found.length > 0 ? statementRecords('') : undefined;
    });
    const of = (prefix: string) => records.find((r) => String(r.statement).startsWith(prefix))!;
    expect(of('SELECT id')).toMatchObject({ purpose: 'train churn', runId: 'run-1' });
    expect(of('SET gatehouse.run_id')).toMatchObject({
      command: 'SET',
      purpose: 'train churn',
      runId: 'run-2',
    });
    expect(of('SELECT plan FROM')).toMatchObject({ purpose: 'train churn', runId: 'run-2' });
    expect(of('SELECT count')).toMatchObject({ runId: 'run-2' });
    expect(of('SELECT count')).not.toHaveProperty('purpose');
  });

  it('refuses a SET of the purpose the audit would not see as the client meant it', async () => {
    const dsn = proxyDsn(proxy!.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
    for (const sql of ["SET LOCAL gatehouse.purpose = 'x'", "SET gatehouse.purpose = 'x'; SELECT 1"]) {
      const out = await psql(dsn, ['-c', sql]);
      expect(out.code).not.toBe(0);
      expect(out.stderr).toMatch(/Gatehouse reads SET gatehouse.purpose/);
    }
  });

  it('answers gatehouse audit query --column customers.ssn with who read it, and how', async () => {
    const query = async (...args: string[]) =>
      (
        await run(
          process.execPath,
          [
            '--liftoff-only',
            MAIN,
            'audit',
            'query',
            ...args,
            '--server',
            `http://127.0.0.1:${collectorPort}`,
            '--user',
            READER.name,
          ],
          { env: { ...process.env, GATEHOUSE_PASSWORD: READER.password } },
        )
      ).stdout;
    const answer = await eventually(async () => {
      const page = JSON.parse(
        await query('--column', 'customers.ssn', '--subject', 'local:demo', '--format', 'json'),
      ) as {
        items: { subject: string; columns: Record<string, string>; statement: string }[];
      };
      return page.items.length > 0 ? page : undefined;
    });
    expect(answer.items).toEqual([
      expect.objectContaining({
        subject: 'local:demo',
        statement: expect.stringMatching(/^SELECT plan, ssn FROM customers/),
        columns: { 'public.customers.plan': 'clear', 'public.customers.ssn': 'redact' },
      }),
    ]);
    expect(
      JSON.parse(
        await query(
          '--column',
          'customers.ssn',
          '--seen',
          'clear',
          '--subject',
          'local:demo',
          '--format',
          'json',
        ),
      ).items,
    ).toEqual([]);
    const runs = JSON.parse(await query('--run-id', 'run-2', '--table', 'customers', '--format', 'json')) as {
      items: { statement: string }[];
    };
    expect(runs.items.map((i) => i.statement)).toEqual([
      expect.stringMatching(/^SELECT count/),
      expect.stringMatching(/^SELECT plan FROM/),
    ]);
    expect(await query('--column', 'customers.ssn')).toMatch(
      /local:demo .*public\.customers\.ssn \(redact\)/,
    );
  });
});

/** Every way of reading customers.ssn a statement may take, each through the proxy as its own Query. */
const SPELLINGS: readonly { readonly name: string; readonly sql: string; readonly unknown?: true }[] = [
  { name: 'plain', sql: 'SELECT ssn FROM customers' },
  { name: 'alias', sql: 'SELECT x.ssn AS s FROM customers x' },
  { name: 'join', sql: 'SELECT v.id, c.ssn FROM visits v JOIN customers c ON c.id = v.id' },
  { name: 'subquery', sql: 'SELECT s FROM (SELECT ssn AS s FROM customers) q' },
  { name: 'CTE', sql: 'WITH c AS (SELECT ssn FROM customers) SELECT * FROM c' },
  { name: 'SELECT *', sql: 'SELECT * FROM customers' },
  { name: 'qualified *', sql: 'SELECT c.* FROM public.customers c JOIN visits USING (id)' },
  { name: 'view', sql: 'SELECT ssn FROM customer_view' },
  { name: 'function-wrapped', sql: "SELECT upper(ssn) || '' FROM customers" },
  { name: 'whole row', sql: 'SELECT row_to_json(c) FROM customers c' },
  { name: 'UNION', sql: 'SELECT plan FROM customers UNION ALL SELECT ssn FROM customers' },
  { name: 'stored function', sql: 'SELECT ssn_of(id) FROM customers', unknown: true },
];

describe('data touched by an identity that sees clear values', () => {
  it('attributes every spelling of a read of customers.ssn to the column, or marks it unknown', async () => {
    const dsn = proxyDsn(proxy!.port, 'admin', 'admin-secret').replace('dbname=app', `dbname=${DATABASE}`);
    const out = await psql(dsn, ['-At'], { input: SPELLINGS.map((s) => `${s.sql};`).join('\n') });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('123-45-6789');
    const records = await eventually(() => {
      const found = statementRecords('').filter((r) => r.subject === 'local:admin');
      return found.length >= SPELLINGS.length ? found : undefined;
    });
    SPELLINGS.forEach((spelling, i) => {
      const columns = records[i]!.columns as Record<string, string> | undefined;
      const how = spelling.unknown
        ? columns?.['public.customers.*']
        : (columns?.['public.customers.ssn'] ?? columns?.['public.customers.*']);
      expect({ spelling: spelling.name, how }).toEqual({
        spelling: spelling.name,
        how: spelling.unknown ? 'unknown' : 'clear',
      });
      expect(records[i]!.tablesRead).toContain('public.customers');
    });
    // A column that passes through stays named; no record claims the untraced one clear.
    expect(records[0]!.columns).toEqual({ 'public.customers.ssn': 'clear' });
    expect(records[SPELLINGS.length - 1]!.columns).not.toHaveProperty(['public.customers.ssn']);

    const auth = `Basic ${Buffer.from(`${READER.name}:${READER.password}`).toString('base64')}`;
    const touched = await eventually(async () => {
      const response = await fetch(
        `http://127.0.0.1:${collectorPort}/v1/touched?column=customers.ssn&seen=clear&subject=local:admin`,
        { headers: { authorization: auth } },
      );
      const body = (await response.json()) as { columns: { column: string; clear: number }[] };
      const total = body.columns.reduce((sum, c) => sum + c.clear, 0);
      return total >= SPELLINGS.length ? body : undefined;
    });
    expect(touched.columns).toEqual([
      expect.objectContaining({ column: 'public.customers.*', clear: 1 }),
      expect.objectContaining({ column: 'public.customers.ssn', clear: SPELLINGS.length - 1 }),
    ]);
    const cli = await run(
      process.execPath,
      [
        '--liftoff-only',
        MAIN,
        'audit',
        'query',
        '--column',
        'customers.ssn',
        '--seen',
        'clear',
        '--format',
        'json',
        '--server',
        `http://127.0.0.1:${collectorPort}`,
        '--user',
        READER.name,
      ],
      { env: { ...process.env, GATEHOUSE_PASSWORD: READER.password } },
    );
    const items = (JSON.parse(cli.stdout) as { items: { subject: string }[] }).items;
    expect(items).toHaveLength(SPELLINGS.length);
    expect(new Set(items.map((i) => i.subject))).toEqual(new Set(['local:admin']));
  });
});
