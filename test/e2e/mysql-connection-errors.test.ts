import { readFileSync } from 'node:fs';
import { describe, expect, inject, it } from 'vitest';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const demo = { user: 'demo', password: 'demo-secret' };

/** The proxy's log lines, without audit records. */
const logLines = (proxy: ProxyProcess) => proxy.lines.filter((l) => !l.includes('"audit"'));

async function metric(proxy: ProxyProcess, name: string): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('a database the proxy cannot use', () => {
  const upstream = mysqlProxyConfig(server)['upstream'] as Record<string, unknown>;
  const cases = [
    {
      name: 'is down',
      upstream: { ...upstream, port: 1 },
      cause: /the database is not reachable \(ECONNREFUSED\)/,
    },
    {
      name: 'refuses the proxy its password',
      upstream: { ...upstream, password: { value: 'not-the-password' } },
      cause: /the database refused the proxy's own login \(error 1045\)/,
    },
  ];

  it.each(cases)('$name: the mysql CLI and mysql2 read a clear error naming the cause', async (c) => {
    const proxy = await startProxyProcess({ ...mysqlProxyConfig(server), upstream: c.upstream });
    try {
      const cli = await mysqlCli(['-e', 'SELECT 1'], { server, login: demo, port: proxy.port });
      expect(cli.stderr).not.toMatch(/2027|malformed/i);
      // Before the greeting an error has no SQLSTATE on the wire: the client shows HY000 then.
      expect(cli.stderr.trim()).toMatch(
        /^ERROR 1105 \((08S01|HY000)\): Gatehouse cannot open a session on the database: /,
      );
      expect(cli.stderr).toMatch(c.cause);
      const error = await mysqlClient(proxy.port).then(
        () => undefined,
        (e: unknown) => e as { errno?: number; sqlState?: string; message: string },
      );
      expect(error?.errno).toBe(1105);
      expect(error?.message).toMatch(c.cause);
      // The proxy speaks MySQL to MySQL clients in its log too.
      await new Promise((r) => setTimeout(r, 200));
      const lines = logLines(proxy);
      expect(lines.join('\n')).not.toContain('08006');
      expect(lines.some((l) => l.includes('"code":1105') && l.includes('connection refused'))).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('refuses a login with its MySQL error number and SQLSTATE in the audit record', async () => {
    const proxy = await startProxyProcess(mysqlProxyConfig(server));
    try {
      const cli = await mysqlCli(['-e', 'SELECT 1'], {
        server,
        login: { user: 'demo', password: 'wrong' },
        port: proxy.port,
      });
      expect(cli.stderr).toMatch(/ERROR 1045 \(28000\)/);
      await new Promise((r) => setTimeout(r, 300));
      const refused = readFileSync(proxy.auditFile!, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"connection.refused"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
      expect(refused).toMatchObject({ protocol: 'mysql', sqlstate: '28000', errno: 1045 });
    } finally {
      await proxy.stop();
    }
  });
});

describe('clients that go away', () => {
  it('are not upstream errors: no warning, not counted; a session the database ends is', async () => {
    const proxy = await startProxyProcess(mysqlProxyConfig(server));
    try {
      for (let i = 0; i < 8; i++) {
        await mysqlCli(['-e', 'SELECT 1'], { server, login: demo, port: proxy.port });
        const polite = await mysqlClient(proxy.port);
        await polite.query('SELECT 1');
        await polite.end();
        const abrupt = await mysqlClient(proxy.port);
        await abrupt.query('SELECT 1');
        abrupt.destroy();
        // A client that drops its socket in the middle of a statement.
        const busy = await mysqlClient(proxy.port);
        void busy.query('SELECT SLEEP(5)').catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
        busy.destroy();
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect(logLines(proxy).filter((l) => l.includes('"level":40') || l.includes('"level":50'))).toEqual(
        expect.not.arrayContaining([expect.stringMatching(/upstream|database closed/)]),
      );
      expect(await metric(proxy, 'gatehouse_upstream_errors_total')).toEqual([]);

      // The database ending a session is an upstream error.
      const victim = await mysqlClient(proxy.port);
      const [[row]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      const admin = await directMysql(server);
      await admin.query(`KILL ${row.id}`);
      await admin.end();
      await new Promise((r) => setTimeout(r, 500));
      victim.destroy();
      expect(await metric(proxy, 'gatehouse_upstream_errors_total')).toEqual([
        'gatehouse_upstream_errors_total{protocol="mysql",kind="closed"} 1',
      ]);
      expect(logLines(proxy).some((l) => l.includes('"level":40') && l.includes('database closed'))).toBe(
        true,
      );
    } finally {
      await proxy.stop();
    }
  });
});
