import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../normalize.ts';
import { analyzeStatement } from './analyze-statement.ts';

beforeAll(async () => {
  await loadSqlParser();
});

/** Predicates of `DELETE FROM customers c ...`; the table has columns id, name, email, ssn, phone, card, notes. */
const INEFFECTIVE: readonly string[] = [
  'WHERE true',
  'WHERE 1=1',
  "WHERE 'a' = 'a'",
  'WHERE c.id = c.id',
  'WHERE id = c.id',
  'WHERE c.id = customers.id',
  'WHERE id = id OR id IS NULL',
  'WHERE c.id = 1 OR true',
  'WHERE NOT false',
  'WHERE NOT (1 = 0)',
  'WHERE 1 IN (1)',
  'WHERE EXISTS (SELECT 1)',
  'WHERE EXISTS (SELECT 1 FROM orders o WHERE o.amount > 0)',
  'WHERE coalesce(true, id = 1)',
  'WHERE id - id = 0',
  'WHERE id * 0 = 0',
  'WHERE id = id + 0',
  'WHERE id::text = id::text',
  "WHERE email LIKE '%'",
  "WHERE email ILIKE '%%'",
  "WHERE email ~ '.*'",
  "WHERE email SIMILAR TO '%'",
  'WHERE id IS NOT NULL',
  'WHERE NOT (id IS NULL)',
  "WHERE id <> ALL('{}'::int[])",
  "WHERE id <> ANY('{1,2}'::int[])",
  "WHERE NOT (id = ANY('{1}'::int[]))",
  'WHERE id NOT IN (SELECT customer_id FROM orders WHERE false)',
  'WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND false)',
  'WHERE id IN (SELECT c2.id FROM customers c2)',
  'WHERE id IN (SELECT x FROM (SELECT id AS x FROM customers) s)',
  'WHERE id IN (SELECT id FROM pg_class)',
  'WHERE EXISTS (SELECT 1 FROM customers c2 WHERE c2.id = c.id)',
  'WHERE (id = id) IS TRUE',
  'WHERE (id = id) = true',
  'WHERE true AND (1 = 1 OR id = 5)',
  'WHERE $1',
  'WHERE id = $1 OR $2',
  'WHERE CASE WHEN id = 1 THEN true ELSE true END',
  'WHERE abs(id) >= 0',
  'WHERE id IN (id, 5)',
  'WHERE id BETWEEN id AND 10',
  'WHERE id IS DISTINCT FROM id',
  "WHERE (id, name) = (id, 'x')",
];

const EFFECTIVE: readonly string[] = [
  'WHERE id = 42',
  'WHERE c.id = 42',
  'WHERE id = 3 OR false',
  'WHERE id = 3 OR NULL',
  "WHERE id = ANY('{1}'::int[])",
  'WHERE id IN (1, 2) AND 1 = 1',
  'WHERE id NOT IN (1, 2)',
  'WHERE id <> 5',
  'WHERE NOT (id <> 5)',
  'WHERE id BETWEEN 1 AND 3',
  'WHERE id = $1',
  'WHERE id = $1 AND $2',
  "WHERE lower(email) = 'a@example.com'",
  "WHERE email LIKE 'a%'",
  'WHERE id IS NULL',
  'WHERE NOT (id IS NOT NULL)',
  'WHERE (id = 1) IS TRUE',
  'WHERE false',
  'WHERE id IN (SELECT customer_id FROM orders WHERE amount > 100)',
  'WHERE id IN (SELECT o.customer_id FROM orders o)',
  'WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)',
  "WHERE (id, name) = (1, 'x')",
  'WHERE id = (SELECT max(o.customer_id) FROM orders o)',
  "WHERE id::text = '7'",
  'WHERE id + 1 = 8',
];

describe('effective WHERE', () => {
  it.each(INEFFECTIVE)('DELETE FROM customers c %s restricts nothing', (where) => {
    const facts = analyzeStatement(`DELETE FROM customers c ${where}`);
    expect(facts.parsed).toBe(true);
    expect(facts.statements.at(-1)?.where).toBe('ineffective');
    expect(facts.findings.map((f) => f.kind)).toContain('delete-without-where');
  });

  it.each(EFFECTIVE)('DELETE FROM customers c %s restricts the rows', (where) => {
    const facts = analyzeStatement(`DELETE FROM customers c ${where}`);
    expect(facts.parsed).toBe(true);
    expect(facts.statements.at(-1)?.where).toBe('effective');
    expect(facts.findings).toEqual([]);
  });

  it.each([
    ['UPDATE customers SET notes = NULL', 'absent'],
    ['UPDATE customers SET notes = NULL WHERE 1 = 1', 'ineffective'],
    ["UPDATE customers SET notes = NULL WHERE id = ANY('{1}'::int[])", 'effective'],
    ['UPDATE customers SET notes = NULL FROM orders o WHERE o.amount > 5', 'ineffective'],
    ['UPDATE customers c SET notes = NULL FROM orders o WHERE o.customer_id = c.id', 'effective'],
    ['DELETE FROM customers USING customers c2 WHERE customers.id = c2.id', 'ineffective'],
    ['DELETE FROM customers WHERE CURRENT OF cur', 'effective'],
  ])('%s: %s', (sql, where) => {
    expect(analyzeStatement(sql).statements.at(-1)?.where).toBe(where);
  });

  it('judges MERGE actions by the join condition, or for NOT MATCHED BY SOURCE by their own condition', () => {
    const cases: [string, 'effective' | 'ineffective'][] = [
      ['MERGE INTO customers c USING orders o ON o.customer_id = c.id WHEN MATCHED THEN DELETE', 'effective'],
      ['MERGE INTO customers c USING orders o ON true WHEN MATCHED THEN DELETE', 'ineffective'],
      [
        'MERGE INTO customers c USING orders o ON true WHEN MATCHED AND c.id = 1 THEN UPDATE SET notes = NULL',
        'effective',
      ],
      ['MERGE INTO customers c USING customers s ON c.id = s.id WHEN MATCHED THEN DELETE', 'ineffective'],
      [
        'MERGE INTO customers c USING (SELECT id FROM customers) s ON c.id = s.id WHEN MATCHED THEN DELETE',
        'ineffective',
      ],
      [
        'MERGE INTO customers c USING orders o ON o.customer_id = c.id WHEN NOT MATCHED BY SOURCE THEN DELETE',
        'ineffective',
      ],
      [
        'MERGE INTO customers c USING orders o ON o.customer_id = c.id WHEN NOT MATCHED BY SOURCE AND c.id = 1 THEN DELETE',
        'effective',
      ],
    ];
    for (const [sql, where] of cases)
      expect([sql, analyzeStatement(sql).statements.at(-1)?.where]).toEqual([sql, where]);
  });
});
