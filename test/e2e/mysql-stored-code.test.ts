import { readFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_GUARDRAIL } from '../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/*
 * Guardrails see into MariaDB's stored code: a stored function in an expression, a CALL, a trigger of
 * a written table and a view that calls a function are judged by what their bodies do. Harmful
 * routines are called in many positions, as text and as prepared statements, and the data is checked
 * unchanged in the database after every refusal. Routines are DDL to create (issue 11: the quickstart's
 * `admin`, allowed ddl, was refused CREATE PROCEDURE and CALL).
 */

const server = inject('mariadb');
const DATABASE = 'sc';
let proxy: ProxyProcess;
let admin: mysql.Connection;

const SCHEMA = [
  `DROP DATABASE IF EXISTS sc`,
  `CREATE DATABASE sc`,
  `USE sc`,
  `CREATE TABLE v(id int PRIMARY KEY, x text)`,
  `INSERT INTO v WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50) SELECT n, CONCAT('row ', n) FROM g`,
  `CREATE TABLE log(msg text)`,
  `CREATE TABLE trig_t(id int)`,
  `CREATE TABLE shaped(msg text)`,
  `CREATE FUNCTION gh_del() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM v; RETURN 1; END`,
  `CREATE FUNCTION gh_upd() RETURNS INT BEGIN UPDATE v SET x = 'gone'; RETURN 1; END`,
  `CREATE FUNCTION gh_liar() RETURNS INT DETERMINISTIC READS SQL DATA BEGIN DELETE FROM v; RETURN 1; END`,
  `CREATE FUNCTION gh_nested() RETURNS INT RETURN gh_del() + 0`,
  `CREATE FUNCTION gh_branchy(a INT) RETURNS INT BEGIN DECLARE n INT DEFAULT 0; IF a > 0 THEN SET n = a; ELSE DELETE FROM v; END IF; RETURN n; END`,
  `CREATE FUNCTION gh_loop() RETURNS INT BEGIN DECLARE i INT DEFAULT 0; WHILE i < 3 DO SET i = i + 1; UPDATE v SET x = NULL; END WHILE; RETURN i; END`,
  `CREATE FUNCTION \`Gh Quoted\`() RETURNS INT BEGIN DELETE FROM v; RETURN 1; END`,
  `CREATE PROCEDURE gh_p() BEGIN DELETE FROM v; END`,
  `CREATE PROCEDURE gh_p_drop() BEGIN DROP TABLE v; END`,
  `CREATE PROCEDURE gh_p_dyn(q TEXT) BEGIN SET @q = q; PREPARE s FROM @q; EXECUTE s; END`,
  `CREATE PROCEDURE gh_p_calls() BEGIN CALL gh_p(); END`,
  `CREATE VIEW gh_view AS SELECT gh_del() AS n`,
  `CREATE TRIGGER t_bad AFTER INSERT ON trig_t FOR EACH ROW DELETE FROM v`,
  // Harmless
  `CREATE FUNCTION ok_add(a INT) RETURNS INT DETERMINISTIC RETURN a + 1`,
  `CREATE FUNCTION ok_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM v)`,
  `CREATE FUNCTION ok_outer(a INT) RETURNS INT DETERMINISTIC RETURN ok_add(ok_add(a))`,
  `CREATE PROCEDURE ok_log(m TEXT) INSERT INTO log VALUES (m)`,
  `CREATE PROCEDURE ok_forget(m TEXT) BEGIN DECLARE n INT; SELECT COUNT(*) INTO n FROM log; DELETE FROM log WHERE msg = m; END`,
  `CREATE TRIGGER t_shape BEFORE INSERT ON shaped FOR EACH ROW SET NEW.msg = UPPER(NEW.msg)`,
  `CREATE VIEW ok_view AS SELECT id, ok_add(id) AS next FROM v`,
];

async function state(): Promise<string> {
  const [rows] = await admin.query(
    `SELECT COUNT(*) AS n, MD5(GROUP_CONCAT(id, ':', COALESCE(x, '~') ORDER BY id)) AS sum FROM sc.v`,
  );
  return JSON.stringify(rows);
}

const client = (user = 'demo') =>
  mysqlClient(proxy.port, { user, password: `${user}-secret`, database: DATABASE, multipleStatements: true });

type Failure = { errno?: number; sqlMessage?: string };

async function outcome(
  c: mysql.Connection,
  sql: string,
  how: 'query' | 'execute' = 'query',
): Promise<Failure & { ok?: true }> {
  const run = how === 'query' ? c.query(sql) : c.execute(sql);
  return run.then(
    () => ({ ok: true as const }),
    (e: Failure) => e,
  );
}

beforeAll(async () => {
  admin = await directMysql(server);
  for (const statement of SCHEMA) await admin.query(statement);
  await admin.query(`GRANT ALL PRIVILEGES ON sc.* TO '${server.users.native.user}'@'%'`);
  // The proxy's account reads routine bodies (information_schema shows them to their definer or to
  // whoever may read mysql.proc): documented in docs/mysql.md.
  await admin.query(`GRANT SELECT ON mysql.proc TO '${server.users.native.user}'@'%'`);
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
      policyDocument('DatabaseAccess', 'admin', {
        subjects: [localUser('admin')],
        allow: ['read', 'write', 'ddl'],
        guardrails: ['gatehouse-defaults'],
      }),
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

const HARMFUL_CALLS = [
  'gh_del()',
  'gh_upd()',
  'gh_liar()',
  'gh_nested()',
  'gh_branchy(1)',
  'gh_loop()',
  '`Gh Quoted`()',
  'sc.gh_del()',
  '`sc`.`gh_del`()',
  'SC.GH_DEL()',
  'gh_del ()',
  'ABS(gh_del())',
];

const POSITIONS: readonly ((f: string) => string)[] = [
  (f) => `SELECT ${f}`,
  (f) => `SELECT 1 FROM DUAL WHERE ${f} IS NOT NULL`,
  (f) => `SELECT id FROM v ORDER BY ${f} LIMIT 1`,
  (f) => `SELECT (SELECT ${f})`,
  (f) => `SELECT * FROM (SELECT ${f} AS n) AS d`,
  (f) => `WITH a AS (SELECT ${f} AS n) SELECT n FROM a`,
  (f) => `SELECT IF(${f} > 0, 1, 0)`,
  (f) => `SELECT CASE WHEN 1 THEN ${f} END`,
  (f) => `SELECT COALESCE(NULL, ${f})`,
  (f) => `INSERT INTO log SELECT ${f}`,
  (f) => `INSERT INTO log VALUES (${f})`,
  (f) => `UPDATE log SET msg = ${f} WHERE msg = 'none'`,
  (f) => `DO ${f}`,
  (f) => `SET @x = ${f}`,
  (f) => `SELECT ${f} INTO @x`,
];

describe('calls of harmful stored functions are refused in every position, and nothing changes', () => {
  const cases = HARMFUL_CALLS.flatMap((f) => POSITIONS.map((place) => place(f)));
  it.each(cases.map((sql) => [sql]))('%s', async (sql) => {
    const before = await state();
    const c = await client();
    try {
      const text = await outcome(c, sql);
      expect(text.errno, `text: ${text.sqlMessage}`).toBeOneOf([1227, 1142]);
      expect(text.sqlMessage).toMatch(/^Gatehouse/);
      const prepared = await outcome(c, sql, 'execute');
      expect(prepared.errno, `prepared: ${prepared.sqlMessage}`).toBeOneOf([1227, 1142]);
      const [rows] = await c.query('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });
});

describe('other ways into stored code are refused too', () => {
  it.each([
    ['CALL gh_p()'],
    ['CALL gh_p'],
    ['CALL sc.gh_p()'],
    ['CALL gh_p_drop()'],
    ["CALL gh_p_dyn('DELETE FROM v')"],
    ['CALL gh_p_calls()'],
    ['CALL ok_log(gh_del())'],
    ['SELECT * FROM gh_view'],
    ['EXPLAIN SELECT gh_del()'],
    ['SELECT * FROM v WHERE id = (SELECT gh_del())'],
    ['INSERT INTO trig_t VALUES (1)'],
    ['SELECT sc.no_such_function()'],
  ])('%s', async (sql) => {
    const before = await state();
    const c = await client();
    try {
      const result = await outcome(c, sql);
      expect(result.errno, result.sqlMessage).toBeOneOf([1227, 1142]);
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });
});

describe('names the catalog does not know', () => {
  it('reaches the server with an unqualified unknown name only after a reload showed it is no stored routine', async () => {
    const before = await state();
    const c = await client();
    try {
      // MySQL resolves built-ins (and loadable functions) before stored functions: the server answers.
      expect((await outcome(c, 'SELECT no_such_function_anywhere()')).errno).toBe(1305);
    } finally {
      await c.end();
    }
    expect(await state()).toBe(before);
  });
});

describe('harmless stored code runs', () => {
  it('allows functions, procedures, views and triggers whose bodies are harmless, and audits the code they ran', async () => {
    const c = await client();
    try {
      expect((await c.query('SELECT ok_add(1) AS n'))[0]).toEqual([{ n: 2 }]);
      expect((await c.execute('SELECT ok_outer(2) AS n'))[0]).toEqual([{ n: 4 }]);
      expect((await c.query('SELECT ok_count() AS n'))[0]).toEqual([{ n: 50 }]);
      expect((await c.query('SELECT next FROM ok_view WHERE id = 1'))[0]).toEqual([{ next: 2 }]);
      await c.query("CALL ok_log('hello')");
      await c.query("CALL ok_forget('hello')");
      await c.query("INSERT INTO shaped VALUES ('quiet')");
      expect((await c.query('SELECT msg FROM shaped'))[0]).toEqual([{ msg: 'QUIET' }]);
      expect((await c.query("SELECT UPPER('x') AS u, LAST_INSERT_ID() >= 0 AS t"))[0]).toEqual([
        { u: 'X', t: 1 },
      ]);
    } finally {
      await c.end();
    }
    await expect
      .poll(() => readFileSync(proxy.auditFile!, 'utf8'))
      .toMatch(/"reason":"runs trigger sc.t_shape on sc.shaped"/);
    expect(readFileSync(proxy.auditFile!, 'utf8')).toMatch(
      /"reason":"runs function sc.ok_outer, function sc.ok_add"/,
    );
  });
});

describe('routines are DDL to create, and a call is judged by what the routine does', () => {
  it('lets an identity allowed ddl create a procedure and a function and call them', async () => {
    const c = await client('admin');
    try {
      await c.query(
        'CREATE PROCEDURE made_here(IN m TEXT) BEGIN DECLARE n INT DEFAULT 0; SET n = LENGTH(m); IF n > 0 THEN INSERT INTO log VALUES (m); END IF; END',
      );
      await c.query("CALL made_here('from admin')");
      await c.query('CREATE FUNCTION made_fn(a INT) RETURNS INT DETERMINISTIC RETURN a * 3');
      expect((await c.query('SELECT made_fn(2) AS n'))[0]).toEqual([{ n: 6 }]);
      await c.query(
        'CREATE TRIGGER made_trig BEFORE INSERT ON log FOR EACH ROW SET NEW.msg = LOWER(NEW.msg)',
      );
      await c.query("INSERT INTO log VALUES ('LOUD')");
      const [rows] = await admin.query(
        "SELECT msg FROM sc.log WHERE msg IN ('from admin', 'loud') ORDER BY msg",
      );
      expect(rows).toEqual([{ msg: 'from admin' }, { msg: 'loud' }]);
    } finally {
      await c.end();
    }
  });

  it('refuses to create code whose body the guardrails refuse', async () => {
    const before = await state();
    const c = await client('admin');
    try {
      for (const sql of [
        'CREATE PROCEDURE bad_p() BEGIN DELETE FROM v; END',
        'CREATE FUNCTION bad_f() RETURNS INT BEGIN UPDATE v SET x = 1; RETURN 1; END',
        'CREATE TRIGGER bad_t AFTER INSERT ON log FOR EACH ROW DELETE FROM v',
        'CREATE EVENT bad_e ON SCHEDULE EVERY 1 DAY DO DELETE FROM v',
        'CREATE PROCEDURE bad_dyn(q TEXT) BEGIN PREPARE s FROM q; EXECUTE s; END',
      ]) {
        const result = await outcome(c, sql);
        expect(result.errno, `${sql}: ${result.sqlMessage}`).toBeOneOf([1227, 1142]);
      }
    } finally {
      await c.end();
    }
    const [routines] = await admin.query(
      "SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'sc' AND ROUTINE_NAME LIKE 'bad%'",
    );
    expect(routines).toEqual([{ n: 0 }]);
    expect(await state()).toBe(before);
  });

  it('reloads its catalog for a routine created directly on the database, then judges its body', async () => {
    const c = await client();
    try {
      await c.query('SELECT 1');
      await admin.query('CREATE FUNCTION sc.late_ok(a INT) RETURNS INT DETERMINISTIC RETURN a * 10');
      await admin.query('CREATE FUNCTION sc.late_bad() RETURNS INT BEGIN DELETE FROM v; RETURN 1; END');
      const before = await state();
      expect((await c.query('SELECT late_ok(4) AS n'))[0]).toEqual([{ n: 40 }]);
      expect((await outcome(c, 'SELECT late_bad()')).errno).toBeOneOf([1227, 1142]);
      expect((await outcome(c, 'SELECT late_bad()', 'execute')).errno).toBeOneOf([1227, 1142]);
      expect(await state()).toBe(before);
    } finally {
      await c.end();
    }
  });
});
