import { beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../identity/identity.ts';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { buildPgCodeCatalog } from '../../sql/analyze/pg-code-catalog.ts';
import type { CodeCatalog } from '../../sql/code-reach.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { withStoredCode } from '../gates/stored-code.ts';
import { loadPolicyDocuments } from '../load-policy.ts';
import { decide } from './decide.ts';
import { DEFAULT_GUARDRAIL, DEFAULT_MAX_AFFECTED_ROWS } from './default-guardrails.ts';
import { judgeRowCounts, mayChangeRows, RowBudget, type RowLimit, rowCap } from './row-limits.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const block = (fields: Partial<RowLimit>): RowLimit => ({
  guardrail: 'g',
  rule: 'r',
  action: 'block',
  dryRun: false,
  ...fields,
});

describe('mayChangeRows', () => {
  it.each([
    'DELETE FROM t WHERE id = 1',
    'UPDATE t SET a = 1 WHERE id = 1',
    'INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2',
    'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
    'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
    'DO $$ BEGIN DELETE FROM t; END $$',
    'EXECUTE stmt',
    'this is not sql',
    'SELECT * FROM t FOR UPDATE',
  ])('counts %s as a statement that may change rows', (sql) => {
    expect(mayChangeRows(analyzeStatement(sql))).toBe(true);
  });

  it.each([
    'SELECT 1',
    'SELECT a FROM t WHERE id = 1',
    'SET search_path = public',
    'BEGIN',
    'COMMIT',
    'SHOW x',
  ])('spares %s the measurement', (sql) => {
    expect(mayChangeRows(analyzeStatement(sql))).toBe(false);
  });
});

describe('judgeRowCounts', () => {
  const limits = [block({ perTransaction: 100 })];

  it('allows a transaction at the limit and refuses one row over it', () => {
    expect(judgeRowCounts(limits, { transaction: 100, before: 0, minute: 0 }, 'DELETE FROM t').refusal).toBe(
      undefined,
    );
    const over = judgeRowCounts(limits, { transaction: 101, before: 0, minute: 0 }, 'DELETE FROM t');
    expect(over.refusal).toMatchObject({ scope: 'transaction', count: 101, max: 100 });
    expect(over.refusal?.message).toContain('101 rows, over the limit of 100');
  });

  it('judges the transaction, not the statement: two halves of a table add up', () => {
    const first = judgeRowCounts(limits, { transaction: 60, before: 0, minute: 0 }, 'DELETE FROM t');
    const second = judgeRowCounts(limits, { transaction: 120, before: 60, minute: 60 }, 'DELETE FROM t');
    expect(first.refusal).toBe(undefined);
    expect(second.refusal?.count).toBe(120);
  });

  it('adds only what this statement changed to the minute already spent', () => {
    const perMinute = [block({ perMinute: 100 })];
    expect(judgeRowCounts(perMinute, { transaction: 90, before: 50, minute: 60 }, 'x').refusal).toBe(
      undefined,
    );
    expect(judgeRowCounts(perMinute, { transaction: 91, before: 50, minute: 60 }, 'x').refusal).toMatchObject(
      {
        scope: 'minute',
        count: 101,
      },
    );
  });

  it('sorts warn and dryRun limits apart from the refusal, and prefers block to requireApproval', () => {
    const judged = judgeRowCounts(
      [
        block({ rule: 'approve', action: 'requireApproval', perTransaction: 10 }),
        block({ rule: 'warn', action: 'warn', perTransaction: 5 }),
        block({ rule: 'dry', dryRun: true, perTransaction: 1 }),
        block({ rule: 'stop', perTransaction: 20 }),
      ],
      { transaction: 50, before: 0, minute: 0 },
      'x',
    );
    expect(judged.refusal?.limit.rule).toBe('stop');
    expect(judged.warnings.map((w) => w.limit.rule)).toEqual(['warn']);
    expect(judged.dryRun.map((w) => w.limit.rule)).toEqual(['dry']);
    expect(judged.warnings[0]!.message).not.toContain('nothing it changed was kept');
  });
});

describe('rowCap', () => {
  it('is the smallest enforcing limit, with the minute budget left added to what was counted before', () => {
    expect(
      rowCap([block({ perTransaction: 100 }), block({ perTransaction: 40 })], { before: 0, minute: 0 }),
    ).toBe(40);
    expect(rowCap([block({ perMinute: 100 })], { before: 30, minute: 70 })).toBe(60);
    expect(rowCap([block({ perMinute: 100 })], { before: 0, minute: 500 })).toBe(0);
    expect(rowCap([block({ action: 'warn', perTransaction: 1 })], { before: 0, minute: 0 })).toBe(undefined);
    expect(rowCap([block({ dryRun: true, perTransaction: 1 })], { before: 0, minute: 0 })).toBe(undefined);
  });
});

describe('RowBudget', () => {
  it('forgets rows after 60 seconds, per subject', () => {
    let now = 1_000_000;
    const budget = new RowBudget(() => now);
    budget.add('a', 10);
    now += 30_000;
    budget.add('a', 5);
    budget.add('b', 7);
    expect(budget.spent('a')).toBe(15);
    expect(budget.spent('b')).toBe(7);
    now += 31_000;
    expect(budget.spent('a')).toBe(5);
    now += 30_000;
    expect(budget.spent('a')).toBe(0);
    expect(budget.spent('b')).toBe(0);
  });
});

/** A database whose routines are all built-ins and whose tables have no triggers. */
const BUILTINS_ONLY: CodeCatalog = {
  routine: () => 'builtin',
  operator: () => [],
  onWrite: () => [],
  onRead: () => [],
};

describe('decide with row limits', () => {
  const ALICE: Identity = { subject: 'local:alice', groups: [], method: 'local' };
  const access = {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'DatabaseAccess',
    metadata: { name: 'app' },
    spec: {
      subjects: [{ kind: 'User', name: 'local:alice' }],
      allow: ['read', 'write'],
      guardrails: ['gatehouse-defaults', 'limits'],
    },
  };
  const limits = {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'Guardrail',
    metadata: { name: 'limits' },
    spec: {
      rules: [
        { name: 'orders', tables: ['public.orders'], maxAffectedRows: 10 },
        { name: 'agents', subjects: [{ kind: 'Group', name: 'agents' }], maxAffectedRowsPerMinute: 5 },
      ],
    },
  };
  const policy = loadPolicyDocuments([DEFAULT_GUARDRAIL, limits, access], 'test');
  const rulesFor = (sql: string, under = policy, catalog: CodeCatalog | 'none' = BUILTINS_ONLY) => {
    const { facts } = withStoredCode(analyzeStatement(sql), catalog === 'none' ? undefined : catalog);
    const decision = decide(facts, ALICE, under, { database: 'app' });
    return decision.outcome === 'refuse' ? decision.message : decision.rowLimits.map((l) => l.rule);
  };

  it('puts a write under the defaults limit and the rules whose tables it writes', () => {
    expect(rulesFor('DELETE FROM customers WHERE id > 0')).toEqual(['row-limit']);
    expect(rulesFor('DELETE FROM sales.orders WHERE id > 0')).toEqual(['row-limit']);
    // An unqualified name may be public.orders.
    expect(rulesFor('DELETE FROM orders WHERE id > 0')).toEqual(['row-limit', 'orders']);
    expect(rulesFor('DELETE FROM public.orders WHERE id > 0')).toEqual(['row-limit', 'orders']);
    expect(rulesFor('UPDATE customers SET name = $1 WHERE id = $2')).toEqual(['row-limit']);
  });

  it('puts statements whose writes cannot be named under every limit', () => {
    const allowAll = loadPolicyDocuments(
      [
        limits,
        {
          ...access,
          spec: { ...access.spec, allow: ['read', 'write', 'ddl', 'admin'], guardrails: ['limits'] },
        },
      ],
      'test',
    );
    expect(rulesFor('SELECT some_function()', allowAll, 'none')).toEqual(['orders']);
    expect(rulesFor('SELECT 1 FROM customers', allowAll, 'none')).toEqual(['orders']);
    expect(rulesFor('SELECT 1 FROM customers', allowAll)).toEqual([]);
    // A procedure nobody can read may also commit half-way: refused rather than counted.
    expect(rulesFor('CALL p()', allowAll, 'none')).toMatch(/cannot count them/);
  });

  it('refuses writes to foreign tables under a row limit: their rows change on another server', () => {
    const catalog = buildPgCodeCatalog({
      routines: [],
      triggers: [],
      rules: [],
      views: [],
      implicit: [],
      operators: [],
      foreign: [['public', 'remote_orders']],
    });
    const allowAll = loadPolicyDocuments(
      [
        limits,
        {
          ...access,
          spec: { ...access.spec, allow: ['read', 'write', 'ddl', 'admin'], guardrails: ['limits'] },
        },
      ],
      'test',
    );
    for (const sql of [
      'DELETE FROM remote_orders WHERE id = 1',
      'UPDATE public.remote_orders SET a = 1',
      'WITH d AS (DELETE FROM remote_orders RETURNING 1) SELECT count(*) FROM d',
    ])
      expect(rulesFor(sql, allowAll, catalog), sql).toMatch(
        /remote_orders, whose rows change on another server/,
      );
    expect(rulesFor('SELECT * FROM remote_orders', allowAll, catalog)).toEqual([]);
  });

  it('spares calls of routines whose bodies only read, and measures those whose bodies write', () => {
    const catalog: CodeCatalog = {
      routine: (name) =>
        name === 'reads' || name === 'writes'
          ? [
              {
                id: name,
                label: `function public.${name}`,
                facts: () =>
                  analyzeStatement(name === 'reads' ? 'SELECT 1' : 'UPDATE t SET a = 1 WHERE id = 1'),
              },
            ]
          : 'builtin',
      operator: () => [],
      onWrite: () => [],
      onRead: () => [],
    };
    expect(rulesFor('SELECT reads()', policy, catalog)).toEqual([]);
    expect(rulesFor('SELECT writes()', policy, catalog)).toEqual(['row-limit']);
  });

  it('refuses under an enforcing limit what cannot be counted before it commits', () => {
    const onlyLimits = loadPolicyDocuments(
      [
        limits,
        {
          ...access,
          spec: { ...access.spec, allow: ['read', 'write', 'ddl', 'admin'], guardrails: ['limits'] },
        },
      ],
      'test',
    );
    for (const sql of [
      'BEGIN; DELETE FROM orders WHERE id = 1; COMMIT; BEGIN; DELETE FROM orders WHERE id = 2; COMMIT',
      'DELETE FROM orders WHERE id = 1; COMMIT; SELECT 1',
      'COMMIT; DELETE FROM orders WHERE id = 1; COMMIT',
      'BEGIN; DELETE FROM orders WHERE id = 1; ROLLBACK; DELETE FROM orders WHERE id = 2',
      'TRUNCATE orders',
      'DO $$ BEGIN DELETE FROM orders WHERE id = 1; COMMIT; END $$',
      "SELECT dblink_exec('x', 'DELETE FROM orders')",
      'DELETE FROM orders WHERE',
    ])
      expect(rulesFor(sql, onlyLimits), sql).toMatch(
        /limits the rows a transaction may change, and cannot count them/,
      );
    // One transaction end, the text's last statement: the check can run just before it.
    for (const sql of [
      'BEGIN; DELETE FROM orders WHERE id = 1; COMMIT',
      'UPDATE orders SET a = 1 WHERE id = 1; END',
      "DELETE FROM orders WHERE id = 1; PREPARE TRANSACTION 'x'",
      'START TRANSACTION; DELETE FROM orders WHERE id = 1; COMMIT AND CHAIN',
      'BEGIN; DELETE FROM orders WHERE id = 1; ROLLBACK',
    ])
      expect(rulesFor(sql, onlyLimits), sql).toEqual(['orders']);
    // Transaction control that ends nothing, or sent on its own, is counted as usual.
    expect(rulesFor('BEGIN; DELETE FROM orders WHERE id = 1', onlyLimits)).toEqual(['orders']);
    expect(rulesFor('SAVEPOINT s; DELETE FROM orders WHERE id = 1; RELEASE s', onlyLimits)).toEqual([
      'orders',
    ]);
    expect(rulesFor('COMMIT', onlyLimits)).toEqual([]);
  });

  it('does not refuse what it cannot count under warn and dryRun limits', () => {
    const warnOnly = loadPolicyDocuments(
      [
        { ...limits, spec: { rules: [{ name: 'w', maxAffectedRows: 1, action: 'warn' }] } },
        { ...access, spec: { ...access.spec, guardrails: ['limits'] } },
      ],
      'test',
    );
    expect(rulesFor('TRUNCATE orders', warnOnly)).toEqual(['w']);
  });

  it('leaves reads and other subjects alone', () => {
    expect(rulesFor('SELECT * FROM public.orders')).toEqual([]);
    expect(DEFAULT_GUARDRAIL.spec.rules.find((r) => r.name === 'row-limit')?.maxAffectedRows).toBe(
      DEFAULT_MAX_AFFECTED_ROWS,
    );
  });
});
