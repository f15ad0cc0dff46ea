import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { analyzeByShape } from './shape-cache.ts';

beforeAll(async () => {
  await loadSqlParser();
});

/** analyzeStatement, counting its calls. */
function counted(sql: string) {
  const calls = { n: 0 };
  return {
    calls,
    analyze: () => {
      calls.n++;
      return analyzeStatement(sql);
    },
  };
}

describe('analyzeByShape', () => {
  it('analyses a literal-independent text once per key, and each key on its own', () => {
    const first = counted('SELECT a FROM t WHERE b = 1');
    const key = `test\u0000${Math.random()}`;
    const a = analyzeByShape(key, first.analyze, () => true);
    const b = analyzeByShape(key, first.analyze, () => true);
    expect(b).toBe(a);
    expect(first.calls.n).toBe(1);
    // Another protocol's key for the same shape text never gets this analysis.
    analyzeByShape(`other${key}`, first.analyze, () => true);
    expect(first.calls.n).toBe(2);
  });

  it('keeps no analysis a literal can change, nor one the protocol keeps apart', () => {
    const spellings = [
      "DELETE FROM t WHERE 'a' = 'a'",
      'UPDATE t SET a = 1 WHERE b = b',
      'PREPARE p AS SELECT 1',
      'DEALLOCATE p',
      'DECLARE c CURSOR FOR SELECT 1',
      'SELECT * FROM nowhere(',
    ];
    for (const sql of spellings) {
      const text = counted(sql);
      const key = `test\u0000${sql}`;
      analyzeByShape(key, text.analyze, () => true);
      analyzeByShape(key, text.analyze, () => true);
      expect(text.calls.n, sql).toBe(2);
    }
    const vetoed = counted('SELECT 1');
    analyzeByShape('test\u0000vetoed', vetoed.analyze, () => false);
    analyzeByShape('test\u0000vetoed', vetoed.analyze, () => false);
    expect(vetoed.calls.n).toBe(2);
  });

  it('analyses every time without a key', () => {
    const text = counted('SELECT 1');
    analyzeByShape(undefined, text.analyze, () => true);
    analyzeByShape(undefined, text.analyze, () => true);
    expect(text.calls.n).toBe(2);
  });

  it('keeps no shape longer than 16,384 characters: a bulk INSERT of each new row count would fill it', () => {
    for (const rows of [2_000, 5_000]) {
      const values = Array.from({ length: rows }, (_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
      const sql = `INSERT INTO t (a, b) VALUES ${values}`;
      expect(sql.length).toBeGreaterThan(16_384);
      const text = counted(sql);
      analyzeByShape(`test\u0000${sql}`, text.analyze, () => true);
      analyzeByShape(`test\u0000${sql}`, text.analyze, () => true);
      expect(text.calls.n, `${rows} rows`).toBe(2);
    }
    // Just under the limit it is kept.
    const short = `SELECT a FROM t WHERE b IN (${'$1, '.repeat(3_000)}$2)`;
    expect(short.length).toBeLessThanOrEqual(16_384 - 'test\u0000'.length);
    const kept = counted(short);
    analyzeByShape(`test\u0000${short}`, kept.analyze, () => true);
    analyzeByShape(`test\u0000${short}`, kept.analyze, () => true);
    expect(kept.calls.n).toBe(1);
  });
});
