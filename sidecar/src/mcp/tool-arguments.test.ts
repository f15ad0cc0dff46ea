import { beforeAll, describe, expect, it } from 'vitest';
import { loadMysqlParser } from '../sql/mysql/parser.ts';
import { loadSqlParser } from '../sql/normalize.ts';
import { MYSQL_DIALECT, POSTGRES_DIALECT } from './dialects.ts';
import {
  executableSql,
  explainSql,
  MAX_SQL_CHARS,
  readOnlySql,
  ToolArgumentError,
  tableName,
} from './tool-arguments.ts';

beforeAll(async () => {
  await loadSqlParser();
});

describe('readOnlySql', () => {
  it.each([
    'SELECT 1',
    'select id, email from customers where id = 1',
    'WITH c AS (SELECT * FROM customers) SELECT count(*) FROM c',
    'SELECT 1;',
    '  /* a comment */ SELECT 1 -- and another',
    'SHOW search_path',
    'VALUES (1), (2)',
    'TABLE customers',
    'SELECT 1 UNION SELECT 2',
  ])('takes the read %j', (sql) => {
    expect(readOnlySql(sql, POSTGRES_DIALECT)).toBe(sql);
  });

  const writes = [
    'DELETE FROM t',
    'UPDATE t SET a = 1 WHERE id = 1',
    'INSERT INTO t VALUES (1)',
    'DROP TABLE t',
  ];
  const joiners = ['; ', ';', ' ;\n', ';/* x */', '; -- x\n', '\n;\n'];
  const multi = writes.flatMap((w) => joiners.map((j) => `SELECT 1${j}${w}`));
  it.each([
    ...writes,
    ...multi,
    ...writes.map((w) => `/* SELECT */ ${w}`),
    ...writes.map((w) => `-- SELECT\n${w}`),
    'SELECT 1; SELECT 2',
    'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    'EXPLAIN ANALYZE DELETE FROM t',
    'EXPLAIN SELECT 1',
    'SET TRANSACTION READ WRITE',
    'BEGIN',
    'COMMIT',
    'ROLLBACK',
    'SELECT * INTO t2 FROM t',
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT pg_catalog.SET_CONFIG('x.y', 'z', false)",
    "SELECT nextval('s')",
    'DO $$ BEGIN DELETE FROM t; END $$',
    "COPY t TO PROGRAM 'true'",
    'COPY t TO STDOUT',
    'CALL p()',
    'PREPARE p AS DELETE FROM t',
    'EXECUTE p',
    'DECLARE c CURSOR FOR SELECT 1',
    'LOCK TABLE t',
    'LISTEN x',
    "NOTIFY x, 'y'",
    'SELECT pg_terminate_backend(1)',
    "SELECT pg_read_file('/etc/passwd')",
    'SELECT FROM',
    '',
    ';',
    '/* only a comment */',
  ])('refuses %j', (sql) => {
    expect(() => readOnlySql(sql, POSTGRES_DIALECT)).toThrow(ToolArgumentError);
  });
});

describe('explainSql', () => {
  it.each(['SELECT 1', 'DELETE FROM t WHERE id = 1', 'UPDATE t SET a = 1', 'INSERT INTO t VALUES (1)'])(
    'plans %j without running it',
    (sql) => {
      expect(explainSql(sql, POSTGRES_DIALECT).sql).toBe(`EXPLAIN ${sql}`);
    },
  );

  it.each([
    'EXPLAIN SELECT 1',
    'EXPLAIN ANALYZE DELETE FROM t',
    '(ANALYZE) DELETE FROM t',
    'ANALYZE t',
    'SELECT 1; DELETE FROM t',
    'DROP TABLE t',
    'VACUUM t',
    'SET x = 1',
    '',
  ])('refuses %j', (sql) => {
    expect(() => explainSql(sql, POSTGRES_DIALECT)).toThrow(ToolArgumentError);
  });
});

describe('executableSql', () => {
  it('takes any text, and says whether it is one statement', () => {
    expect(executableSql('DELETE FROM t WHERE id = 1', POSTGRES_DIALECT)).toEqual({
      sql: 'DELETE FROM t WHERE id = 1',
      single: true,
    });
    expect(executableSql('BEGIN; DELETE FROM t; COMMIT', POSTGRES_DIALECT).single).toBe(false);
    expect(executableSql("SELECT ';'", POSTGRES_DIALECT).single).toBe(true);
    expect(executableSql('not sql at all', POSTGRES_DIALECT).single).toBe(false);
  });

  it('refuses empty and oversized text', () => {
    expect(() => executableSql('  ', POSTGRES_DIALECT)).toThrow(/empty/);
    expect(() => executableSql(`SELECT '${'x'.repeat(MAX_SQL_CHARS)}'`, POSTGRES_DIALECT)).toThrow(
      /longer than/,
    );
  });
});

describe('tableName', () => {
  it.each([
    ['customers', { name: 'customers' }],
    ['Customers', { name: 'customers' }],
    ['public.customers', { schema: 'public', name: 'customers' }],
    ['"My Table"', { name: 'My Table' }],
    ['"we""ird".t', { schema: 'we"ird', name: 't' }],
    [' shop.orders ', { schema: 'shop', name: 'orders' }],
  ])('%j', (text, name) => {
    expect(tableName(text, POSTGRES_DIALECT)).toEqual(name);
  });

  it.each([
    '',
    'a.b.c',
    'customers; DROP TABLE x',
    "customers' OR 1=1",
    'customers--',
    '"unterminated',
    '1table',
    'a b',
    `${'x'.repeat(201)}`,
  ])('refuses %j', (text) => {
    expect(() => tableName(text, POSTGRES_DIALECT)).toThrow(ToolArgumentError);
  });
});

describe('readOnlySql, explainSql and tableName on MySQL', () => {
  beforeAll(async () => {
    await loadMysqlParser();
  });

  it.each([
    'SELECT 1',
    'select id, email from customers where id = 1',
    'SELECT count(*), max(total) FROM orders GROUP BY customer_id',
    'SELECT concat(name, lower(email)) FROM customers',
    'SHOW TABLES',
    'WITH c AS (SELECT * FROM customers) SELECT count(*) FROM c',
    'SELECT 1 /* ; DELETE FROM t */',
    'SELECT 1 -- ; DELETE FROM t',
  ])('takes the read %j', (sql) => {
    expect(readOnlySql(sql, MYSQL_DIALECT)).toBe(sql);
  });

  const writes = [
    'DELETE FROM t',
    'UPDATE t SET a = 1 WHERE id = 1',
    'INSERT INTO t VALUES (1)',
    'DROP TABLE t',
  ];
  const joiners = ['; ', ';', ' ;\n', ';/* x */', '; -- x\n', '; # x\n', '\n;\n'];
  const hidden = ['/*! ; X */', '/*!50000 ; X */', '/*M! ; X */', '/*!99999 ; X */'];
  it.each([
    ...writes,
    ...writes.flatMap((w) => joiners.map((j) => `SELECT 1${j}${w}`)),
    ...writes.flatMap((w) => hidden.map((h) => `SELECT 1 ${h.replace('X', w)}`)),
    ...writes.map((w) => `/* SELECT */ ${w}`),
    ...writes.map((w) => `# SELECT\n${w}`),
    "SELECT * FROM t INTO OUTFILE '/tmp/x'",
    "SELECT * FROM t INTO DUMPFILE '/tmp/x'",
    'SELECT a FROM t LIMIT 1 INTO @v',
    'SELECT * FROM t FOR UPDATE',
    'SELECT * FROM t FOR UPDATE NOWAIT',
    'SELECT * FROM t FOR SHARE',
    'SELECT * FROM t LOCK IN SHARE MODE',
    'SELECT @v := 1',
    'SELECT @v := @v + 1 FROM t',
    'SET @v = 1',
    'CALL p()',
    'SELECT f()',
    'SELECT db.f()',
    'SELECT * FROM t WHERE f(id) = 1',
    'SELECT (SELECT f())',
    'SELECT 1 UNION SELECT f()',
    'DO f()',
    "SELECT get_lock('x', 0)",
    "SELECT release_lock('x')",
    'SELECT sleep(1)',
    'SELECT nextval(s)',
    "SELECT load_file('/etc/passwd')",
    'SELECT last_insert_id(5)',
    'SET TRANSACTION READ WRITE',
    'START TRANSACTION',
    'COMMIT',
    'ANALYZE SELECT 1',
    'EXPLAIN ANALYZE SELECT 1',
    'HANDLER t OPEN',
    'LOCK TABLES t READ',
    'PREPARE s FROM "DELETE FROM t"',
    'SELECT FROM',
    "SELECT 'unterminated",
  ])('refuses %j', (sql) => {
    expect(() => readOnlySql(sql, MYSQL_DIALECT)).toThrow(ToolArgumentError);
  });

  it('plans reads and writes with a plain EXPLAIN, and says which is a read', () => {
    expect(explainSql('SELECT * FROM t', MYSQL_DIALECT)).toEqual({
      sql: 'EXPLAIN SELECT * FROM t',
      read: true,
    });
    expect(explainSql('DELETE FROM t WHERE id = 1', MYSQL_DIALECT)).toEqual({
      sql: 'EXPLAIN DELETE FROM t WHERE id = 1',
      read: false,
    });
  });

  it.each([
    'ANALYZE DELETE FROM t',
    'ANALYZE TABLE t',
    'CALL p()',
    'DELETE FROM t WHERE id = (SELECT f())',
    'UPDATE t SET a = @v := 1',
    'DELETE FROM t; DELETE FROM u',
    'DROP TABLE t',
  ])('refuses to plan %j', (sql) => {
    expect(() => explainSql(sql, MYSQL_DIALECT)).toThrow(ToolArgumentError);
  });

  it('reads backquoted names as written, and keeps the case of plain ones', () => {
    expect(tableName('Customers', MYSQL_DIALECT)).toEqual({ name: 'Customers' });
    expect(tableName('`shop db`.`odd``name`', MYSQL_DIALECT)).toEqual({
      schema: 'shop db',
      name: 'odd`name',
    });
    expect(() => tableName('"customers"', MYSQL_DIALECT)).toThrow(ToolArgumentError);
    expect(() => tableName('t; DROP TABLE t', MYSQL_DIALECT)).toThrow(ToolArgumentError);
  });
});
