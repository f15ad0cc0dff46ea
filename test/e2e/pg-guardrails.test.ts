import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { describeQuery, loadSqlParser } from '../../sidecar/src/sql/normalize.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { redTeamCases } from '../support/redteam.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/** The red-team cases of ../shared/redteam, copied into the repository so CI needs nothing beside it. */
const CASES = redTeamCases('postgres');

const SCHEMA = `
DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS customers;
CREATE TABLE customers(id int, name text, email text, ssn text, phone text, card text, notes text);
CREATE TABLE orders(id int, customer_id int, amount numeric, shipped_to text);
INSERT INTO customers VALUES (1,'Alice Smith','alice@example.com','123-45-6789','+1-555-0100','4111111111111111','vip'),(2,'Bob Jones','bob@example.com','987-65-4321','+1-555-0199','5500000000000004','test');
INSERT INTO orders VALUES (1,1,10.5,'1 Main St'),(2,2,20,'2 Oak Ave');
ANALYZE customers; ANALYZE orders;`;

const pgInfo = inject('postgres');
const DATABASE = 'redteam_guardrails';
let proxy: ProxyProcess;
let admin: pg.Client;

/** Everything a blocked statement could have changed: both tables' rows, and that no function or view appeared. */
async function snapshot(): Promise<string> {
  const rows = await admin.query(
    `SELECT (SELECT json_agg(c ORDER BY id) FROM customers c)::text AS c, (SELECT json_agg(o ORDER BY id) FROM orders o)::text AS o,
            (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)::int AS procs`,
  );
  return JSON.stringify(rows.rows[0]);
}

async function client(
  database = DATABASE,
  port = proxy.port,
  user = 'demo',
  password = 'demo-secret',
): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, database, user, password });
  await c.connect();
  c.on('error', () => {});
  return c;
}

// Which cases are single statements (and so also go through the extended protocol) is known at collection.
await loadSqlParser();

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(SCHEMA);
  const config = localProxyConfig(pgInfo);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    // The policy documents follow the proxy document in the same file.
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

const single = (sql: string) => describeQuery(sql).length === 1;
/** node-postgres sends a query without parameters in the simple protocol unless told otherwise. */
const extended = (text: string) => ({ text, queryMode: 'extended' }) as pg.QueryConfig;

describe('red-team block cases are refused before they reach the database', () => {
  const blocks = CASES.filter((c) => c.expect === 'block');
  it.each(blocks.map((c) => [c.id, c] as const))('%s (simple protocol)', async (_id, testCase) => {
    const before = await snapshot();
    const c = await client();
    try {
      const error = (await c.query(testCase.sql).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; message?: string } | undefined;
      expect(error?.code).toBe('42501');
      expect(error?.message).toMatch(/Gatehouse/);
      // The session stays usable.
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it.each(blocks.filter((c) => single(c.sql)).map((c) => [c.id, c] as const))(
    '%s (extended protocol)',
    async (_id, testCase) => {
      const before = await snapshot();
      const c = await client();
      try {
        const error = (await c.query(extended(testCase.sql)).then(
          () => undefined,
          (e: unknown) => e,
        )) as { code?: string } | undefined;
        expect(error?.code).toBe('42501');
        expect((await c.query({ text: 'SELECT $1::int AS one', values: [1] })).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
      expect(await snapshot()).toBe(before);
    },
  );

  it('leaves a transaction in the state the server itself would: aborted, then usable after ROLLBACK', async () => {
    const c = await client();
    try {
      await c.query('BEGIN');
      await c.query("UPDATE customers SET notes = 'touched' WHERE id = 1");
      const error = (await c.query('DROP TABLE customers').catch((e: unknown) => e)) as { code?: string };
      expect(error.code).toBe('42501');
      const aborted = (await c.query('SELECT 1').catch((e: unknown) => e)) as { code?: string };
      expect(aborted.code).toBe('25P02');
      await c.query('ROLLBACK');
      expect((await c.query('SELECT notes FROM customers WHERE id = 1')).rows[0].notes).toBe('vip');
    } finally {
      await c.end();
    }
  });
});

describe('red-team allow cases run and return what PostgreSQL returns', () => {
  const allows = CASES.filter((c) => c.expect === 'allow');
  it.each(allows.map((c) => [c.id, c] as const))('%s', async (_id, testCase) => {
    const through = await client();
    const direct = new pg.Client({
      host: pgInfo.host,
      port: pgInfo.port,
      database: DATABASE,
      user: pgInfo.admin.user,
      password: pgInfo.admin.password,
    });
    await direct.connect();
    try {
      const viaProxy = await through.query(testCase.sql);
      const viaDirect = await direct.query(testCase.sql);
      const shape = (r: pg.QueryResult | pg.QueryResult[]) =>
        (Array.isArray(r) ? r : [r]).map((x) => ({ command: x.command, rowCount: x.rowCount, rows: x.rows }));
      expect(shape(viaProxy)).toEqual(shape(viaDirect));
    } finally {
      await through.end();
      await direct.end();
    }
  });
});

describe('who may connect', () => {
  it('refuses a session to an identity no DatabaseAccess names, with 28000, and audits it', async () => {
    const refused = await client(DATABASE, proxy.port, 'admin', 'admin-secret').then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    expect(refused?.code).toBe('28000');
    expect(refused?.message).toBe(
      `Gatehouse: no DatabaseAccess grants local:admin access to database "${DATABASE}"`,
    );
    await expect
      .poll(() => readFileSync(proxy.auditFile!, 'utf8'))
      .toMatch(/"type":"connection.refused".*"user":"admin".*"sqlstate":"28000"/);
  });
});

describe('policy hot reload', () => {
  it('applies a changed policy without a restart, keeps sessions, and refuses an invalid one', async () => {
    const access = (guardrails: string[]) =>
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write', 'ddl'],
        guardrails,
      });
    const noDrop = policyDocument('Guardrail', 'no-drop', {
      rules: [{ name: 'drop', kinds: ['drop'], action: 'block' }],
    });
    const config = localProxyConfig(pgInfo);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const reloading = await startProxyProcess(config, { extraDocuments: [noDrop, access([])] });
    const file = join(reloading.dir, 'gatehouse.yaml');
    const original = readFileSync(file, 'utf8');
    const session = await client(DATABASE, reloading.port);
    try {
      await session.query('CREATE TABLE IF NOT EXISTS reload_probe(x int)');
      await session.query('DROP TABLE reload_probe');

      writeFileSync(file, original.replace('guardrails: []', 'guardrails:\n    - no-drop'));
      let refused: { code?: string } | undefined;
      for (let i = 0; i < 50 && refused?.code !== '42501'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await session.query('CREATE TABLE IF NOT EXISTS reload_probe(x int)');
        refused = (await session.query('DROP TABLE reload_probe').then(
          () => undefined,
          (e: unknown) => e,
        )) as typeof refused;
      }
      // The same session, opened before the change, is now held to it.
      expect(refused?.code).toBe('42501');

      writeFileSync(
        file,
        `${readFileSync(file, 'utf8')}---\nkind: Guardrail\nmetadata: {name: broken}\nspec: {rules: [{name: x, kinds: [nope], action: block}]}\n`,
      );
      await new Promise((r) => setTimeout(r, 600));
      expect(reloading.lines.join('\n')).toContain('policy reload refused');
      const still = (await session.query('DROP TABLE reload_probe').then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string };
      expect(still.code).toBe('42501');
    } finally {
      await session.end();
      await reloading.stop();
    }
  });
});

describe('warn and dryRun', () => {
  it('lets a warned statement run with a NOTICE, and audits what a dry-run rule would have done', async () => {
    const config = localProxyConfig(pgInfo);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const watched = await startProxyProcess(config, {
      extraDocuments: [
        policyDocument('Guardrail', 'watch-alter', {
          rules: [{ name: 'alter', kinds: ['alter'], action: 'warn', message: 'ALTER is being watched.' }],
        }),
        policyDocument('Guardrail', 'trial', {
          mode: 'dryRun',
          rules: [{ name: 'no-drop', kinds: ['drop'], action: 'block' }],
        }),
        policyDocument('DatabaseAccess', 'demo', {
          subjects: [localUser('demo')],
          allow: ['read', 'write', 'ddl'],
          guardrails: ['watch-alter', 'trial'],
        }),
      ],
    });
    const c = await client(DATABASE, watched.port);
    try {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query('ALTER TABLE orders ADD COLUMN IF NOT EXISTS watched_note text');
      await c.query(extended('ALTER TABLE orders DROP COLUMN IF EXISTS watched_note'));
      expect(notices.filter((n) => n.includes('ALTER is being watched.'))).toHaveLength(2);
      await c.query('CREATE TABLE IF NOT EXISTS dry_run_probe(x int)');
      await c.query('DROP TABLE dry_run_probe');
    } finally {
      await c.end();
      await watched.stop();
    }
    const records = readFileSync(watched.auditFile!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const drop = records.find(
      (r) => r['type'] === 'statement' && r['statement'] === 'DROP TABLE dry_run_probe',
    );
    expect(drop).toMatchObject({ outcome: 'ok', reason: 'dry run: trial/no-drop would block' });
    const alter = records.find(
      (r) => r['type'] === 'statement' && String(r['statement']).startsWith('ALTER TABLE orders DROP'),
    );
    expect(alter).toMatchObject({
      outcome: 'ok',
      via: 'extended',
      reason: 'dry run: trial/no-drop would block; warning: watch-alter/alter',
    });
  });
});
