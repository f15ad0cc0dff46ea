import { readFileSync } from 'node:fs';
import mysql2 from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lexMysql } from './lexer.ts';
import { DEFAULT_SQL_MODE, parseSqlMode } from './sql-mode.ts';

/*
 * The lexer against the real server: MariaDB splits each text into as many statements as the lexer
 * does, and reads each string literal to the value the lexer decodes. The texts only SELECT.
 */
const mariadb = inject('mariadb');
let connection: mysql2.Connection;

beforeAll(async () => {
  connection = await mysql2.createConnection({
    host: mariadb.host,
    port: mariadb.port,
    user: mariadb.users.native.user,
    password: mariadb.users.native.password,
    database: mariadb.database,
    multipleStatements: true,
    ssl: { ca: readFileSync(mariadb.caFile), rejectUnauthorized: true },
  });
});

afterAll(async () => {
  await connection?.end();
});

/** How many statements the server ran: one result (rows or OK) each. */
async function serverStatements(sql: string, sqlMode: string): Promise<number> {
  await connection.query(`SET SESSION sql_mode = '${sqlMode}'`);
  const [results] = await connection.query({ sql, rowsAsArray: true });
  return Array.isArray(results) && results.length > 0 && (Array.isArray(results[0]) || isHeader(results[0]))
    ? results.length
    : 1;
}

function isHeader(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'affectedRows' in value;
}

const SPLITS: readonly [string, string][] = [
  ['', 'SELECT 1 --1'],
  ['', 'SELECT 1--1; SELECT 2'],
  ['', 'SELECT 1 -- ; SELECT 2'],
  ['', 'SELECT 1 --\t; SELECT 2'],
  ['', 'SELECT 1 # ; SELECT 2\n; SELECT 3'],
  ['', 'SELECT 1 /* ; SELECT 2 */'],
  ['', 'SELECT 1 /*! , 2 */; SELECT 3'],
  ['', '/*!50000 SELECT 1 */; SELECT 2'],
  ['', 'SELECT 1 /*M! , 2 */; SELECT 3'],
  ['', '/*M!100100 SELECT 1 */; SELECT 2'],
  ['', 'SELECT /*+ NO_ICP(t) */ 1; SELECT 2'],
  ['', "SELECT 'a\\'; SELECT 2; -- '"],
  ['', 'SELECT "a\\"; SELECT 2; -- "'],
  ['', "SELECT '/*'; SELECT 2; SELECT '*/'"],
  ['', "SELECT 'a''b;'; SELECT 2"],
  ['', "SELECT '#'; SELECT 2"],
  ['', 'SELECT `a;b` FROM (SELECT 1 AS `a;b`) t; SELECT 2'],
  ['', "SELECT _utf8mb4'x;y', X'41', 0x42; SELECT 2"],
  ['', "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT '\\'; SELECT 2 -- '"],
  ['', 'SET sql_mode = \'ANSI_QUOTES\'; SELECT "a;b" FROM (SELECT 1 AS "a;b") t; SELECT 2'],
  ['NO_BACKSLASH_ESCAPES', "SELECT '\\'; SELECT 2 -- '"],
  ['ANSI_QUOTES', 'SELECT "a;b" FROM (SELECT 1 AS "a;b") t; SELECT 2'],
  ['ANSI', "SELECT 'a\\'; SELECT 2; -- '"],
];

describe('lexMysql splits as MariaDB does', () => {
  it.each(SPLITS)('sql_mode %j: %s', async (sqlMode, sql) => {
    const lexed = lexMysql(sql, sqlMode === '' ? DEFAULT_SQL_MODE : parseSqlMode(sqlMode));
    expect(lexed.error).toBe(null);
    expect(lexed.statements.length).toBe(await serverStatements(sql, sqlMode));
  });

  it('reads a statement after ; inside an executable comment, where MariaDB fails on it (fail closed)', async () => {
    const sql = 'SELECT 1 /*! ; SELECT 2 */';
    await expect(serverStatements(sql, '')).rejects.toThrow(/SQL syntax/);
    expect(lexMysql(sql, DEFAULT_SQL_MODE).statements.map((s) => s.canonical)).toEqual([
      'SELECT 1',
      'SELECT 2',
    ]);
  });

  it('reads a version above the server as code, where MariaDB skips it (fail closed)', async () => {
    const sql = 'SELECT 1 /*!999999 ; SELECT 2 */';
    expect(await serverStatements(sql, '')).toBe(1);
    expect(lexMysql(sql, DEFAULT_SQL_MODE).statements.length).toBe(2);
  });
});

const LITERALS: readonly [string, string][] = [
  ['', "'it\\'s'"],
  ['', "'a\\nb\\tc\\0d\\Ze'"],
  ['', "'\\%\\_\\x\\\\'"],
  ['', '"say ""hi"" \\"now\\""'],
  ['', "_utf8mb4'caf\\'e'"],
  ['', "N'x''y'"],
  ['NO_BACKSLASH_ESCAPES', "'a\\nb\\'"],
];

describe('lexMysql decodes strings as MariaDB does', () => {
  it.each(LITERALS)('sql_mode %j: %s', async (sqlMode, literal) => {
    const mode = sqlMode === '' ? DEFAULT_SQL_MODE : parseSqlMode(sqlMode);
    const token = lexMysql(`SELECT ${literal}`, mode).statements[0]!.tokens[1]!;
    expect(token.type).toBe('string');
    await connection.query(`SET SESSION sql_mode = '${sqlMode}'`);
    const [rows] = await connection.query<mysql2.RowDataPacket[]>({ sql: `SELECT ${literal} AS v` });
    expect(token.value).toBe(String(rows[0]!['v']));
  });
});

/** Pieces whose meaning depends on quoting, escaping and comment rules, to be stacked at random. */
const PIECES = [
  '1',
  "'a;b'",
  "'it''s;'",
  "'a\\';'",
  "'\\\\'",
  '"x;y"',
  '"a\\";"',
  '`c;d`',
  "_utf8mb4'e;f'",
  "X'3B'",
  '/* ; */ 2',
  '/*! 3 */',
  '/*!50000 4 */',
  '-- ;\n5',
  '# ;\n6',
  '--7',
  '- -8',
  "'--'",
  "'#'",
  "'/*'",
];

function generated(seed: number, count: number): string[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const statements: string[] = [];
    for (let s = 0, n = 1 + next(3); s < n; s++) {
      const items: string[] = [];
      for (let k = 0, m = 1 + next(3); k < m; k++) items.push(PIECES[next(PIECES.length)]!);
      // A quoted name needs a relation that has it.
      statements.push(`SELECT ${items.join(', ')} FROM (SELECT 1 AS \`c;d\`) AS t`);
    }
    texts.push(statements.join(next(2) ? '; ' : ';'));
  }
  return texts;
}

describe('lexMysql splits generated texts as MariaDB does', () => {
  it.each(['', 'ANSI_QUOTES', 'NO_BACKSLASH_ESCAPES', 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'])(
    'sql_mode %j',
    async (sqlMode) => {
      const mode = sqlMode === '' ? DEFAULT_SQL_MODE : parseSqlMode(sqlMode);
      let compared = 0;
      for (const sql of generated(sqlMode.length + 1, 300)) {
        const lexed = lexMysql(sql, mode);
        let server: number;
        try {
          server = await serverStatements(sql, sqlMode);
        } catch {
          // The server rejects the text (a piece is not valid in this mode): nothing to compare.
          continue;
        }
        expect({ sql, statements: lexed.error === null ? lexed.statements.length : lexed.error }).toEqual({
          sql,
          statements: server,
        });
        compared++;
      }
      expect(compared).toBeGreaterThan(30);
    },
  );
});
