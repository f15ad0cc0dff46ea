import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { RawMysqlClient, type RawPacket, rawPacket } from './support/mysql-raw-client.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * Issue 12, classes 1 and 2 through MariaDB: the analysis reads statements under the sql_mode and
 * character set the server reads them under, or the session is refused; and every prepared
 * statement a command runs is one Gatehouse judged.
 */
const server = inject('mariadb');
const DATABASE = 'reading_names';
const PII = ['123-45-6789', '987-65-4321', 'Quorvath', 'Belzinde'];
let proxy: ProxyProcess;

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE}; USE ${DATABASE};
    CREATE TABLE customers(id int, name text, ssn text);
    INSERT INTO customers VALUES (1, 'Quorvath', '123-45-6789'), (2, 'Belzinde', '987-65-4321');
    CREATE TABLE v(id int PRIMARY KEY, x text);
    INSERT INTO v VALUES (1, 'a'), (2, 'b'), (3, 'c');`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  await admin.end();
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('MaskingPolicy', 'pii', {
        autoDetect: true,
        rules: [{ columns: ['customers.ssn', 'customers.name'], method: 'redact' }],
      }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
        maskingPolicies: ['pii'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
});

function expectNoPii(received: unknown): void {
  const text = JSON.stringify(received, (_k, v: unknown) =>
    (v as { type?: string })?.type === 'Buffer'
      ? Buffer.from((v as { data: number[] }).data).toString('latin1')
      : v,
  );
  for (const value of PII) expect(text).not.toContain(value);
}

/** Every packet that arrives until the connection has been quiet for a moment. */
async function drain(raw: RawMysqlClient, frames: Buffer[]): Promise<RawPacket[]> {
  const packets: RawPacket[] = [];
  let timer: NodeJS.Timeout | undefined;
  const quiet = new Promise<void>((resolve) => {
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(resolve, 400);
    };
    raw.onPacket((p) => {
      packets.push(p);
      arm();
    });
    arm();
  });
  raw.socket.write(Buffer.concat(frames));
  await quiet;
  return packets;
}

const comStmtPrepare = (sql: string) => rawPacket(Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)]), 0);
function comStmtExecute(id: number): Buffer {
  const payload = Buffer.alloc(10);
  payload[0] = 0x17;
  payload.writeUInt32LE(id, 1);
  payload[5] = 0; // no cursor
  payload.writeUInt32LE(1, 6);
  return rawPacket(payload, 0);
}
const errors = (packets: RawPacket[]) =>
  packets.filter((p) => p.payload[0] === 0xff).map((p) => p.payload.toString('utf8', 9));

describe('sql_mode and character sets the analysis does not read', () => {
  it.each([
    "SET sql_mode = 'PIPES_AS_CONCAT'",
    "SET SESSION sql_mode = 'ANSI'",
    "SET LOCAL sql_mode='ansi'",
    "SET @@sql_mode = 'HIGH_NOT_PRECEDENCE'",
    "SET @@session.sql_mode := 'STRICT_TRANS_TABLES,PIPES_AS_CONCAT'",
    "SET @@SESSION.SQL_MODE = 'oracle'",
    "SET `sql_mode` = 'POSTGRESQL'",
    "SET sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT')",
    "/*!40101 SET sql_mode = 'PIPES_AS_CONCAT' */",
    "/*!SET sql_mode = 'HIGH_NOT_PRECEDENCE' */",
    "SET NAMES utf8mb4, sql_mode = 'MSSQL'",
    'SET sql_mode = @m',
    "SET sql_mode = (SELECT 'ANSI')",
  ])('%s is refused', async (set) => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      await c.query("SET @m = 'PIPES_AS_CONCAT'");
      await expect(c.query(set)).rejects.toThrow(/Gatehouse/);
      const [rows] = await c.query('SELECT @@sql_mode AS m');
      expect((rows as { m: string }[])[0]!.m).not.toMatch(/PIPES_AS_CONCAT|HIGH_NOT/);
      // Under the server's reading this is NOT(id BETWEEN 0 AND 1); under HIGH_NOT_PRECEDENCE every row.
      await c.query('DELETE FROM v WHERE NOT id BETWEEN 0 AND 1 AND id > 100');
    } finally {
      await c.end();
    }
    const admin = await directMysql(server, DATABASE);
    const [left] = await admin.query('SELECT count(*) AS n FROM v');
    await admin.end();
    expect(Number((left as { n: number }[])[0]!.n)).toBe(3);
  });

  it.each([
    'SET NAMES sjis',
    "SET NAMES 'gbk'",
    'SET CHARACTER SET big5',
    'SET character_set_client = cp932',
    'SET @@session.character_set_client = gb18030',
    '/*!40101 SET NAMES sjis */',
  ])('%s is refused', async (set) => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      await expect(c.query(set)).rejects.toThrow(/Gatehouse/);
      const [rows] = await c.query('SELECT @@character_set_client AS c');
      expect((rows as { c: string }[])[0]!.c).toBe('utf8mb4');
    } finally {
      await c.end();
    }
  });

  it('a client asking for sjis in its handshake is refused', async () => {
    await expect(
      mysqlClient(proxy.port, { database: DATABASE, charset: 'SJIS_JAPANESE_CI' }),
    ).rejects.toThrow(/character set/);
  });

  it('harmless sql_mode changes still run', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      await c.query("SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')");
      await c.query("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'");
      await c.query("SET sql_mode = ''");
    } finally {
      await c.end();
    }
  });

  it.each([
    ["SET GLOBAL sql_mode = 'PIPES_AS_CONCAT'", /sql_mode PIPES_AS_CONCAT/],
    [`SET GLOBAL init_connect = "SET sql_mode='ANSI'"`, /sql_mode (ANSI|PIPES_AS_CONCAT)/],
    [`SET GLOBAL init_connect = 'SET NAMES sjis'`, /character_set_client sjis/],
  ])('a session the server starts with %s is refused', async (set, message) => {
    const admin = await directMysql(server);
    const [before] = await admin.query('SELECT @@GLOBAL.sql_mode AS m, @@GLOBAL.init_connect AS i');
    const saved = (before as { m: string; i: string }[])[0]!;
    await admin.query(set);
    try {
      await expect(mysqlClient(proxy.port, { database: DATABASE })).rejects.toThrow(message);
    } finally {
      await admin.query('SET GLOBAL sql_mode = ?, GLOBAL init_connect = ?', [saved.m, saved.i]);
      await admin.end();
    }
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    await c.end();
  });
});

describe('without any policy (audit only)', () => {
  it.each([
    "SET sql_mode = 'PIPES_AS_CONCAT'",
    "SET @@session.sql_mode = 'ANSI'",
    'SET NAMES sjis',
    'SET sql_mode = @m',
  ])('%s is refused all the same', async (set) => {
    const config = mysqlProxyConfig(server);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const bare = await startProxyProcess(config);
    try {
      const c = await mysqlClient(bare.port, { database: DATABASE });
      try {
        await expect(c.query(set)).rejects.toThrow(/Gatehouse refused the statement/);
        await c.query('SELECT 1');
      } finally {
        await c.end();
      }
    } finally {
      await bare.stop();
    }
  });
});

describe('every prepared statement a command runs was judged', () => {
  it('COM_STMT_EXECUTE of an id Gatehouse did not see prepared is refused', async () => {
    const raw = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    try {
      await raw.query(`USE ${DATABASE}`);
      for (const id of [1, 7777, 0xffffffff]) {
        const packets = await drain(raw, [comStmtExecute(id)]);
        expect(errors(packets).join()).toMatch(/Gatehouse: unknown prepared statement handler/);
      }
    } finally {
      raw.close();
    }
  });

  it("MariaDB's execute of id -1 pipelined after a prepare runs, masked, the statement just prepared", async () => {
    const raw = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    try {
      await raw.query(`USE ${DATABASE}`);
      const clean = await drain(raw, [comStmtPrepare("SELECT 'x' AS ssn, 'y' AS name")]);
      expect(errors(clean)).toEqual([]);
      const packets = await drain(raw, [
        comStmtPrepare('SELECT ssn, name FROM customers'),
        comStmtExecute(0xffffffff),
      ]);
      expect(errors(packets)).toEqual([]);
      expect(packets.length).toBeGreaterThan(4);
      expectNoPii(packets.map((p) => p.payload.toString('latin1')));
      // A prepare that fails leaves nothing for -1 to run.
      const failed = await drain(raw, [
        comStmtPrepare('SELECT nonsense FROM nowhere'),
        comStmtExecute(0xffffffff),
      ]);
      expect(errors(failed)).toHaveLength(2);
      expectNoPii(failed.map((p) => p.payload.toString('latin1')));
    } finally {
      raw.close();
    }
  });

  it('PREPARE ... FROM @var and EXECUTE are judged by the text the variable holds', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      await c.query("SET @q = 'SELECT ssn, name FROM customers'");
      const prepared = await c.query('PREPARE s FROM @q').then(
        () => undefined,
        (e: unknown) => e,
      );
      if (prepared === undefined) {
        const [rows] = await c.query('EXECUTE s');
        expectNoPii(rows);
        await c.query('DEALLOCATE PREPARE s');
      }
      await c.query("PREPARE s FROM 'SELECT ssn FROM customers WHERE id > ?'");
      await c.query('SET @k = 0');
      const [rows] = await c.query('EXECUTE s USING @k');
      expect((rows as unknown[]).length).toBe(2);
      expectNoPii(rows);
    } finally {
      await c.end();
    }
  });

  it('mysql2 prepared statements, reused and closed, stay masked', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      for (let i = 0; i < 3; i++) {
        const [rows] = await c.execute('SELECT id, ssn, name FROM customers WHERE id = ?', [1]);
        expect((rows as unknown[]).length).toBe(1);
        expectNoPii(rows);
      }
      c.unprepare('SELECT id, ssn, name FROM customers WHERE id = ?');
      const [again] = await c.execute('SELECT id, ssn, name FROM customers WHERE id = ?', [2]);
      expectNoPii(again);
    } finally {
      await c.end();
    }
  });
});
