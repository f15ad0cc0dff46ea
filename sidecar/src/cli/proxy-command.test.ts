import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { localProxyConfig } from '../../../test/e2e/support/clients.ts';
import { mysqlClient, mysqlProxyConfig } from '../../../test/e2e/support/mysql.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from '../../../test/e2e/support/proxy-process.ts';

const postgres = inject('postgres');
const mariadb = inject('mariadb');

const GUARDRAIL = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'Guardrail',
  metadata: { name: 'defaults' },
  spec: { rules: [{ name: 'destructive', kinds: ['drop'], action: 'block' }] },
};
const ACCESS = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'DatabaseAccess',
  metadata: { name: 'demo' },
  spec: { subjects: [{ kind: 'User', name: 'demo' }], allow: ['read'], guardrails: ['defaults'] },
};

type Config = Record<string, unknown>;
const withUpstream = (config: Config, change: Record<string, unknown>): Config => ({
  ...config,
  upstream: { ...(config['upstream'] as object), ...change },
});

function records(proxy: ProxyProcess): Array<Record<string, unknown>> {
  return proxy.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
}

async function waitForLine(proxy: ProxyProcess, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = proxy.lines.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern}:\n${proxy.lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function scrape(proxy: ProxyProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
}

function counter(metrics: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`gatehouse_connections_total{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('gatehouse proxy: the ready line', () => {
  it('says where it listens, what it fronts and which policy is in force, even at log level error', async () => {
    const proxy = await startProxyProcess(localProxyConfig(postgres), {
      args: ['--log-level', 'error'],
      extraDocuments: [GUARDRAIL, ACCESS],
    });
    try {
      const ready = records(proxy).find((r) => String(r['msg']).startsWith('gatehouse proxy listening'));
      expect(ready?.['msg']).toBe(
        `gatehouse proxy listening on 127.0.0.1:${proxy.port}, fronting PostgreSQL ` +
          `${postgres.host}:${postgres.port}/${postgres.database} as ${postgres.admin.user}, ` +
          `policy ${String(ready?.['msg']).match(/sha256:[0-9a-f]{12}/)?.[0]} (1 DatabaseAccess, 1 Guardrail, 0 MaskingPolicies), ` +
          `metrics on http://127.0.0.1:${proxy.adminPort}/metrics`,
      );
      // --log-level error: the identity warning of local mode is not shown, the ready line is.
      expect(records(proxy).filter((r) => r['level'] === 40)).toEqual([]);
      expect(proxy.lines.join('\n')).not.toContain(postgres.admin.password);
    } finally {
      await proxy.stop();
    }
  });

  it('writes one readable line a record with --log-format pretty', async () => {
    const lines = await linesUntilReady(localProxyConfig(postgres), ['--log-format', 'pretty']);
    const ready = lines.find((l) => l.includes('gatehouse proxy listening'));
    expect(ready).toMatch(
      /^\d\d:\d\d:\d\d INFO {2}gatehouse proxy listening on 127\.0\.0\.1:\d+, fronting PostgreSQL .* policy none \(statements are audited, not checked\), metrics on http:\/\/127\.0\.0\.1:\d+\/metrics {2}listen=127\.0\.0\.1:\d+ protocol=postgres /,
    );
    expect(lines.some((l) => /^\d\d:\d\d:\d\d WARN {2}identity\.mode is local/.test(l))).toBe(true);
    expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
  });
});

/** Runs `gatehouse proxy` until its ready line, then stops it; returns what it printed. */
async function linesUntilReady(config: Config, args: string[]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pretty-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, stringify({ ...config, listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' } }));
  const child = spawn(process.execPath, ['--liftoff-only', MAIN, 'proxy', '--config', file, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (/gatehouse proxy listening.*\n/.test(output)) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`proxy exited with ${code}:\n${output}`)));
    });
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  return output.split('\n').filter((line) => line !== '');
}

describe.each([
  {
    protocol: 'PostgreSQL',
    config: () => localProxyConfig(postgres),
    password: postgres.admin.password,
    badLogin: /password authentication failed for user .* \(28P01\)/,
    refusedClient: /could not connect to the database/,
    noDatabase: /database "no_such_db" does not exist \(3D000\)/,
    labels: 'protocol="postgres",outcome="failed"',
    connect: async (port: number) => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'demo',
        password: 'demo-secret',
        database: 'app',
      });
      try {
        await client.connect();
      } finally {
        await client.end().catch(() => {});
      }
    },
  },
  {
    protocol: 'MySQL',
    config: () => mysqlProxyConfig(mariadb),
    password: mariadb.users.native.password,
    badLogin: /server error 1045: Access denied for user/,
    refusedClient: /Gatehouse cannot open a session on the database/,
    // MariaDB answers 1044 (access denied to it) to a user without global privileges, 1049 otherwise.
    noDatabase: /server error 10(44|49): .*'no_such_db'/,
    labels: 'protocol="mysql",outcome="failed"',
    connect: async (port: number) => {
      const connection = await mysqlClient(port);
      await connection.end();
    },
  },
])(
  'gatehouse proxy in front of $protocol',
  ({ config, password, badLogin, refusedClient, noDatabase, labels, connect }) => {
    it('reports a wrong upstream password at start in one line, keeps running, counts each failed client connection', async () => {
      const proxy = await startProxyProcess(
        withUpstream(config(), { password: { value: 'wrong-password' } }),
      );
      try {
        const line = await waitForLine(proxy, /refused the proxy's login/);
        expect(JSON.parse(line)).toMatchObject({ level: 50, reason: expect.stringMatching(badLogin) });
        expect(proxy.lines.join('\n')).not.toContain('wrong-password');
        expect(proxy.child.exitCode).toBeNull();

        expect(counter(await scrape(proxy), labels)).toBe(0);
        await expect(connect(proxy.port)).rejects.toThrow(refusedClient);
        await expect(connect(proxy.port)).rejects.toThrow(refusedClient);
        expect(counter(await scrape(proxy), labels)).toBe(2);
      } finally {
        await proxy.stop();
      }
    });

    it('reports a database that does not exist at start in one line', async () => {
      const proxy = await startProxyProcess(withUpstream(config(), { database: 'no_such_db' }));
      try {
        const line = await waitForLine(proxy, /refused the proxy's login/);
        expect(JSON.parse(line)).toMatchObject({ level: 50, reason: expect.stringMatching(noDatabase) });
        expect(proxy.child.exitCode).toBeNull();
      } finally {
        await proxy.stop();
      }
    });

    it('says nothing about the database when the login works', async () => {
      const proxy = await startProxyProcess(config());
      try {
        // The start-up check is done once the database has seen and ended its session.
        await connect(proxy.port);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(records(proxy).filter((r) => (r['level'] as number) >= 50)).toEqual([]);
        expect(proxy.lines.join('\n')).not.toContain(password);
      } finally {
        await proxy.stop();
      }
    });
  },
);
