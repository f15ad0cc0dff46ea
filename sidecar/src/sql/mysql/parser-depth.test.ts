import { beforeAll, describe, expect, it } from 'vitest';
import { lexMysql } from './lexer.ts';
import { loadMysqlParser, parseMysqlStatement } from './parser.ts';
import { operatorDepth } from './parser-depth.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

let probes = 0;
/** A text never parsed before (parses are cached): whether the parser still works. */
const parserWorks = () => parseMysqlStatement(`SELECT ${++probes}`) !== null;
const depth = (sql: string) => operatorDepth(lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.tokens);
const chain = (n: number, op: string) => Array.from({ length: n + 1 }, (_, i) => `a${i}`).join(` ${op} `);
const nested = (levels: number, inner: string): string =>
  levels === 0 ? inner : `(${nested(levels - 1, inner)}) + 1`;

describe('operatorDepth', () => {
  it.each([
    ['SELECT 1', 0],
    ['SELECT a + b * c', 2],
    ['SELECT a + b, c + d', 1],
    ['SELECT -1, - -2, a - -3', 1],
    ['SELECT (a + b) + c', 3],
    ["INSERT INTO t VALUES (1, 'x'), (-2, 'y'), (3, 'z')", 1],
    ['SELECT 1 UNION SELECT 2 UNION SELECT 3', 2],
    ['SELECT * FROM t WHERE a IN (1, 2, 3) AND b IS NOT NULL', 6],
  ])('%s: %d', (sql, expected) => {
    expect(depth(sql)).toBe(expected);
  });
});

describe('the parser survives every statement the depth guard lets through', () => {
  // Each of these broke the WebAssembly module for good (every later parse failed) before the guard.
  it.each([
    ['+ chain of 2,000', `SELECT ${chain(2000, '+')}`],
    ['OR chain of 2,000', `SELECT * FROM t WHERE ${chain(2000, 'OR')}`],
    ['IS NULL chain of 1,000', `SELECT a${' IS NULL'.repeat(1000)}`],
    ['UNION of 8,000', Array.from({ length: 8000 }, () => 'SELECT 1').join(' UNION ')],
  ])('%s is refused without parsing', (_name, sql) => {
    expect(parseMysqlStatement(lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.canonical)).toBe(null);
    expect(parserWorks()).toBe(true);
  });

  // The deepest shapes under the limit: long chains, chains at every nesting level the parser allows.
  it.each([
    ['+ chain of 300', `SELECT ${chain(300, '+')}`],
    ['OR chain of 300', `SELECT * FROM t WHERE ${chain(300, 'OR')}`],
    ['IS NULL chain of 300', `SELECT a${' IS NULL'.repeat(300)}`],
    ['|| chain of 300 in a subquery', `SELECT (SELECT ${chain(299, '||')})`],
    ['45 nested groups of + 5', `SELECT ${nested(45, chain(5, '+'))}`],
    ['+ chain of 200 under 45 nested groups', `SELECT ${nested(45, chain(200, '+'))}`],
    [
      '45 nested subqueries around an OR chain of 200',
      `SELECT ${'(SELECT '.repeat(45)}${chain(200, 'OR')}${')'.repeat(45)}`,
    ],
    ['40 nested CASE', `SELECT ${'CASE WHEN a THEN '.repeat(40)}1${' END'.repeat(40)}`],
    ['40 nested functions', `SELECT ${'f('.repeat(40)}${chain(250, '+')}${')'.repeat(40)}`],
  ])('%s', (_name, sql) => {
    parseMysqlStatement(lexMysql(sql, DEFAULT_SQL_MODE).statements[0]!.canonical);
    expect(parserWorks()).toBe(true);
  });
});
