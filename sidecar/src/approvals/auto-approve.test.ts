import { describe, expect, it } from 'vitest';
import type { AutoApproveConditionSpec } from '../../../crds/guardrail.ts';
import { AUTO_APPROVE_TESTS } from '../../../crds/guardrail.ts';
import { type AutoApproveFacts, autoApproval, tableWithin } from './auto-approve.ts';

const facts = (over: Partial<AutoApproveFacts> = {}): AutoApproveFacts => ({
  requester: { subject: 'system:serviceaccount:shop:nightly', groups: ['pipelines'], method: 'token' },
  namespace: 'shop',
  at: new Date('2026-12-07T02:30:00Z'), // Monday
  kinds: ['delete-without-where'],
  tables: ['staging.batches'],
  affectedRows: 40,
  sensitiveColumns: [],
  deniedSince: () => false,
  ...over,
});

const condition = (over: Partial<AutoApproveConditionSpec>): AutoApproveConditionSpec => ({
  name: 'c',
  ...over,
});

describe('autoApproval', () => {
  // Each row: a condition, facts, and whether it approves. Every test is seen holding and failing.
  const cases: [string, AutoApproveConditionSpec, AutoApproveFacts, boolean][] = [
    [
      'subject matches (namespace from the Guardrail)',
      condition({ subjects: [{ kind: 'ServiceAccount', name: 'nightly' }] }),
      facts(),
      true,
    ],
    [
      'subject in another namespace',
      condition({ subjects: [{ kind: 'ServiceAccount', name: 'nightly', namespace: 'other' }] }),
      facts(),
      false,
    ],
    ['group matches', condition({ subjects: [{ kind: 'Group', name: 'pipelines' }] }), facts(), true],
    ['inside the window', condition({ windows: [{ from: '02:00', to: '04:00' }] }), facts(), true],
    ['outside the window', condition({ windows: [{ from: '03:00', to: '04:00' }] }), facts(), false],
    ['every kind allowed', condition({ kinds: ['delete-without-where', 'truncate'] }), facts(), true],
    ['a kind not allowed', condition({ kinds: ['truncate'] }), facts({ kinds: ['truncate', 'drop'] }), false],
    ['tables within', condition({ tables: ['staging.*'] }), facts(), true],
    [
      'one table outside',
      condition({ tables: ['staging.*'] }),
      facts({ tables: ['staging.a', 'public.orders'] }),
      false,
    ],
    ['tables unknown', condition({ tables: ['*'] }), facts({ tables: undefined }), false],
    [
      'unqualified table against a schema pattern',
      condition({ tables: ['staging.*'] }),
      facts({ tables: ['batches'] }),
      false,
    ],
    ['rows within', condition({ maxAffectedRows: 40 }), facts(), true],
    ['rows over', condition({ maxAffectedRows: 39 }), facts(), false],
    [
      'rows not measured',
      condition({ maxAffectedRows: 1_000_000 }),
      facts({ affectedRows: undefined }),
      false,
    ],
    ['no sensitive column', condition({ sensitiveColumns: 'none' }), facts(), true],
    [
      'a sensitive column',
      condition({ sensitiveColumns: 'none' }),
      facts({ sensitiveColumns: ['customers.email'] }),
      false,
    ],
    [
      'sensitive columns unknown',
      condition({ sensitiveColumns: 'none' }),
      facts({ sensitiveColumns: undefined }),
      false,
    ],
    ['no recent denial', condition({ noDenialForHours: 24 }), facts(), true],
    ['a recent denial', condition({ noDenialForHours: 24 }), facts({ deniedSince: () => true }), false],
    [
      'all tests hold',
      condition({
        subjects: [{ kind: 'Group', name: 'pipelines' }],
        windows: [{ from: '02:00', to: '04:00' }],
        tables: ['staging.*'],
        maxAffectedRows: 100,
      }),
      facts(),
      true,
    ],
    [
      'one test of several fails',
      condition({
        subjects: [{ kind: 'Group', name: 'pipelines' }],
        windows: [{ from: '02:00', to: '04:00' }],
        tables: ['staging.*'],
        maxAffectedRows: 10,
      }),
      facts(),
      false,
    ],
    ['a condition with no test approves nothing', condition({}), facts(), false],
  ];
  it.each(cases)('%s', (_name, c, f, approves) => {
    expect(autoApproval([c], f)).toEqual(approves ? { condition: 'c' } : undefined);
  });

  it('reads the denial history from the window the condition names', () => {
    const asked: number[] = [];
    autoApproval(
      [condition({ noDenialForHours: 6 })],
      facts({
        deniedSince: (since) => {
          asked.push(since);
          return false;
        },
      }),
    );
    expect(asked).toEqual([Date.parse('2026-12-07T02:30:00Z') - 6 * 3600 * 1000]);
  });

  it('names the first condition that holds', () => {
    const conditions = [
      condition({ name: 'small', maxAffectedRows: 10 }),
      condition({ name: 'night', windows: [{ from: '01:00', to: '05:00' }] }),
      condition({ name: 'any-staging', tables: ['staging.*'] }),
    ];
    expect(autoApproval(conditions, facts())).toEqual({ condition: 'night' });
  });

  it('every test of a condition can refuse on its own (generated: each test given alone, with the failing fact)', () => {
    const failing: Record<
      (typeof AUTO_APPROVE_TESTS)[number],
      [Partial<AutoApproveConditionSpec>, Partial<AutoApproveFacts>]
    > = {
      subjects: [{ subjects: [{ kind: 'User', name: 'someone' }] }, {}],
      windows: [{ windows: [{ from: '10:00', to: '11:00' }] }, {}],
      kinds: [{ kinds: ['drop'] }, {}],
      tables: [{ tables: ['public.*'] }, {}],
      maxAffectedRows: [{ maxAffectedRows: 0 }, {}],
      sensitiveColumns: [{ sensitiveColumns: 'none' }, { sensitiveColumns: ['t.c'] }],
      noDenialForHours: [{ noDenialForHours: 1 }, { deniedSince: () => true }],
    };
    for (const test of AUTO_APPROVE_TESTS) {
      const [c, f] = failing[test];
      expect(autoApproval([condition(c)], facts(f)), test).toBeUndefined();
    }
  });
});

describe('tableWithin', () => {
  const cases: [string, string, boolean][] = [
    ['staging.*', 'staging.batches', true],
    ['staging.*', 'public.batches', false],
    ['staging.*', 'batches', false],
    ['*.batches', 'batches', true],
    ['batches', 'staging.batches', true],
    ['batches', 'batches', true],
    ['batch?', 'batches', false],
    ['staging.*', 'db.staging.batches', true],
  ];
  it.each(cases)('%s admits %s: %s', (pattern, table, expected) => {
    expect(tableWithin(pattern, table)).toBe(expected);
  });
});
