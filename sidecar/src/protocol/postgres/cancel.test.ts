import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { serialize } from 'pg-protocol';
import { describe, expect, inject, it } from 'vitest';
import { BackendMessageReader } from './backend-message-reader.ts';
import { sendCancel } from './cancel.ts';
import { connectUpstream, type UpstreamConnection } from './upstream.ts';
import { UpstreamError } from './upstream-error.ts';

const pg = inject('postgres');

/** What the backend is running right now, asked through psql; empty when it is idle. */
function activeQuery(pid: number): string {
  return execFileSync(
    join(pg.binDir, 'psql'),
    [
      '-h',
      pg.socketDir,
      '-p',
      String(pg.port),
      '-U',
      pg.admin.user,
      '-d',
      pg.database,
      '-Atc',
      `SELECT query FROM pg_stat_activity WHERE pid = ${pid} AND state = 'active'`,
    ],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: pg.admin.password } },
  ).trim();
}

/** Sends a query and resolves with the SQLSTATE of its error, or undefined if it completed. */
function runQuery(conn: UpstreamConnection, sql: string): Promise<string | undefined> {
  const reader = new BackendMessageReader(1 << 24);
  reader.push(conn.leftover);
  let sqlstate: string | undefined;
  return new Promise((resolve, reject) => {
    conn.socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let frame = reader.next(); frame; frame = reader.next()) {
        if (frame.type === 0x45) sqlstate = /C([0-9A-Z]{5})\0/.exec(frame.body.toString('latin1'))?.[1];
        if (frame.type === 0x5a) resolve(sqlstate);
      }
    });
    conn.socket.once('error', reject);
    conn.socket.resume();
    conn.socket.write(serialize.query(sql));
  });
}

describe('sendCancel against PostgreSQL 15', () => {
  it.each(['disable', 'require'] as const)('cancels a running pg_sleep (tls %s)', async (mode) => {
    const conn = await connectUpstream({
      host: pg.host,
      port: pg.port,
      database: pg.database,
      user: pg.users.scram.user,
      password: pg.users.scram.password,
      tls: { mode },
      connectTimeoutMs: 5000,
      startupParameters: {},
    });
    try {
      const key = conn.backendKey!;
      const outcome = runQuery(conn, 'SELECT pg_sleep(30)');
      // A cancel that arrives before the query starts is dropped by the server: wait until it runs.
      for (let i = 0; activeQuery(key.processId) !== 'SELECT pg_sleep(30)'; i++) {
        expect(i).toBeLessThan(100);
        await sleep(20);
      }
      const started = performance.now();
      await sendCancel({ host: pg.host, port: pg.port, tls: { mode }, ...key });
      expect(await outcome).toBe('57014');
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      conn.socket.end(serialize.end());
    }
  });

  it('leaves other backends alone when the secret is wrong', async () => {
    const conn = await connectUpstream({
      host: pg.host,
      port: pg.port,
      database: pg.database,
      user: pg.users.trust.user,
      tls: { mode: 'disable' },
      connectTimeoutMs: 5000,
      startupParameters: {},
    });
    try {
      const key = conn.backendKey!;
      const outcome = runQuery(conn, 'SELECT pg_sleep(0.5)');
      while (activeQuery(key.processId) === '') await sleep(20);
      const wrongSecret = Buffer.from(key.secretKey.map((byte) => byte ^ 0xff));
      await sendCancel({
        host: pg.host,
        port: pg.port,
        tls: { mode: 'disable' },
        ...key,
        secretKey: wrongSecret,
      });
      expect(await outcome).toBeUndefined();
    } finally {
      conn.socket.end(serialize.end());
    }
  });
});

describe('sendCancel failures', () => {
  async function listen(onConnection: (socket: net.Socket) => void) {
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as net.AddressInfo).port };
  }

  it('times out against a server that never hangs up', async () => {
    const sockets: net.Socket[] = [];
    const { server, port } = await listen((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    try {
      const err = await sendCancel({
        host: '127.0.0.1',
        port,
        tls: { mode: 'disable' },
        processId: 1,
        secretKey: Buffer.alloc(4),
        timeoutMs: 200,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).failure).toBe('timeout');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('negotiates TLS first when the mode asks for it', async () => {
    const received: Buffer[] = [];
    const { server, port } = await listen((socket) => {
      socket.on('data', (chunk) => {
        received.push(chunk);
        socket.end('N');
      });
    });
    try {
      const err = await sendCancel({
        host: '127.0.0.1',
        port,
        tls: { mode: 'require' },
        processId: 1,
        secretKey: Buffer.alloc(4),
      }).catch((e: unknown) => e);
      expect((err as UpstreamError).failure).toBe('tls');
      // Only the SSLRequest went out; the key never travelled in the clear.
      expect(Buffer.concat(received)).toEqual(serialize.requestSsl());
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
