import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from './analyze/analyze-statement.ts';
import { loadSqlParser } from './normalize.ts';
import { mayNestTooDeeply } from './parser-nesting.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const repeat = (n: number, item: string, separator: string) => Array(n).fill(item).join(separator);

/**
 * Texts that overflow libpg-query's WebAssembly stack, chains the bound cannot tell from those
 * (UNION, JOIN), and variations a lexer must see through.
 */
const TOO_DEEP: Record<string, string> = {
  'a long operator chain': `SELECT ${repeat(10_000, '1', '+')}`,
  'nested subqueries': `SELECT ${'(SELECT '.repeat(3_000)}1${')'.repeat(3_000)}`,
  'a chain of casts': `SELECT 1${'::int'.repeat(10_000)}`,
  'NOT NOT NOT': `SELECT ${'NOT '.repeat(10_000)}true`,
  'UNION of lists': repeat(10_000, 'SELECT 1, 2', ' UNION '),
  'a chain of joins': `SELECT 1 FROM t0 ${repeat(8_000, 'JOIN t ON true', ' ')}`,
  'commas hidden in strings': `SELECT ${repeat(10_000, "'a,b'", '+')}`,
  'commas hidden in comments': `SELECT ${repeat(10_000, '1', '+/*,*/')}`,
  'commas hidden in dollar quotes': `SELECT ${repeat(10_000, '$q$,$q$', '||')}`,
  'commas hidden in E strings': `SELECT ${repeat(10_000, "E'\\\\,'", '||')}`,
  'a deep PL/pgSQL body': `DO $$BEGIN PERFORM ${repeat(10_000, '1', '+')}; END$$`,
};

describe('parser nesting guard', () => {
  it.each(Object.entries(TOO_DEEP))('refuses %s as unanalysable, without parsing it', (_, sql) => {
    const facts = analyzeStatement(sql);
    expect(facts.findings.map((f) => f.kind)).toEqual(
      expect.arrayContaining([sql.startsWith('DO') ? 'dynamic-sql' : 'unknown-statement']),
    );
    expect(facts.classes).toContain('admin');
  });

  it('keeps the parser working after many such texts', () => {
    // Without the guard, a few dozen of these corrupt the WebAssembly module for the whole process.
    for (let i = 0; i < 100; i++) analyzeStatement(`${TOO_DEEP['a long operator chain']} -- ${i}`);
    expect(parseSync('SELECT a FROM t WHERE b = 1').stmts).toHaveLength(1);
    expect(analyzeStatement('DELETE FROM t WHERE id = 1').findings).toEqual([]);
  });

  it.each([
    [
      'a 1 MB bulk INSERT',
      `INSERT INTO t VALUES ${repeat(40_000, "(-1, 'x'::text, NULL, now() + '1 day')", ', ')}`,
    ],
    ['a 100,000 item IN list', `SELECT * FROM t WHERE id IN (${repeat(100_000, '1', ', ')})`],
    ['3,000 ORed pairs', `SELECT * FROM t WHERE ${repeat(3_000, '(a = $1 AND b = $2)', ' OR ')}`],
    ['a wide select', `SELECT ${repeat(2_000, 'coalesce(a, b) || c AS x', ', ')} FROM t`],
    ['a long string', `SELECT '${'('.repeat(100_000)}'`],
  ])('lets %s through to the parser', (_, sql) => {
    expect(mayNestTooDeeply(sql)).toBe(false);
    expect(analyzeStatement(sql).parsed).toBe(true);
  });
});

describe('the parser survives hostile nesting', () => {
  it('describes ordinary statements after many statements nested deeper than its stack', async () => {
    const { describeQuery, describeStatement } = await import('./normalize.ts');
    const deep = `SELECT ${repeat(20_000, '1', '+')}`;
    for (let i = 0; i < 40; i++) {
      expect(describeQuery(`SELECT ${i}; ${deep}`)).toEqual([{ statement: null, fingerprint: null }]);
      expect(describeStatement(`${deep} + ${i}`)).toEqual({ statement: null, fingerprint: null });
    }
    expect(describeQuery('SELECT a FROM t WHERE b = 1; SELECT 2')).toHaveLength(2);
    expect(describeStatement('SELECT a FROM t WHERE b = 1').statement).toBe('SELECT a FROM t WHERE b = $1');
  });
});
