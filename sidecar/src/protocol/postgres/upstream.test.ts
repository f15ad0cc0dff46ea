import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BackendMessageReader } from './backend-message-reader.ts';
import { connectUpstream, type UpstreamConnection, type UpstreamOptions } from './upstream.ts';
import { UpstreamError } from './upstream-error.ts';

const pg = inject('postgres');

function options(user: string, password?: string, extra: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return {
    host: pg.host,
    port: pg.port,
    database: pg.database,
    user,
    ...(password === undefined ? {} : { password }),
    tls: { mode: 'disable' },
    connectTimeoutMs: 5000,
    startupParameters: {},
    ...extra,
  };
}

async function connectionError(promise: Promise<unknown>): Promise<UpstreamError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpstreamError);
  return err as UpstreamError;
}

/** Runs one statement over the simple protocol and returns its rows as text, or the server's SQLSTATE. */
async function query(
  conn: UpstreamConnection,
  sql: string,
): Promise<{ rows: (string | null)[][]; sqlstate?: string }> {
  const reader = new BackendMessageReader(1 << 24);
  reader.push(conn.leftover);
  const rows: (string | null)[][] = [];
  let sqlstate: string | undefined;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      for (let frame = reader.next(); frame; frame = reader.next()) {
        const type = String.fromCharCode(frame.type);
        if (type === 'D') {
          const row: (string | null)[] = [];
          let offset = 2;
          for (let i = 0; i < frame.body.readInt16BE(0); i++) {
            const length = frame.body.readInt32BE(offset);
            offset += 4;
            row.push(length < 0 ? null : frame.body.toString('utf8', offset, offset + length));
            offset += Math.max(length, 0);
          }
          rows.push(row);
        } else if (type === 'E') {
          sqlstate = /C([0-9A-Z]{5})\0/.exec(frame.body.toString('latin1'))?.[1];
        } else if (type === 'Z') {
          conn.socket.off('data', onData);
          conn.socket.pause();
          resolve(sqlstate === undefined ? { rows } : { rows, sqlstate });
        }
      }
    };
    conn.socket.on('data', onData);
    conn.socket.once('error', reject);
    conn.socket.resume();
    conn.socket.write(serialize.query(sql));
  });
}

function close(conn: UpstreamConnection): void {
  conn.socket.end(serialize.end());
}

describe('connectUpstream against PostgreSQL 15', () => {
  it.each([
    ['scram-sha-256', pg.users.scram.user, pg.users.scram.password],
    ['md5', pg.users.md5.user, pg.users.md5.password],
    ['password', pg.users.clear.user, pg.users.clear.password],
    ['trust', pg.users.trust.user, undefined],
  ] as const)('logs in with %s and hands over a usable, paused socket', async (method, user, password) => {
    const conn = await connectUpstream(options(user, password));
    try {
      expect(conn.authMethod).toBe(method);
      expect(conn.transactionStatus).toBe('I');
      expect(conn.leftover.length).toBe(0);
      expect(conn.socket.isPaused()).toBe(true);
      expect(conn.socket.listenerCount('data')).toBe(0);
      expect(conn.socket.listenerCount('error')).toBe(0);
      const { rows } = await query(conn, 'SELECT current_user, pg_backend_pid()');
      expect(rows).toEqual([[user, String(conn.backendKey?.processId)]]);
    } finally {
      close(conn);
    }
  });

  it('collects every ParameterStatus and the backend key', async () => {
    const conn = await connectUpstream(
      options(pg.users.scram.user, pg.users.scram.password, {
        startupParameters: {
          application_name: 'gatehouse-test',
          client_encoding: 'LATIN1',
          DateStyle: 'SQL, DMY',
          TimeZone: 'Asia/Tokyo',
          user: 'someone_else',
          database: 'postgres',
        },
      }),
    );
    try {
      expect(conn.parameters.get('server_version')).toMatch(/^15\./);
      expect(conn.parameters.get('application_name')).toBe('gatehouse-test');
      // Passed through as the client asked, not forced to UTF8.
      expect(conn.parameters.get('client_encoding')).toBe('LATIN1');
      expect(conn.parameters.get('DateStyle')).toBe('SQL, DMY');
      expect(conn.parameters.get('TimeZone')).toBe('Asia/Tokyo');
      expect(conn.parameters.get('session_authorization')).toBe(pg.users.scram.user);
      expect(conn.parameters.get('is_superuser')).toBe('off');
      expect(conn.parameters.get('integer_datetimes')).toBe('on');
      expect(conn.backendKey?.processId).toBeGreaterThan(0);
      expect(conn.backendKey?.secretKey.length).toBe(4);
      const { rows } = await query(conn, 'SELECT current_database()');
      expect(rows).toEqual([[pg.database]]);
    } finally {
      close(conn);
    }
  });

  it.each([
    ['scram-sha-256', pg.users.scram.user],
    ['md5', pg.users.md5.user],
    ['password', pg.users.clear.user],
  ])('refuses a wrong %s password with 28P01 and keeps the password out of the message', async (_, user) => {
    const wrong = 'Wrong-Secret-4711';
    const err = await connectionError(connectUpstream(options(user, wrong)));
    expect(err.failure).toBe('server');
    expect(err.sqlstate).toBe('28P01');
    expect(err.server).toMatchObject({ severity: 'FATAL', sqlstate: '28P01' });
    expect(err.server?.message).toContain(user);
    expect(err.message).toContain(`${user}@${pg.host}:${pg.port}`);
    expect(JSON.stringify({ ...err, message: err.message, stack: err.stack })).not.toContain(wrong);
  });

  it('reports a missing password as an auth failure before sending anything secret', async () => {
    const err = await connectionError(connectUpstream(options(pg.users.scram.user)));
    expect(err.failure).toBe('auth');
    expect(err.message).toMatch(/none is configured/);
  });

  it('relays the server error for an unknown database', async () => {
    const err = await connectionError(
      connectUpstream({ ...options(pg.users.trust.user), database: 'no_such_database' }),
    );
    expect(err.sqlstate).toBe('3D000');
    expect(err.server?.message).toContain('no_such_database');
  });

  it('applies SASLprep to non-ASCII passwords as the server does', async () => {
    const admin = await connectUpstream(options(pg.admin.user, pg.admin.password));
    // U+2168 (roman nine) and a no-break space: the server stores the SCRAM secret of "IX pässword".
    const password = '\u2168\u00a0p\u00e4ssword';
    try {
      expect(
        (await query(admin, `CREATE ROLE saslprep_user LOGIN PASSWORD '${password}'`)).sqlstate,
      ).toBeUndefined();
      const conn = await connectUpstream(options('saslprep_user', password));
      expect(conn.authMethod).toBe('scram-sha-256');
      close(conn);
    } finally {
      await query(admin, 'DROP ROLE IF EXISTS saslprep_user');
      close(admin);
    }
  });

  it('connects over the Unix socket when host is a directory', async () => {
    const conn = await connectUpstream({ ...options(pg.users.trust.user), host: pg.socketDir });
    try {
      expect((await query(conn, 'SELECT current_user')).rows).toEqual([[pg.users.trust.user]]);
    } finally {
      close(conn);
    }
  });

  it('fails fast with ECONNREFUSED when nothing listens', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const err = await connectionError(connectUpstream({ ...options('anyone'), port }));
    expect(err.failure).toBe('network');
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.sqlstate).toBe('08001');
  });
});

describe('connectUpstream with TLS', () => {
  const ca = readFileSync(pg.caFile);
  let otherCa: Buffer;
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-other-ca-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.crt',
        '-days',
        '1',
        '-subj',
        '/CN=Untrusted CA',
      ],
      { cwd: scratch, stdio: 'pipe' },
    );
    otherCa = readFileSync(join(scratch, 'ca.crt'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  async function sslInUse(conn: UpstreamConnection): Promise<string | null | undefined> {
    const { rows } = await query(conn, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return rows[0]?.[0];
  }

  it('encrypts with mode require, without checking the certificate', async () => {
    const conn = await connectUpstream(
      options(pg.users.scram.user, pg.users.scram.password, { tls: { mode: 'require', ca: otherCa } }),
    );
    try {
      expect(conn.socket).toBeInstanceOf(tls.TLSSocket);
      expect(await sslInUse(conn)).toBe('t');
    } finally {
      close(conn);
    }
  });

  it('verifies chain and host name with mode verify-full (IP address and DNS name)', async () => {
    for (const tlsOptions of [
      { mode: 'verify-full', ca },
      { mode: 'verify-full', ca, serverName: 'localhost' },
    ] as const) {
      const conn = await connectUpstream(
        options(pg.users.md5.user, pg.users.md5.password, { tls: tlsOptions }),
      );
      try {
        expect((conn.socket as tls.TLSSocket).authorized).toBe(true);
        expect(await sslInUse(conn)).toBe('t');
      } finally {
        close(conn);
      }
    }
  });

  it('refuses a certificate for another name', async () => {
    const err = await connectionError(
      connectUpstream(
        options(pg.users.md5.user, pg.users.md5.password, {
          tls: { mode: 'verify-full', ca, serverName: 'db.example.com' },
        }),
      ),
    );
    expect(err.failure).toBe('tls');
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('refuses a certificate from an untrusted CA', async () => {
    const err = await connectionError(
      connectUpstream(
        options(pg.users.md5.user, pg.users.md5.password, { tls: { mode: 'verify-full', ca: otherCa } }),
      ),
    );
    expect(err.failure).toBe('tls');
    // Which of the two Node reports depends on whether the server sends its CA along with its certificate.
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain(err.code);
  });
});

/** A server that accepts connections and never says a word; it records when each one closes. */
async function silentServer(): Promise<{ port: number; closed: Promise<void>; stop: () => Promise<void> }> {
  const sockets: net.Socket[] = [];
  let onClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  const server = net.createServer((socket) => {
    sockets.push(socket);
    // Reading (and dropping) what arrives is how the server side notices that the client hung up.
    socket.resume();
    socket.on('close', onClosed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    closed,
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('connectUpstream against a silent server', () => {
  it.each(['disable', 'require'] as const)('times out the whole handshake (tls %s)', async (mode) => {
    const silent = await silentServer();
    try {
      const started = performance.now();
      const err = await connectionError(
        connectUpstream({
          ...options('anyone', 'secret'),
          port: silent.port,
          connectTimeoutMs: 300,
          tls: { mode },
        }),
      );
      const elapsed = performance.now() - started;
      expect(err.failure).toBe('timeout');
      expect(err.code).toBe('ETIMEDOUT');
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1500);
      await silent.closed;
    } finally {
      await silent.stop();
    }
  });

  it('gives up when the caller aborts', async () => {
    const silent = await silentServer();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('client went away')), 50);
      const err = await connectionError(
        connectUpstream({ ...options('anyone'), port: silent.port, signal: controller.signal }),
      );
      expect(err.failure).toBe('aborted');
      await silent.closed;
    } finally {
      await silent.stop();
    }
  });
});

/** A scripted impostor: `respond` sees each frontend message (type '' for untyped ones) and may answer. */
async function fakePostgres(
  respond: (type: string, body: Buffer, socket: net.Socket) => void,
): Promise<{ port: number; stop: () => Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    let buffer = Buffer.alloc(0);
    let typed = false;
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const offset = typed ? 1 : 0;
        if (buffer.length < offset + 4) return;
        const length = buffer.readInt32BE(offset);
        if (buffer.length < offset + length) return;
        const type = typed ? String.fromCharCode(buffer[0]!) : '';
        const body = buffer.subarray(offset + 4, offset + length);
        buffer = buffer.subarray(offset + length);
        if (!typed && body.readInt32BE(0) === 196608) typed = true;
        respond(type, body, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function backend(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function authentication(code: number, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head.writeInt32BE(code);
  return backend('R', Buffer.concat([head, Buffer.from(data)]));
}

const READY = backend('Z', Buffer.from('I'));

/** Plays SCRAM up to the server-final message, which `serverFinal` writes. */
function scramImpostor(serverFinal: (socket: net.Socket) => void) {
  return (type: string, body: Buffer, socket: net.Socket) => {
    if (type === '') socket.write(authentication(10, 'SCRAM-SHA-256\0\0'));
    else if (type === 'p' && body.includes('SCRAM-SHA-256\0')) {
      const clientNonce = /r=([^,]+)/.exec(body.toString('latin1'))![1];
      socket.write(
        authentication(11, `r=${clientNonce}impostor,s=${Buffer.from('salt').toString('base64')},i=4096`),
      );
    } else if (type === 'p') serverFinal(socket);
  };
}

describe('connectUpstream against an impostor', () => {
  async function failureAgainst(
    respond: Parameters<typeof fakePostgres>[0],
    mode: 'disable' | 'require' = 'disable',
  ) {
    const fake = await fakePostgres(respond);
    try {
      return await connectionError(
        connectUpstream({
          ...options('anyone', 'secret'),
          port: fake.port,
          tls: { mode },
          connectTimeoutMs: 2000,
        }),
      );
    } finally {
      await fake.stop();
    }
  }

  it('rejects a SCRAM server signature that does not match, even when followed by AuthenticationOk', async () => {
    const err = await failureAgainst(
      scramImpostor((socket) => {
        socket.write(authentication(12, `v=${Buffer.alloc(32, 7).toString('base64')}`));
        socket.write(Buffer.concat([authentication(0), READY]));
      }),
    );
    expect(err.failure).toBe('auth');
    expect(err.message).toMatch(/server signature does not match/);
  });

  it('rejects a server that skips the SCRAM final message', async () => {
    const err = await failureAgainst(
      scramImpostor((socket) => socket.write(Buffer.concat([authentication(0), READY]))),
    );
    expect(err.failure).toBe('protocol');
    expect(err.sqlstate).toBe('08P01');
  });

  it('rejects a server that offers only SCRAM-SHA-256-PLUS', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type === '') socket.write(authentication(10, 'SCRAM-SHA-256-PLUS\0\0'));
    });
    expect(err.failure).toBe('auth');
    expect(err.message).toContain('SCRAM-SHA-256-PLUS');
  });

  it('names an authentication method it does not support', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type === '') socket.write(authentication(7));
    });
    expect(err.failure).toBe('auth');
    expect(err.message).toContain('GSSAPI');
  });

  it('rejects plaintext bytes sent right after accepting TLS', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type === '') socket.write(Buffer.concat([Buffer.from('S'), authentication(0), READY]));
    }, 'require');
    expect(err.failure).toBe('protocol');
  });

  it('does not show an ErrorResponse sent in answer to SSLRequest', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type === '')
        socket.write(backend('E', Buffer.from('SFATAL\0C28000\0Mplease visit evil.example\0\0')));
    }, 'require');
    expect(err.failure).toBe('protocol');
    expect(err.message).not.toContain('evil');
  });

  it('refuses to go on in the clear when the server declines TLS', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type === '') socket.write('N');
    }, 'require');
    expect(err.failure).toBe('tls');
  });

  it('refuses a message longer than any handshake message', async () => {
    const err = await failureAgainst((type, _, socket) => {
      if (type !== '') return;
      const huge = Buffer.alloc(5);
      huge.write('R');
      huge.writeInt32BE(0x7fffffff, 1);
      socket.write(huge);
    });
    expect(err.failure).toBe('protocol');
  });

  it('returns bytes that arrive with ReadyForQuery as leftover', async () => {
    const notice = backend('N', Buffer.from('SNOTICE\0C00000\0Mhello\0\0'));
    const fake = await fakePostgres((type, _, socket) => {
      if (type !== '') return;
      const key = Buffer.alloc(4 + 32, 9);
      key.writeInt32BE(42);
      socket.write(Buffer.concat([authentication(0), backend('K', key), READY, notice]));
    });
    try {
      const conn = await connectUpstream({ ...options('anyone'), port: fake.port });
      expect(conn.leftover).toEqual(notice);
      // A 3.2-style 32-byte key survives intact.
      expect(conn.backendKey).toEqual({ processId: 42, secretKey: Buffer.alloc(32, 9) });
      conn.socket.destroy();
    } finally {
      await fake.stop();
    }
  });
});
