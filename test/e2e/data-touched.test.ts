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
    INSERT INTO customers VALUES (1, 'gold', '123-45-6789');`);
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
      const page = JSON.parse(await query('--column', 'customers.ssn', '--format', 'json')) as {
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
      JSON.parse(await query('--column', 'customers.ssn', '--seen', 'clear', '--format', 'json')).items,
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
