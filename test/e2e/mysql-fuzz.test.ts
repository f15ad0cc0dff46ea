import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { directMysql, mysqlProxyConfig } from './support/mysql.ts';
import { comQuery, RawMysqlClient, rawPacket } from './support/mysql-raw-client.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
let proxy: ProxyProcess;
/** An upstream account of its own, so the leak check counts only this test's sessions. */
const FUZZ_USER = 'fuzz_upstream';
const FUZZ_PASSWORD = 'fuzz-upstream-secret';

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

const u32 = (n: number) => Buffer.from(Uint32Array.of(n).buffer);
const TEMPLATES = [
  comQuery('SELECT 1'),
  comQuery('SELECT 1; SELECT 2'),
  rawPacket(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT ? + 1')]), 0),
  rawPacket(
    Buffer.concat([Buffer.from([0x17]), u32(1), Buffer.from([0]), u32(1), Buffer.from([0, 1, 3, 0]), u32(5)]),
    0,
  ),
  rawPacket(Buffer.concat([Buffer.from([0x18]), u32(1), Buffer.from([0, 0]), Buffer.from('data')]), 0),
  rawPacket(Buffer.concat([Buffer.from([0x19]), u32(1)]), 0),
  rawPacket(Buffer.concat([Buffer.from([0x1a]), u32(1)]), 0),
  rawPacket(Buffer.from([0x0e]), 0),
  rawPacket(Buffer.concat([Buffer.from([0x02]), Buffer.from('app')]), 0),
  rawPacket(Buffer.concat([Buffer.from([0x04]), Buffer.from('proto_items\0')]), 0),
  rawPacket(Buffer.from([0x1b, 0, 0]), 0),
  rawPacket(Buffer.from([0x1f]), 0),
  rawPacket(Buffer.from([0x09]), 0),
];

/** One hostile packet: random bytes, or a real command with its length, command byte or body mutated. */
function hostilePacket(next: (n: number) => number): Buffer {
  const kind = next(5);
  if (kind === 0) {
    const body = Buffer.alloc(next(64));
    for (let i = 0; i < body.length; i++) body[i] = next(256);
    return rawPacket(body, next(256));
  }
  const p = Buffer.from(TEMPLATES[next(TEMPLATES.length)]!);
  if (kind === 1) p.writeUIntLE(next(2) ? next(1 << 24) : next(8), 0, 3);
  else if (kind === 2) p[4] = next(256);
  else if (kind === 3) p[4 + next(Math.max(1, p.length - 4))] = next(256);
  else return p.subarray(0, 1 + next(p.length));
  return p;
}

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(
    `CREATE USER IF NOT EXISTS '${FUZZ_USER}'@'%' IDENTIFIED BY '${FUZZ_PASSWORD}';
     GRANT SELECT ON ${server.database}.* TO '${FUZZ_USER}'@'%'`,
  );
  await admin.end();
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['user'] = FUZZ_USER;
  (config['upstream'] as Record<string, unknown>)['password'] = { value: FUZZ_PASSWORD };
  // The canary has an identity of its own: a fuzzed COM_PROCESS_KILL can only reach the fuzzer's sessions.
  config['identity'] = {
    mode: 'local',
    local: {
      users: [
        { name: 'fuzzer', password: 'fuzzer-secret' },
        { name: 'canary', password: 'canary-secret' },
      ],
    },
  };
  proxy = await startProxyProcess(config);
});

afterAll(async () => {
  await proxy?.stop();
});

describe('hostile input', () => {
  it('survives 100,000 random and mutated packets; other sessions are unaffected', async () => {
    const canary = await RawMysqlClient.login(proxy.port, 'canary', 'canary-secret');
    const next = rng(0x5eed);
    let sent = 0;

    // Garbage during the handshake: random bytes, bad lengths, truncated responses.
    for (let i = 0; i < 300; i++) {
      const socket = connect({ host: '127.0.0.1', port: proxy.port });
      socket.on('error', () => {});
      socket.resume();
      const junk = Buffer.alloc(1 + next(200));
      for (let j = 0; j < junk.length; j++) junk[j] = next(256);
      if (i % 3 === 0 && junk.length >= 4) junk.writeUIntLE(next(2) ? 32 : 0xffffff, 0, 3);
      socket.end(junk);
      sent++;
      await new Promise((r) => socket.once('close', r));
    }

    const perSession = 500;
    while (sent < 100_000) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, () => RawMysqlClient.login(proxy.port, 'fuzzer', 'fuzzer-secret')),
      );
      await Promise.all(
        batch.map(async (client) => {
          const packets: Buffer[] = [];
          for (let i = 0; i < perSession; i++) packets.push(hostilePacket(next));
          sent += perSession;
          client.socket.resume();
          client.socket.write(Buffer.concat(packets));
          client.socket.end();
          await Promise.race([client.closed, new Promise((r) => setTimeout(r, 5000))]);
          client.socket.destroy();
        }),
      );
      expect(await canary.query('SELECT 1')).toEqual([['1']]);
    }
    expect(sent).toBeGreaterThanOrEqual(100_000);
    expect(proxy.child.exitCode).toBeNull();

    const fresh = await RawMysqlClient.login(proxy.port, 'fuzzer', 'fuzzer-secret');
    expect(await fresh.query("SELECT 'alive'")).toEqual([['alive']]);
    fresh.close();
    canary.close();

    // No upstream session is left behind.
    const direct = await directMysql(server);
    try {
      let leaked = -1;
      for (let i = 0; i < 100 && leaked !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const [rows] = await direct.query(
          'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ?',
          [FUZZ_USER],
        );
        leaked = Number((rows as { n: number }[])[0]!.n);
      }
      expect(leaked).toBe(0);
    } finally {
      await direct.end();
    }
  }, 300_000);
});
