import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { directClient, localProxyConfig, pgbench, pgClient, proxyDsn, psql } from './support/clients.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const run = promisify(execFile);
const pgInfo = inject('postgres');
let proxy: ProxyProcess;

beforeAll(async () => {
  proxy = await startProxyProcess(localProxyConfig(pgInfo));
  const direct = await directClient(pgInfo);
  await direct.query(`DROP TABLE IF EXISTS t_items; CREATE TABLE t_items(id int primary key, name text)`);
  await direct.end();
});

afterAll(async () => {
  await proxy?.stop();
});

describe('through psql', () => {
  it('runs queries, several statements in one message, and reports errors with their SQLSTATE', async () => {
    const ok = await psql(proxyDsn(proxy.port), ['-At', '-c', "SELECT 41 + 1; SELECT 'two'"]);
    expect(ok.stderr).toBe('');
    expect(ok.stdout.trim().split('\n')).toEqual(['42', 'two']);

    const error = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1/0'], { env: { PGOPTIONS: '' } });
    expect(error.code).not.toBe(0);
    expect(error.stderr).toContain('division by zero');
    const verbose = await psql(proxyDsn(proxy.port), ['-v', 'VERBOSITY=verbose', '-c', 'SELECT 1/0']);
    expect(verbose.stderr).toContain('22012');
  });

  it('copies in and out (COPY FROM STDIN / TO STDOUT)', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `${i}\tname ${i}`).join('\n');
    const copyIn = await psql(
      proxyDsn(proxy.port),
      ['-c', 'TRUNCATE t_items', '-c', 'COPY t_items FROM STDIN'],
      { input: `${rows}\n\\.\n` },
    );
    expect(copyIn.stderr).toBe('');
    expect(copyIn.stdout).toContain('COPY 5000');
    const copyOut = await psql(proxyDsn(proxy.port), [
      '-c',
      'COPY (SELECT * FROM t_items ORDER BY id) TO STDOUT',
    ]);
    expect(copyOut.stdout.trim()).toBe(rows);
  });

  it('shows the identity to the database as application_name', async () => {
    const result = await psql(proxyDsn(proxy.port), [
      '-At',
      '-c',
      'SELECT current_setting($$application_name$$)',
    ]);
    expect(result.stdout.trim()).toBe('gatehouse:local:demo');
  });

  it('refuses a wrong password with 28P01 and an unknown flag at startup', async () => {
    const wrong = await psql(proxyDsn(proxy.port, 'demo', 'nope'), ['-c', 'SELECT 1']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/password authentication failed|authentication failed|invalid/i);
  });

  it('refuses an identity change through startup options', async () => {
    const result = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1'], {
      env: { PGOPTIONS: '-c role=pg_read_all_data' },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('changes the session identity');
  });
});

describe('through node-postgres', () => {
  it('speaks the simple and the extended protocol, named statements, transactions, notices and errors', async () => {
    const client = await pgClient(proxy.port);
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      const params = await client.query('SELECT $1::int + $2::int AS sum, $3::text AS t', [2, 3, 'x']);
      expect(params.rows).toEqual([{ sum: 5, t: 'x' }]);
      for (let i = 0; i < 3; i++) {
        const named = await client.query({ name: 'by-id', text: 'SELECT $1::int * 2 AS d', values: [i] });
        expect(named.rows[0].d).toBe(i * 2);
      }
      await client.query('BEGIN');
      await client.query("INSERT INTO t_items VALUES (100001, 'rolled back')");
      await client.query('ROLLBACK');
      expect((await client.query('SELECT count(*)::int AS n FROM t_items WHERE id = 100001')).rows[0].n).toBe(
        0,
      );

      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      await client.query(`DO $$BEGIN RAISE NOTICE 'hello from plpgsql'; END$$`);
      expect(notices).toContain('hello from plpgsql');

      const error = await client.query('SELECT * FROM no_such_table').catch((e: { code: string }) => e);
      expect((error as { code: string }).code).toBe('42P01');
      // The session is still usable after an error in the extended protocol.
      const again = await client.query('SELECT $1::text AS v', ['after']);
      expect(again.rows[0].v).toBe('after');
    } finally {
      await client.end();
    }
  });

  it('delivers NOTIFY to a listening session', async () => {
    const listener = await pgClient(proxy.port);
    const notifier = await pgClient(proxy.port, 'admin', 'admin-secret');
    try {
      await listener.query('LISTEN gatehouse_events');
      const received = new Promise<string>((resolve) =>
        listener.on('notification', (n) => resolve(n.payload ?? '')),
      );
      await notifier.query("NOTIFY gatehouse_events, 'payload-1'");
      expect(await received).toBe('payload-1');
    } finally {
      await listener.end();
      await notifier.end();
    }
  });
});

describe('through postgres.js', () => {
  it('pipelines prepared statements and cancels a running query', async () => {
    const sql = postgres({
      host: '127.0.0.1',
      port: proxy.port,
      database: 'app',
      username: 'demo',
      password: 'demo-secret',
      max: 1,
    });
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => sql`SELECT ${i}::int AS i`));
      expect(results.map((r) => r[0]!.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));

      const started = Date.now();
      const query = sql`SELECT pg_sleep(30)`;
      const outcome = query.then(
        () => 'finished',
        (e: { code?: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 300));
      query.cancel();
      expect(await outcome).toBe('57014');
      expect(Date.now() - started).toBeLessThan(10_000);
      // The same connection carries on.
      expect((await sql`SELECT 'still here' AS s`)[0]!.s).toBe('still here');
    } finally {
      await sql.end();
    }
  });
});

describe('pgbench', () => {
  it('initialises (COPY) and runs select-only transactions in simple and prepared modes', async () => {
    const env = {
      PGHOST: '127.0.0.1',
      PGPORT: String(proxy.port),
      PGUSER: 'admin',
      PGPASSWORD: 'admin-secret',
      PGDATABASE: 'app',
      PGSSLMODE: 'disable',
    };
    await pgbench(['-i', '-s', '1', '-q'], env);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const { stdout } = await pgbench(['-S', '-M', mode, '-c', '4', '-j', '2', '-t', '200'], env);
      expect(stdout).toMatch(/number of transactions actually processed: 800\/800/);
      expect(stdout).toMatch(/number of failed transactions: 0/);
    }
    // Clients that end with Terminate end cleanly upstream too: no reset reported as an error.
    expect(proxy.lines.filter((line) => line.includes('upstream connection error'))).toEqual([]);
  });
});

describe('audit', () => {
  it('records identity and normalised statements, and the log verifies', async () => {
    const secret = 'literal-that-must-not-appear-424242';
    await psql(proxyDsn(proxy.port), ['-c', `SELECT '${secret}' AS x`]);
    const client = await pgClient(proxy.port);
    await client.query('SELECT $1::text AS y', ['bound-parameter-value-77']);
    await client.end();
    // Records are batched; wait for them to reach the file.
    await new Promise((r) => setTimeout(r, 500));
    const text = readFileSync(proxy.auditFile!, 'utf8');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('bound-parameter-value-77');
    const records = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const statement = records.find(
      (r) => r['type'] === 'statement' && String(r['statement']).startsWith('SELECT $1 AS x'),
    );
    expect(statement).toMatchObject({ subject: 'local:demo', outcome: 'ok', command: 'SELECT', rows: 1 });
    expect(records.some((r) => r['type'] === 'connection.start')).toBe(true);
    expect(records.some((r) => r['type'] === 'connection.end')).toBe(true);
    const verified = await run(process.execPath, [
      MAIN,
      'audit',
      'verify',
      '--allow-unsealed',
      proxy.auditFile!,
    ]).catch((e: { stdout: string; code: number }) => e);
    expect((verified as { stdout: string }).stdout).toMatch(/^ok/);
  });
});
