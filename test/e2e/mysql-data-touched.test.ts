import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { freePort } from '../harness/free-port.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { type CollectorProcess, startCollectorProcess } from './support/collector-process.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * MySQL's side of data touched: a statement record names the tables its statement read or wrote and
 * the source columns of its output, and every record of a session carries the purpose and run id its
 * connection attributes declared; shipped to a real collector that answers `--column customers.ssn`.
 */

const run = promisify(execFile);
const server = inject('mariadb');
const DATABASE = 'touched_my';
const SHIPPER_TOKEN = 'e2e-touched-my-shipper-0123456789';
const READER = { name: 'lead', password: 'lead-secret' };
let proxy: ProxyProcess;
let collector: CollectorProcess | undefined;
let collectorPort: number;

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE}; USE ${DATABASE};
    CREATE TABLE customers(id int, plan text, ssn text);
    CREATE TABLE visits(id int);
    INSERT INTO customers VALUES (1, 'gold', '123-45-6789');
    INSERT INTO visits VALUES (1);
    CREATE VIEW customer_view AS SELECT id, ssn FROM customers;
    CREATE VIEW customer_view_listed (key_id, renamed) AS SELECT id, ssn FROM customers;
    CREATE FUNCTION ssn_of(n int) RETURNS text READS SQL DATA RETURN (SELECT ssn FROM customers WHERE id = n);`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  await admin.end();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-touched-my-e2e-'));
  collectorPort = await freePort();
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl('collector_touched_my_e2e') },
      auth: { shipperTokens: [{ value: SHIPPER_TOKEN }], localUsers: [READER] },
    }),
  );
  collector = await startCollectorProcess(join(dir, 'collector.yaml'), collectorPort);
  const config = mysqlProxyConfig(server, {
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
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        maskingPolicies: ['ssn'],
      }),
      // No MaskingPolicy: admin sees every column in clear, and its records still name them. The
      // MySQL guardrails read the stored function's body as admin statements.
      policyDocument('DatabaseAccess', 'admins', {
        subjects: [localUser('admin')],
        allow: ['read', 'write', 'ddl', 'admin'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await collector?.stop();
});

function statementRecords(): Record<string, unknown>[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((r) => r.type === 'statement');
}

describe('MySQL data touched', () => {
  it('names the tables and the source columns, masked and clear, and carries the declared purpose and run id', async () => {
    const client = await mysqlClient(proxy.port, {
      database: DATABASE,
      connectAttributes: { 'gatehouse.purpose': 'train\nchurn', 'gatehouse.run_id': 'run-9' },
    });
    const [rows] = await client.query('SELECT plan, ssn FROM customers');
    expect(JSON.stringify(rows)).not.toContain('123-45-6789');
    await client.query('INSERT INTO visits SELECT id FROM customers');
    await client.end();
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && records.length < 2; i++) {
      records = statementRecords().filter((r) => r.purpose !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const of = (prefix: string) => records.find((r) => String(r.statement).startsWith(prefix));
    expect(of('SELECT plan')).toMatchObject({
      purpose: 'trainchurn',
      runId: 'run-9',
      tablesRead: [expect.stringMatching(/customers$/)],
      columns: { [`${DATABASE}.customers.plan`]: 'clear', [`${DATABASE}.customers.ssn`]: 'redact' },
    });
    expect(of('INSERT INTO visits')).toMatchObject({
      tablesRead: [expect.stringMatching(/customers$/)],
      tablesWritten: [expect.stringMatching(/visits$/)],
    });
  });
});

/** Every way of reading customers.ssn a statement may take, each through the proxy as its own COM_QUERY. */
const SPELLINGS: readonly {
  readonly name: string;
  readonly sql: string;
  /** Recorded as `unknown` on this relation's `.*` rather than as customers.ssn. */
  readonly unknown?: string;
}[] = [
  { name: 'plain', sql: 'SELECT ssn FROM customers' },
  { name: 'alias', sql: 'SELECT x.ssn AS s FROM customers x' },
  { name: 'join', sql: 'SELECT v.id, c.ssn FROM visits v JOIN customers c ON c.id = v.id' },
  { name: 'subquery', sql: 'SELECT s FROM (SELECT ssn AS s FROM customers) q' },
  { name: 'CTE', sql: 'WITH c AS (SELECT ssn FROM customers) SELECT * FROM c' },
  { name: 'SELECT *', sql: 'SELECT * FROM customers' },
  { name: 'qualified *', sql: `SELECT c.* FROM ${DATABASE}.customers c JOIN visits USING (id)` },
  // Views are expanded through their definitions, as the stored-code catalog holds them.
  { name: 'view', sql: 'SELECT ssn FROM customer_view' },
  { name: 'view with a column list', sql: 'SELECT renamed FROM customer_view_listed' },
  { name: 'function-wrapped', sql: "SELECT CONCAT(UPPER(ssn), '') FROM customers" },
  { name: 'UNION', sql: 'SELECT plan FROM customers UNION ALL SELECT ssn FROM customers' },
  { name: 'stored function', sql: 'SELECT ssn_of(id) FROM customers', unknown: 'customers' },
];

describe('MySQL data touched by an identity that sees clear values', () => {
  it('attributes every spelling of a read of customers.ssn to the column, or marks it unknown', async () => {
    const client = await mysqlClient(proxy.port, {
      user: 'admin',
      password: 'admin-secret',
      database: DATABASE,
    });
    for (const { sql } of SPELLINGS) {
      const [rows] = await client.query(sql);
      expect(JSON.stringify(rows)).toContain('123-45-6789');
    }
    await client.end();
    let records: Record<string, unknown>[] = [];
    for (let i = 0; i < 100 && records.length < SPELLINGS.length; i++) {
      records = statementRecords().filter((r) => r.subject === 'local:admin' && r.command !== undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    records = records.filter((r) =>
      SPELLINGS.some((s) => String(r.statement).startsWith(s.sql.slice(0, 12))),
    );
    expect(records).toHaveLength(SPELLINGS.length);
    const ssn = `${DATABASE}.customers.ssn`;
    const table = `${DATABASE}.customers.*`;
    SPELLINGS.forEach((spelling, i) => {
      const columns = records[i]!.columns as Record<string, string> | undefined;
      const how = spelling.unknown
        ? columns?.[`${DATABASE}.${spelling.unknown}.*`]
        : (columns?.[ssn] ?? columns?.[table]);
      expect({ spelling: spelling.name, how }).toEqual({
        spelling: spelling.name,
        how: spelling.unknown ? 'unknown' : 'clear',
      });
    });
    expect(records[0]!.columns).toEqual({ [ssn]: 'clear' });
    expect(records[SPELLINGS.length - 1]!.columns).not.toHaveProperty([ssn]);

    const auth = `Basic ${Buffer.from(`${READER.name}:${READER.password}`).toString('base64')}`;
    const touched = await (async () => {
      for (let i = 0; ; i++) {
        const response = await fetch(
          `http://127.0.0.1:${collectorPort}/v1/touched?column=customers.ssn&seen=clear&subject=local:admin`,
          { headers: { authorization: auth } },
        );
        const body = (await response.json()) as { columns: { column: string; clear: number }[] };
        if (body.columns.reduce((sum, c) => sum + c.clear, 0) >= SPELLINGS.length - 1 || i > 200) return body;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    expect(touched.columns).toEqual([
      expect.objectContaining({ column: table, clear: 1 }),
      expect.objectContaining({ column: ssn, clear: SPELLINGS.filter((s) => !s.unknown).length }),
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
    // A read of customers that lineage could not trace to its columns counts as possibly this column.
    expect(items).toHaveLength(SPELLINGS.filter((s) => !s.unknown || s.unknown === 'customers').length);
    expect(new Set(items.map((i) => i.subject))).toEqual(new Set(['local:admin']));
  });
});
