import { describe, expect, it } from 'vitest';
import { lexMysql, sqlModeSetBy } from './lexer.ts';
import { DEFAULT_SQL_MODE, type MysqlSqlMode, parseSqlMode } from './sql-mode.ts';

const ANSI = parseSqlMode('ANSI_QUOTES');
const NO_BACKSLASH = parseSqlMode('NO_BACKSLASH_ESCAPES');

function statements(sql: string, mode: MysqlSqlMode = DEFAULT_SQL_MODE): string[] {
  const lexed = lexMysql(sql, mode);
  expect(lexed.error).toBe(null);
  return lexed.statements.map((s) => s.canonical);
}

describe('lexMysql', () => {
  it.each([
    // comments
    ['SELECT 1 -- c\n, 2', ['SELECT 1 , 2']],
    ['SELECT 1 --\t; DROP', ['SELECT 1']],
    ['SELECT 1 --', ['SELECT 1']],
    ['SELECT 1 --1', ['SELECT 1 - -1']],
    ['SELECT 1--2; DROP TABLE t', ['SELECT 1- -2', 'DROP TABLE t']],
    ['SELECT 1 # c ; DROP TABLE t\n, 2', ['SELECT 1 , 2']],
    ['SELECT 1 /* ; DROP TABLE t */', ['SELECT 1']],
    ['SELECT /*+ BKA(t) */ 1', ['SELECT 1']],
    // executable comments: content is code, whatever the version
    ['/*!50000 DROP TABLE t */', ['DROP TABLE t']],
    ['/*!DROP TABLE t*/', ['DROP TABLE t']],
    ['/*!80034 DROP TABLE t */', ['DROP TABLE t']],
    ['/*M!100100 DROP TABLE t */', ['DROP TABLE t']],
    ['/*M!DROP TABLE t */', ['DROP TABLE t']],
    ['SELECT 1 /*!, 2 */ FROM t', ['SELECT 1 , 2 FROM t']],
    ['SELECT 1 /*! ; DROP TABLE t */', ['SELECT 1', 'DROP TABLE t']],
    ["SELECT /*! '*/' */ 1", ["SELECT '*/' 1"]],
    // literals
    ['SELECT \'a;b\', "c;d"', ["SELECT 'a;b', 'c;d'"]],
    ["SELECT 'it''s', 'it\\'s'", ["SELECT 'it''s', 'it''s'"]],
    ["SELECT 'a\\\\'; DROP TABLE t", ["SELECT 'a\\\\'", 'DROP TABLE t']],
    [
      "SELECT _utf8mb4'x', N'y', X'41', 0x41, B'1', 0b1, \\N",
      ["SELECT 'x', 'y', X'41', 0x41, B'1', 0b1, NULL"],
    ],
    ['SELECT `a;b`, `x``y` FROM `t`', ['SELECT `a;b`, `x``y` FROM `t`']],
    ['SELECT 1abc, 1e3, .5, t.5x FROM t', ['SELECT `1abc`, 1e3, .5, t.`5x` FROM t']],
    ["SELECT @a, @'b c', @@session.sql_mode", ['SELECT @a, @gatehouse_quoted_variable, @@session.sql_mode']],
    // splitting
    [';;SELECT 1;; SELECT 2;', ['SELECT 1', 'SELECT 2']],
    ['  ', []],
  ])('%j', (sql, expected) => {
    expect(statements(sql)).toEqual(expected);
  });

  it('reads "x" as an identifier under ANSI_QUOTES', () => {
    expect(statements('SELECT "a;b" FROM t', ANSI)).toEqual(['SELECT `a;b` FROM t']);
    expect(lexMysql('SELECT "a;b" FROM t', ANSI).statements[0]!.tokens[1]!.type).toBe('ident');
  });

  it('reads backslashes as characters under NO_BACKSLASH_ESCAPES', () => {
    expect(statements("SELECT '\\'; DROP TABLE t; -- '", NO_BACKSLASH)).toEqual([
      "SELECT '\\\\'",
      'DROP TABLE t',
    ]);
    expect(statements("SELECT '\\'; DROP TABLE t; -- '")).toEqual(["SELECT '''; DROP TABLE t; -- '"]);
  });

  it('applies SET sql_mode to the statements after it', () => {
    const lexed = lexMysql('SET sql_mode = \'ANSI\'; SELECT "x"', DEFAULT_SQL_MODE);
    expect(lexed.statements.map((s) => s.canonical)).toEqual(["SET sql_mode = 'ANSI'", 'SELECT `x`']);
    expect(lexed.statements[1]!.mode).toEqual(ANSI);
    expect(lexed.modeAfter).toEqual(ANSI);
  });

  it.each([
    ["SELECT 'x", 'a string literal is not closed'],
    ['SELECT "x', 'a string literal is not closed'],
    ['SELECT `x', 'a quoted identifier is not closed'],
    ['SELECT 1 /* x', 'a comment is not closed'],
    ['/*! DROP TABLE t', 'an executable comment is not closed'],
    ['/*! SELECT /* x */ 1 */', 'a comment opens inside an executable comment'],
    ['/*!123 DROP TABLE t */', 'an executable comment has a version number servers read differently'],
    [
      "SET sql_mode = REPLACE(@@sql_mode, 'ANSI', ''); SELECT 1",
      'sql_mode was set to a value that cannot be told, and later statements depend on it',
    ],
  ])('%j cannot be read safely', (sql, error) => {
    expect(lexMysql(sql, DEFAULT_SQL_MODE).error).toBe(error);
  });

  it('reads conditional comments as comments when asked, and says the text has them', () => {
    const sql = 'SELECT 1 /*!50000 , 2 */ /*M!, 3 */ /*!, 4 */';
    expect(lexMysql(sql, DEFAULT_SQL_MODE, 'comment').statements[0]!.canonical).toBe('SELECT 1 , 4');
    expect(lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.canonical).toBe('SELECT 1 , 2 , 3 , 4');
    expect(lexMysql(sql, DEFAULT_SQL_MODE).conditional).toBe(true);
    expect(lexMysql('SELECT 1 /*!, 4 */', DEFAULT_SQL_MODE).conditional).toBe(false);
  });

  it('keeps source offsets of tokens', () => {
    const sql = "SELECT  'x' /* c */ , 42";
    const tokens = lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.tokens;
    expect(tokens.map((t) => sql.slice(t.start, t.end))).toEqual(['SELECT', "'x'", ',', '42']);
  });
});

describe('sqlModeSetBy', () => {
  const tokens = (sql: string) => lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.tokens;
  it.each([
    ["SET sql_mode = 'ANSI_QUOTES'", ANSI],
    ["SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'", NO_BACKSLASH],
    ["SET LOCAL sql_mode='ANSI'", ANSI],
    ["SET @@sql_mode = 'ansi_quotes'", ANSI],
    ["SET @@session.sql_mode := ''", DEFAULT_SQL_MODE],
    ["SET @x = 1, sql_mode = 'POSTGRESQL'", ANSI],
    ['SET sql_mode = ANSI', ANSI],
    ["SET GLOBAL sql_mode = 'ANSI'", undefined],
    ["SET @@global.sql_mode = 'ANSI'", undefined],
    ['SET @sql_mode = 1', undefined],
    ['SELECT 1', undefined],
    ['SET sql_mode = DEFAULT', null],
    ['SET sql_mode = @saved', null],
    ["SET GLOBAL max_connections = 1, sql_mode = 'ANSI'", null],
    ["SET STATEMENT sql_mode = 'ANSI' FOR SELECT 1", null],
    [
      "SET @@SESSION.sql_mode = CONCAT(CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), ',NO_AUTO_VALUE_ON_ZERO'), @@SESSION.sql_auto_is_null = 0",
      DEFAULT_SQL_MODE,
    ],
    ["SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", ANSI],
    ["SET sql_mode = REPLACE(@@sql_mode, 'ANSI_QUOTES', '')", null],
    ['SET sql_mode = CONCAT(@@sql_mode, @extra)', null],
  ] as const)('%s', (sql, expected) => {
    expect(sqlModeSetBy(tokens(sql), DEFAULT_SQL_MODE)).toEqual(expected);
  });
});
