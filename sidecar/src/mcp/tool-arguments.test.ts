import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../sql/normalize.ts';
import { POSTGRES_DIALECT } from './dialects.ts';
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
