import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { describe, expect, inject, it } from 'vitest';
import { directClient, localProxyConfig, pgClient, proxyDsn, psql } from './support/clients.ts';
import { MAIN, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

const run = promisify(execFile);
const pgInfo = inject('postgres');

async function metric(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('upstream authentication', () => {
  it.each(['scram', 'md5', 'clear'] as const)(
    'logs in upstream with %s credentials the client never sees',
    async (method) => {
      const user = pgInfo.users[method];
      const config = localProxyConfig(pgInfo);
      config['upstream'] = {
        ...(config['upstream'] as object),
        user: user.user,
        password: { value: user.password },
      };
      const proxy = await startProxyProcess(config);
      try {
        const result = await psql(proxyDsn(proxy.port), ['-At', '-c', 'SELECT current_user']);
        expect(result.stdout.trim()).toBe(user.user);
      } finally {
        await proxy.stop();
      }
    },
  );

  it('verifies the upstream certificate with verify-full', async () => {
    const config = localProxyConfig(pgInfo);
    config['upstream'] = {
      ...(config['upstream'] as object),
      tls: { mode: 'verify-full', caFile: pgInfo.caFile },
    };
    const proxy = await startProxyProcess(config);
    try {
      const result = await psql(proxyDsn(proxy.port), [
        '-At',
        '-c',
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      ]);
      expect(result.stdout.trim()).toBe('t');
    } finally {
      await proxy.stop();
    }
  });

  it('gives the client a clean error when the database is unreachable', async () => {
    const config = localProxyConfig(pgInfo);
    config['upstream'] = { ...(config['upstream'] as object), port: 1, connectTimeoutSeconds: 2 };
    const proxy = await startProxyProcess(config);
    try {
      const result = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('could not connect to the database');
      expect(proxy.lines.join('\n')).toMatch(
        /the database is not reachable.*ECONNREFUSED|ECONNREFUSED.*the database is not reachable/,
      );
      expect(proxy.child.exitCode).toBeNull();
    } finally {
      await proxy.stop();
    }
  });
});

describe('a client that leaves during startup', () => {
  it('leaves no upstream session behind', async () => {
    // A relay that holds each upstream connection back for 500 ms, so the client is gone before it is up.
    const slow = createServer((inbound) => {
      setTimeout(() => {
        const outbound = connect({ host: pgInfo.host, port: pgInfo.port });
        inbound.pipe(outbound).on('error', () => {});
        outbound.pipe(inbound).on('error', () => {});
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
        inbound.on('close', () => outbound.destroy());
      }, 500);
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const config = localProxyConfig(pgInfo);
    config['upstream'] = { ...(config['upstream'] as object), port: (slow.address() as AddressInfo).port };
    // A user of its own, so sessions of tests running beside this one are not counted.
    config['identity'] = { mode: 'local', local: { users: [{ name: 'leaver', password: 'leaver-secret' }] } };
    const proxy = await startProxyProcess(config);
    const direct = await directClient(pgInfo);
    try {
      for (let i = 0; i < 5; i++) {
        const client = await RawClient.connect(proxy.port);
        client.onMessage((m) => {
          if (m.name === 'authenticationCleartextPassword') {
            client.socket.write(serialize.password('leaver-secret'));
            setTimeout(() => client.socket.destroy(), 50);
          }
        });
        client.socket.write(serialize.startup({ user: 'leaver', database: 'app' }));
      }
      await new Promise((r) => setTimeout(r, 2500));
      const left = await direct.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gatehouse:local:leaver'",
      );
      expect(left.rows[0].n).toBe(0);
    } finally {
      await direct.end();
      await proxy.stop();
      slow.close();
    }
  });
});

describe('client TLS', () => {
  it('serves TLS with the configured certificate and can require it', async () => {
    const config = localProxyConfig(pgInfo, {
      clientTls: { certFile: pgInfo.certFile, keyFile: pgInfo.keyFile, required: true },
    });
    const proxy = await startProxyProcess(config);
    try {
      const secure = await psql(
        proxyDsn(proxy.port).replace('sslmode=disable', `sslmode=verify-full sslrootcert=${pgInfo.caFile}`),
        ['-At', '-c', 'SELECT 1'],
      );
      expect(secure.stderr).toBe('');
      expect(secure.stdout.trim()).toBe('1');
      const plain = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1']);
      expect(plain.code).not.toBe(0);
      expect(plain.stderr).toContain('requires TLS');
    } finally {
      await proxy.stop();
    }
  });
});

describe('capacity and shutdown', () => {
  it('carries 500 concurrent sessions', async () => {
    const proxy = await startProxyProcess(localProxyConfig(pgInfo));
    const clients: pg.Client[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        clients.push(...(await Promise.all(Array.from({ length: 50 }, () => pgClient(proxy.port)))));
      }
      const results = await Promise.all(clients.map((c, i) => c.query('SELECT $1::int AS i', [i])));
      expect(results.map((r) => r.rows[0].i)).toEqual(clients.map((_, i) => i));
      expect(await metric(proxy.adminPort!, 'gatehouse_connections_active{protocol="postgres"}')).toBe(500);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
      await proxy.stop();
    }
  }, 120_000);

  it('counts the database ending a live session as an upstream error, and a client leaving as none', async () => {
    const proxy = await startProxyProcess(localProxyConfig(pgInfo));
    const closed = 'gatehouse_upstream_errors_total{protocol="postgres",kind="closed"}';
    const admin = await directClient(pgInfo);
    try {
      // Clients leaving every way: Terminate, a dropped socket, a dropped socket mid-statement.
      const polite = await pgClient(proxy.port);
      await polite.query('SELECT 1');
      await polite.end();
      const abrupt = await pgClient(proxy.port);
      abrupt.on('error', () => {});
      await abrupt.query('SELECT 1');
      (abrupt as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      const busy = await pgClient(proxy.port);
      busy.on('error', () => {});
      void busy.query('SELECT pg_sleep(2)').catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      (busy as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await new Promise((r) => setTimeout(r, 1500));
      expect(await metric(proxy.adminPort!, closed)).toBe(0);
      const lines = proxy.lines.filter((l) => l.includes('"level":40') || l.includes('"level":50'));
      expect(lines.filter((l) => /upstream|database closed/.test(l))).toEqual([]);

      // The database ending a session: the server's FATAL, then its close.
      const victim = await pgClient(proxy.port);
      victim.on('error', () => {});
      const { rows } = await victim.query('SELECT pg_backend_pid() AS pid');
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await new Promise((r) => setTimeout(r, 500));
      expect(await metric(proxy.adminPort!, closed)).toBe(1);
      expect(proxy.lines.some((l) => l.includes('"level":40') && l.includes('database closed'))).toBe(true);
      await victim.end().catch(() => {});
    } finally {
      await admin.end();
      await proxy.stop();
    }
  });

  it('frees the connection slot of each cancel request', async () => {
    const proxy = await startProxyProcess(localProxyConfig(pgInfo, { limits: { maxConnections: 1 } }));
    try {
      // Keys right and wrong, and one too short to hold a key: each is answered by a close.
      const requests = [16, 16, 12].map((length, i) => {
        const packet = Buffer.alloc(length);
        packet.writeInt32BE(length, 0);
        packet.writeInt32BE(80877102, 4);
        if (length >= 12) packet.writeInt32BE(1000 + i, 8);
        return packet;
      });
      for (const packet of requests) {
        await new Promise<void>((resolve, reject) => {
          const socket = connect(proxy.port, '127.0.0.1', () => socket.end(packet));
          socket.on('error', reject);
          socket.on('close', () => resolve());
          socket.resume();
        });
      }
      await new Promise((r) => setTimeout(r, 200));
      const client = await pgClient(proxy.port);
      try {
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await client.end();
      }
    } finally {
      await proxy.stop();
    }
  });

  it('on SIGTERM stops accepting, lets a running statement finish, and seals the audit log', async () => {
    const proxy = await startProxyProcess(localProxyConfig(pgInfo, { limits: { shutdownGraceSeconds: 20 } }));
    const busy = await pgClient(proxy.port);
    busy.on('error', () => {});
    const idle = await pgClient(proxy.port);
    const idleEnded = new Promise<string>((resolve) =>
      idle.on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message)),
    );
    const running = busy.query('SELECT pg_sleep(1.5) AS slept');
    await new Promise((r) => setTimeout(r, 200));
    const exit = proxy.stop('SIGTERM');
    expect(await idleEnded).toBe('57P01');
    await new Promise((r) => setTimeout(r, 100));
    const refused = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1']);
    expect(refused.code).not.toBe(0);
    expect((await running).rows).toHaveLength(1);
    expect(await exit).toBe(0);
    const verified = await run(process.execPath, [MAIN, 'audit', 'verify', proxy.auditFile!]);
    expect(verified.stdout).toMatch(/^ok.*sealed/);
  }, 60_000);
});

describe('fail closed on audit failure', () => {
  it('refuses statements when the audit log cannot be written, and says why', async () => {
    const proxy = await startProxyProcess(
      localProxyConfig(pgInfo, { audit: { file: '/dev/full', stdout: false } }),
    );
    try {
      const result = await psql(proxyDsn(proxy.port), ['-c', 'SELECT 1', '-c', 'SELECT 2']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/audit log/);
      expect(proxy.lines.join('\n')).toMatch(/ENOSPC|no space/i);
    } finally {
      await proxy.stop();
    }
  });
});

describe('command line', () => {
  const cli = (args: string[]) =>
    run(process.execPath, [MAIN, ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  it('rejects an unknown flag, a missing config and an invalid field in one line with exit code 2', async () => {
    const unknown = await cli(['proxy', '--nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain("Unknown option '--nope'");

    const missing = await cli(['proxy', '--config', '/nonexistent/gatehouse.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/gatehouse.yaml: cannot read the config file (ENOENT)');

    const dir = join(process.env['TMPDIR'] ?? '/tmp', `gatehouse-cli-${process.pid}`);
    await run('mkdir', ['-p', dir]);
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'upstream:\n  url: postgres://u@127.0.0.1:5432/db\n  tls:\n    mode: sometimes\nidentity:\n  mode: local\n  local:\n    users: [{name: a, password: b}]\n',
    );
    const invalid = await cli(['proxy', '--config', file]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr.trim()).toBe(
      `gatehouse: ${file}: upstream.tls.mode: must be one of disable, require, verify-full`,
    );
    expect(invalid.stderr).not.toContain('    at ');
  });

  it('refuses a taken port in one line naming the flag, before it opens the audit log', async () => {
    const dir = join(process.env['TMPDIR'] ?? '/tmp', `gatehouse-cli-port-${process.pid}`);
    await run('mkdir', ['-p', dir]);
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const file = join(dir, 'taken.yaml');
      const auditFile = join(dir, 'taken-audit.jsonl');
      writeFileSync(
        file,
        `listen: 127.0.0.1:${port}\nupstream:\n  url: postgres://u@127.0.0.1:5432/db\naudit:\n  file: ${auditFile}\nidentity:\n  mode: local\n  local:\n    users: [{name: a, password: b}]\n`,
      );
      const taken = await cli(['proxy', '--config', file]);
      expect(taken.code).toBe(2);
      expect(taken.stderr).toBe(
        `gatehouse: port ${port} on 127.0.0.1 (the proxy) is in use (another Gatehouse?); choose another with --listen HOST:PORT (or listen: in the config)\n`,
      );
      expect(existsSync(auditFile)).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
