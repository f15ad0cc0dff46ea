import { beforeAll, describe, expect, it } from 'vitest';
import { uncountableChange } from '../policy/guardrails/row-limits.ts';
import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import { loadSqlParser } from '../sql/normalize.ts';
import { explainedRows, impactPlan } from './impact-plan.ts';

// The parser's WebAssembly may still be loading when the first test runs: wait for it.
beforeAll(loadSqlParser);

const plan = (sql: string) => {
  const facts = analyzeStatement(sql);
  return impactPlan(facts, uncountableChange(facts));
};

describe('impactPlan', () => {
  it('measures the rows of DELETE, UPDATE and MERGE, with the planner for a single statement', () => {
    for (const sql of [
      'DELETE FROM orders',
      'delete from orders where id <> -1',
      'UPDATE orders SET note = lower(note)',
      'UPDATE public.orders SET at = now()',
      'MERGE INTO orders o USING staging s ON o.id = s.id WHEN MATCHED THEN DELETE',
      '/* why */ DELETE FROM orders -- trailing',
    ])
      expect(plan(sql), sql).toEqual({ measure: 'rows', explain: true });
    expect(plan('DELETE FROM a; DELETE FROM b')).toEqual({ measure: 'rows', explain: false });
  });

  it('lists the dependents of what DROP, ALTER and TRUNCATE act on', () => {
    expect(plan('DROP TABLE orders')).toMatchObject({ measure: 'dependents', targets: ['orders'] });
    expect(plan('DROP TABLE public.orders, lines CASCADE')).toMatchObject({ measure: 'dependents' });
    expect(plan('TRUNCATE orders')).toMatchObject({ measure: 'dependents' });
    expect(plan('ALTER TABLE orders DROP COLUMN note')).toMatchObject({ measure: 'dependents' });
  });

  it('measures nothing of reads and inserts', () => {
    for (const sql of ['SELECT 1', 'INSERT INTO orders VALUES (1)', ''])
      expect(plan(sql), sql).toEqual({ measure: 'nothing' });
  });

  // The statement runs before anyone approved it: only what a rollback undoes completely may run.
  it('refuses to run, and says why, what a rollback might not undo', () => {
    const refused: Record<string, RegExp> = {
      'DELETE FROM orders WHERE pg_terminate_backend(42)': /calls pg_terminate_backend/,
      "DELETE FROM orders WHERE id = nextval('s')": /calls nextval/,
      'UPDATE orders SET note = myschema.audit(note)': /calls myschema\.audit/,
      "DELETE FROM orders WHERE id IN (SELECT * FROM dblink('x', 'DELETE FROM t') AS t(id int))":
        /dblink|calls|dynamic-sql/,
      'DELETE FROM orders; COMMIT': /other statements|controls the transaction/,
      'DELETE FROM orders; SELECT 1': /other statements/,
      "DELETE FROM orders WHERE (SELECT pg_read_file('/etc/passwd')) IS NULL": /file-access|calls/,
      'DELETE FROM': /does not parse/,
      'DELETE FROM orders WHERE note ### 1': /operator ###/,
      'DELETE FROM orders WHERE note OPERATOR(myschema.=) 1': /operator|calls/,
    };
    for (const [sql, reason] of Object.entries(refused)) {
      const p = plan(sql);
      expect(p.measure, sql).toBe('impossible');
      expect(p.measure === 'impossible' && p.reason, sql).toMatch(reason);
    }
  });
});

describe('explainedRows', () => {
  it('reads the rows under a ModifyTable, or the top plan', () => {
    const modify = JSON.stringify([
      {
        Plan: {
          'Node Type': 'ModifyTable',
          'Plan Rows': 0,
          Plans: [{ 'Node Type': 'Seq Scan', 'Plan Rows': 1200 }],
        },
      },
    ]);
    expect(explainedRows(modify)).toBe(1200);
    expect(explainedRows(JSON.stringify([{ Plan: { 'Node Type': 'Seq Scan', 'Plan Rows': 7.4 } }]))).toBe(7);
  });

  it('gives up on anything else', () => {
    for (const text of [
      '',
      'not json',
      '[]',
      '[{}]',
      '[{"Plan":{"Plan Rows":-1}}]',
      '[{"Plan":{"Plan Rows":"5"}}]',
    ])
      expect(explainedRows(text), text).toBeUndefined();
  });
});
