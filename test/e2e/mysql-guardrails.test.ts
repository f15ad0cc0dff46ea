import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { lexMysql } from '../../sidecar/src/sql/mysql/lexer.ts';
import { DEFAULT_SQL_MODE } from '../../sidecar/src/sql/mysql/sql-mode.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { comQuery, RawMysqlClient } from './support/mysql-raw-client.ts';
import { type ProxyProcess, REPO_ROOT, startProxyProcess } from './support/proxy-process.ts';

/** ../shared/redteam/mysql.jsonl and its schema, copied into the repository. */
interface RedTeamCase {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
}
const CASES: RedTeamCase[] = readFileSync(
  join(REPO_ROOT, 'sidecar/src/policy/guardrails/testdata/redteam-mysql.jsonl'),
  'utf8',
)
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as RedTeamCase);

const DATABASE = 'rt';
const SCHEMA = `DROP DATABASE IF EXISTS rt; CREATE DATABASE rt; USE rt;
CREATE TABLE customers(id int, name text, email text, ssn text, phone text, card text, notes text);
CREATE TABLE orders(id int, customer_id int, amount decimal(10,2), shipped_to text);
INSERT INTO customers VALUES (1,'Alice Smith','alice@example.com','123-45-6789','+1-555-0100','4111111111111111','vip'),(2,'Bob Jones','bob@example.com','987-65-4321','+1-555-0199','5500000000000004','test');
INSERT INTO orders VALUES (1,1,10.5,'1 Main St'),(2,2,20,'2 Oak Ave');`;

const server = inject('mariadb');
let proxy: ProxyProcess;
let admin: mysql.Connection;

/** Everything a refused statement could have changed: rows, tables, routines, views, events, triggers. */
async function snapshot(): Promise<string> {
  const [rows] = await admin.query(
    `SELECT (SELECT JSON_ARRAYAGG(JSON_ARRAY(id, name, email, ssn, phone, card, notes)) FROM rt.customers) AS c,
            (SELECT JSON_ARRAYAGG(JSON_ARRAY(id, customer_id, amount, shipped_to)) FROM rt.orders) AS o,
            (SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'rt') AS t,
            (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'rt') AS r,
            (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'rt') AS e,
            (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'rt') AS g`,
  );
  return JSON.stringify(rows);
}

const client = () => mysqlClient(proxy.port, { database: DATABASE, multipleStatements: true });

beforeAll(async () => {
  admin = await directMysql(server);
  await admin.query(SCHEMA);
  await admin.query(`GRANT ALL PRIVILEGES ON rt.* TO '${server.users.native.user}'@'%'`);
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      DEFAULT_GUARDRAIL,
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

const single = (sql: string) => lexMysql(sql, DEFAULT_SQL_MODE).statements.length === 1;

type MysqlFailure = { errno?: number; sqlMessage?: string } | undefined;

describe('who may connect', () => {
  it('refuses a login to an identity no DatabaseAccess names (1045, naming why)', async () => {
    const refused = (await mysqlClient(proxy.port, {
      user: 'admin',
      password: 'admin-secret',
      database: DATABASE,
    }).then(
      () => undefined,
      (e: unknown) => e,
    )) as MysqlFailure;
    expect(refused?.errno).toBe(1045);
    expect(refused?.sqlMessage).toContain(
      `no DatabaseAccess grants local:admin access to database '${DATABASE}'`,
    );
  });
});

describe('red-team block cases are refused before they reach the database', () => {
  const blocks = CASES.filter((c) => c.expect === 'block');

  it.each(blocks.map((c) => [c.id, c] as const))('%s (COM_QUERY)', async (_id, testCase) => {
    const before = await snapshot();
    const c = await client();
    try {
      const error = (await c.query(testCase.sql).then(
        () => undefined,
        (e: unknown) => e,
      )) as MysqlFailure;
      expect([1142, 1227]).toContain(error?.errno);
      expect(error?.sqlMessage).toMatch(/Gatehouse|guardrail|Guardrail/);
      // The session stays usable.
      expect((await c.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    expect(await snapshot()).toBe(before);
  });

  it.each(blocks.filter((c) => single(c.sql)).map((c) => [c.id, c] as const))(
    '%s (prepared statement)',
    async (_id, testCase) => {
      const before = await snapshot();
      const c = await client();
      try {
        const error = (await c.execute(testCase.sql).then(
          () => undefined,
          (e: unknown) => e,
        )) as MysqlFailure;
        expect([1142, 1227]).toContain(error?.errno);
        expect((await c.execute('SELECT ? AS one', [1]))[0]).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
      expect(await snapshot()).toBe(before);
    },
  );
});

describe('refusals keep their place among pipelined commands', () => {
  it('answers a refused command after the answers owed before it, and keeps the session', async () => {
    const raw = await RawMysqlClient.login(proxy.port, 'demo', 'demo-secret');
    try {
      // One write: a slow query, a refused one, then another query: the answers must come in that order.
      raw.socket.write(
        Buffer.concat([
          comQuery('SELECT SLEEP(0.3) AS slept'),
          comQuery('DROP TABLE customers'),
          comQuery("SELECT 'after' AS x"),
        ]),
      );
      const first = await raw.next();
      expect(first.payload[0]).toBe(1); // one column: the SLEEP result comes first
      await raw.next(); // column definition
      const row = await raw.next();
      expect(row.payload.toString('utf8', 1)).toBe('0');
      expect((await raw.next()).payload[0]).toBe(0xfe);
      const refused = await raw.next();
      expect(refused.seq).toBe(1);
      expect(refused.payload[0]).toBe(0xff);
      expect([1142, 1227]).toContain(refused.payload.readUInt16LE(1));
      expect((await raw.next()).payload[0]).toBe(1);
      await raw.next();
      expect((await raw.next()).payload.toString('utf8', 1)).toBe('after');
      expect((await raw.next()).payload[0]).toBe(0xfe);
    } finally {
      raw.close();
    }
  });
});

describe('red-team allow cases run and return what MariaDB returns', () => {
  const allows = CASES.filter((c) => c.expect === 'allow');
  const shape = (result: unknown) => JSON.stringify(result);
  /** Runs the case inside a transaction rolled back after, so both sides start from the same rows. */
  const inRollback = async <T>(c: mysql.Connection, run: () => Promise<T>): Promise<T> => {
    await c.query('BEGIN');
    try {
      return await run();
    } finally {
      await c.query('ROLLBACK');
    }
  };

  it.each(allows.map((c) => [c.id, c] as const))('%s (COM_QUERY)', async (_id, testCase) => {
    const through = await client();
    const direct = await directMysql(server, DATABASE);
    try {
      const [viaProxy] = await inRollback(through, () => through.query(testCase.sql));
      const [viaDirect] = await inRollback(direct, () => direct.query(testCase.sql));
      expect(shape(viaProxy)).toEqual(shape(viaDirect));
    } finally {
      await through.end();
      await direct.end();
    }
  });

  it.each(allows.filter((c) => single(c.sql)).map((c) => [c.id, c] as const))(
    '%s (prepared statement)',
    async (_id, testCase) => {
      const through = await client();
      const direct = await directMysql(server, DATABASE);
      try {
        const [viaProxy] = await inRollback(through, () => through.execute(testCase.sql));
        const [viaDirect] = await inRollback(direct, () => direct.execute(testCase.sql));
        expect(shape(viaProxy)).toEqual(shape(viaDirect));
      } finally {
        await through.end();
        await direct.end();
      }
    },
  );
});
