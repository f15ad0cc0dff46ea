import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestIssuer,
  serviceAccountClaims,
  type TestIssuer,
} from '../../sidecar/src/identity/test-issuer.ts';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { RawMysqlClient } from './support/mysql-raw-client.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const tls = inject('tls');
let proxy: ProxyProcess;

beforeAll(async () => {
  proxy = await startProxyProcess(mysqlProxyConfig(server));
});

afterAll(async () => {
  await proxy?.stop();
});

type MysqlFailure = { errno?: number; sqlMessage?: string } | undefined;
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as MysqlFailure,
  );

describe('KILL through the proxy', () => {
  it('reaches the upstream thread of the session the client knows, for the same identity only', async () => {
    const victim = await mysqlClient(proxy.port);
    const killer = await mysqlClient(proxy.port);
    const stranger = await mysqlClient(proxy.port, { user: 'admin', password: 'admin-secret' });
    try {
      const sleeping = failure(victim.query('SELECT SLEEP(30)'));
      await new Promise((r) => setTimeout(r, 300));
      // Another identity cannot touch it: as for an unknown thread.
      expect((await failure(stranger.query(`KILL QUERY ${victim.threadId}`)))?.errno).toBe(1094);
      const started = Date.now();
      await killer.query(`KILL QUERY ${victim.threadId}`);
      expect((await sleeping)?.errno).toBe(1317);
      expect(Date.now() - started).toBeLessThan(5000);
      // The victim's session is still there.
      expect((await victim.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
      // KILL CONNECTION ends it.
      await killer.query(`KILL ${victim.threadId}`);
      expect(await failure(victim.query('SELECT 1'))).toBeDefined();
    } finally {
      victim.destroy();
      await killer.end();
      await stranger.end();
    }
  });
});

describe('streaming', () => {
  it('passes a 10-million-row result with bounded proxy memory', async () => {
    const client = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    const before = proxy.memory();
    let rows = 0;
    const done = new Promise<void>((resolve) => {
      let header = true;
      let columns = 2;
      client.onPacket((p) => {
        if (header) {
          header = false;
          return;
        }
        if (columns > 0) {
          columns--;
          return;
        }
        if (p.payload[0] === 0xfe && p.payload.length < 9) resolve();
        else rows++;
      });
    });
    client.socket.write(queryPacket('SELECT seq, MD5(seq) FROM seq_1_to_10000000'));
    await done;
    client.close();
    const after = proxy.memory();
    console.log(`10M rows: proxy RSS ${before.rssKb} kB before, peak ${after.peakKb} kB`);
    expect(rows).toBe(10_000_000);
    expect(after.peakKb - before.rssKb).toBeLessThan(96 * 1024);
  }, 300_000);

  it('holds the database back for a client that stops reading, instead of buffering', async () => {
    const client = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    const direct = await directMysql(server);
    try {
      let rows = 0;
      let columns = 2;
      let header = true;
      const done = new Promise<void>((resolve) => {
        client.onPacket((p) => {
          if (header) header = false;
          else if (columns > 0) columns--;
          else if (p.payload[0] === 0xfe && p.payload.length < 9) resolve();
          else rows++;
        });
      });
      client.socket.write(queryPacket("SELECT seq, REPEAT('x', 200) FROM seq_1_to_2000000"));
      await new Promise((r) => setTimeout(r, 300));
      client.socket.pause();
      const baseline = proxy.memory().rssKb;
      await new Promise((r) => setTimeout(r, 2000));
      const [running] = await direct.query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE '%seq_1_to_2000000%' AND INFO NOT LIKE '%PROCESSLIST%'",
      );
      // The server is still sending: it waits for the proxy, which waits for the client.
      expect(Number((running as { n: number }[])[0]!.n)).toBe(1);
      expect(proxy.memory().rssKb - baseline).toBeLessThan(48 * 1024);
      client.socket.resume();
      await done;
      expect(rows).toBe(2_000_000);
    } finally {
      client.close();
      await direct.end();
    }
  }, 120_000);
});

describe('limits and shutdown', () => {
  it('refuses connections beyond the limit with error 1040', async () => {
    const limited = await startProxyProcess(mysqlProxyConfig(server, { limits: { maxConnections: 1 } }));
    try {
      const first = await mysqlClient(limited.port);
      expect((await failure(mysqlClient(limited.port)))?.errno).toBe(1040);
      await first.end();
    } finally {
      await limited.stop();
    }
  });

  it('lets a running statement finish on SIGTERM, then exits', async () => {
    const stopping = await startProxyProcess(mysqlProxyConfig(server));
    const busy = await mysqlClient(stopping.port);
    const idle = await mysqlClient(stopping.port);
    const running = busy.query('SELECT SLEEP(1) AS slept');
    await new Promise((r) => setTimeout(r, 200));
    const exit = stopping.stop('SIGTERM');
    expect((await running)[0]).toEqual([{ slept: 0 }]);
    expect(await exit).toBe(0);
    expect(await failure(idle.query('SELECT 1'))).toBeDefined();
    busy.destroy();
    idle.destroy();
  });
});

describe('the identity in the database', () => {
  it('reaches the general log and @gatehouse_identity intact, whatever characters the name holds', async () => {
    const name = "o'hara\\'; DROP TABLE t; -- ";
    const tagged = await startProxyProcess(
      mysqlProxyConfig(server, {
        identity: { mode: 'local', local: { users: [{ name, password: 'quote-secret' }] } },
      }),
    );
    const admin = await directMysql(server);
    try {
      await admin.query("SET GLOBAL log_output = 'TABLE', GLOBAL general_log = 1");
      const c = await mysqlClient(tagged.port, { user: name, password: 'quote-secret' });
      const [rows] = await c.query('SELECT @gatehouse_identity AS who');
      expect(rows).toEqual([{ who: `local:${name}` }]);
      await c.end();
      // Other tests' sessions log their own tags meanwhile: look for this one's.
      const [logged] = await admin.query(
        'SELECT CONVERT(argument USING utf8mb4) AS sql_text FROM mysql.general_log WHERE CONVERT(argument USING utf8mb4) LIKE ? LIMIT 1',
        ["SET @gatehouse_identity = _utf8mb4'local:o''hara%"],
      );
      expect((logged as { sql_text: string }[])[0]?.sql_text).toContain(
        "@gatehouse_identity = _utf8mb4'local:o''hara",
      );
    } finally {
      await admin.query('SET GLOBAL general_log = 0');
      await admin.end();
      await tagged.stop();
    }
  });
});

describe('token identity', () => {
  const ISSUER = 'https://kubernetes.default.svc.cluster.local';
  const AUDIENCE = 'gatehouse.dev';
  let issuer: TestIssuer;
  let gateway: ProxyProcess;

  beforeAll(async () => {
    issuer = await createTestIssuer('RS256', 'cluster-key-1');
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-jwks-'));
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [issuer.publicJwk] }));
    gateway = await startProxyProcess(
      mysqlProxyConfig(server, {
        identity: { mode: 'token', token: { issuer: ISSUER, audience: AUDIENCE, jwksFile } },
        clientTls: { certFile: tls.certFile, keyFile: tls.keyFile },
      }),
    );
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it('takes a service-account token as the password over TLS and tags the upstream session', async () => {
    const token = await issuer.sign(
      serviceAccountClaims({
        issuer: ISSUER,
        audience: AUDIENCE,
        namespace: 'shop',
        name: 'api',
        pod: 'api-1',
      }),
    );
    const result = await mysqlCli(['--skip-column-names', '-e', 'SELECT @gatehouse_identity'], {
      server,
      login: { user: 'anyone', password: token },
      port: gateway.port,
      ssl: 'verify',
      caFile: tls.caFile,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('system:serviceaccount:shop:api');
    await new Promise((r) => setTimeout(r, 300));
    const audit = readFileSync(gateway.auditFile!, 'utf8');
    expect(audit).not.toContain(token);
    expect(audit).toContain('"protocol":"mysql"');
    // The client's program_name connection attribute, as the audit's `application`.
    expect(audit).toMatch(/"protocol":"mysql".*"application":"(mysql|mariadb)"/);
  });

  it('refuses a token without TLS, and a bad token, with error 1045', async () => {
    const token = await issuer.sign(
      serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'api' }),
    );
    const plain = await mysqlCli(['-e', 'SELECT 1'], {
      server,
      login: { user: 'x', password: token },
      port: gateway.port,
    });
    expect(plain.stderr).toMatch(/ERROR 1045.*TLS/);
    const bad = await mysqlCli(['-e', 'SELECT 1'], {
      server,
      login: { user: 'x', password: 'not-a-token' },
      port: gateway.port,
      ssl: 'verify',
      caFile: tls.caFile,
    });
    expect(bad.stderr).toMatch(/ERROR 1045.*Gatehouse/);
  });
});

function queryPacket(sql: string): Buffer {
  const payload = Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]);
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  return Buffer.concat([header, payload]);
}
