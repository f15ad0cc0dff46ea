import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { directClient, localProxyConfig } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

const pgInfo = inject('postgres');
let proxy: ProxyProcess;

/** Deterministic generator so a failing run can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const TEMPLATES = [
  serialize.query('SELECT 1'),
  serialize.parse({ name: 's1', text: 'SELECT $1::int' }),
  serialize.bind({ statement: 's1', values: ['1'] }),
  serialize.describe({ type: 'P' }),
  serialize.execute({}),
  serialize.sync(),
  serialize.flush(),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.copyData(Buffer.from('1\t2\n')),
  serialize.copyDone(),
  serialize.copyFail('x'),
];

/** One hostile message: random type and bytes, or a real message with its length, type or body mutated. */
function hostileMessage(next: (n: number) => number): Buffer {
  const kind = next(5);
  if (kind === 0) {
    const body = Buffer.alloc(next(64));
    for (let i = 0; i < body.length; i++) body[i] = next(256);
    const out = Buffer.alloc(5 + body.length);
    out[0] = next(256);
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  }
  const message = Buffer.from(TEMPLATES[next(TEMPLATES.length)]!);
  if (kind === 1) message.writeInt32BE(next(2) ? next(1 << 30) : -next(100), 1);
  else if (kind === 2) message[0] = next(256);
  else if (kind === 3) message[5 + next(Math.max(1, message.length - 5))] = next(256);
  else return message.subarray(0, 1 + next(message.length));
  return message;
}

beforeAll(async () => {
  const config = localProxyConfig(pgInfo);
  // A non-superuser upstream, so random function calls cannot touch the server's state.
  (config['upstream'] as Record<string, unknown>)['user'] = pgInfo.users.scram.user;
  (config['upstream'] as Record<string, unknown>)['password'] = { value: pgInfo.users.scram.password };
  // A user of its own, so that the leak check below does not count other tests' sessions.
  config['identity'] = { mode: 'local', local: { users: [{ name: 'fuzzer', password: 'fuzzer-secret' }] } };
  proxy = await startProxyProcess(config);
});

afterAll(async () => {
  await proxy?.stop();
});

describe('hostile input', () => {
  it('survives 100,000 random and mutated messages; other sessions are unaffected', async () => {
    const canary = await RawClient.login(proxy.port, 'fuzzer', 'fuzzer-secret');
    const next = rng(0x5eed);
    let sent = 0;

    // Garbage before startup: random bytes, bad lengths, unknown protocol codes.
    for (let i = 0; i < 300; i++) {
      const socket = connect({ host: '127.0.0.1', port: proxy.port });
      socket.on('error', () => {});
      socket.resume();
      const junk = Buffer.alloc(1 + next(200));
      for (let j = 0; j < junk.length; j++) junk[j] = next(256);
      if (i % 3 === 0 && junk.length >= 4) junk.writeInt32BE(next(2) ? 8 : 1 << 30, 0);
      socket.end(junk);
      sent++;
      await new Promise((r) => socket.once('close', r));
    }

    // Authenticated sessions that then send hostile messages.
    const perSession = 500;
    while (sent < 100_000) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, () => RawClient.login(proxy.port, 'fuzzer', 'fuzzer-secret')),
      );
      await Promise.all(
        batch.map(async (client) => {
          const messages: Buffer[] = [];
          for (let i = 0; i < perSession; i++) messages.push(hostileMessage(next));
          sent += perSession;
          client.socket.write(Buffer.concat(messages));
          client.socket.end();
          await Promise.race([client.closed, new Promise((r) => setTimeout(r, 5000))]);
          client.socket.destroy();
        }),
      );
      // The canary still answers, mid-run.
      const ready = canary.waitFor('readyForQuery');
      canary.query('SELECT 1');
      await ready;
    }
    expect(sent).toBeGreaterThanOrEqual(100_000);
    expect(proxy.child.exitCode).toBeNull();

    const fresh = await RawClient.login(proxy.port, 'fuzzer', 'fuzzer-secret');
    const row = fresh.waitFor('dataRow');
    fresh.query("SELECT 'alive'");
    expect(((await row) as unknown as { fields: string[] }).fields).toEqual(['alive']);
    fresh.close();
    canary.close();

    // No upstream session is left behind.
    const direct = await directClient(pgInfo);
    try {
      let leaked = -1;
      for (let i = 0; i < 50 && leaked !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const result = await direct.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gatehouse:local:fuzzer'",
        );
        leaked = result.rows[0].n;
      }
      expect(leaked).toBe(0);
    } finally {
      await direct.end();
    }
  }, 300_000);
});
