import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import { ApprovalBook } from '../../approvals/approval-book.ts';
import { ShapeRegistry } from '../../approvals/learned-shapes.ts';
import type { Identity } from '../../identity/identity.ts';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import type { CodeCatalog } from '../../sql/code-reach.ts';
import { describeQuery, loadSqlParser } from '../../sql/normalize.ts';
import { pgTextShape } from '../../sql/statement-shape.ts';
import type { PolicyHooks } from '../gates/policy-hooks.ts';
import { CodeGuard } from '../gates/stored-code.ts';
import type { GuardrailHit } from '../guardrails/decide.ts';
import { loadPolicyDocuments } from '../load-policy.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const BOT: Identity = { subject: 'local:bot', groups: [], method: 'local' };
const OTHER: Identity = { subject: 'local:other', groups: [], method: 'local' };
const LEAD: Identity = { subject: 'local:lead', groups: ['approvers'], method: 'local' };
const CATALOG: CodeCatalog = {
  routine: () => 'builtin',
  operator: () => [],
  onWrite: () => [],
  onRead: () => [],
};
const MOMENT = { idle: true, outdated: false, refreshed: false };

function policy(rules: Record<string, unknown>[], mode?: 'dryRun') {
  return loadPolicyDocuments(
    [
      {
        apiVersion: API_VERSION,
        kind: 'Guardrail',
        metadata: { name: 'agents' },
        spec: { ...(mode && { mode }), rules },
      },
      {
        apiVersion: API_VERSION,
        kind: 'DatabaseAccess',
        metadata: { name: 'app' },
        spec: {
          subjects: [
            { kind: 'User', name: 'local:bot' },
            { kind: 'User', name: 'local:other' },
          ],
          allow: ['read', 'write', 'ddl', 'admin'],
          guardrails: ['agents'],
        },
      },
    ],
    'test',
  );
}

const approval = { approvers: [{ kind: 'Group' as const, name: 'approvers' }] };
const CLOSED_WORLD = policy([
  {
    name: 'closed-world',
    kinds: ['unknown-shape'],
    action: 'requireApproval',
    subjects: [{ kind: 'User', name: 'local:bot' }],
    approval,
  },
]);

function setup() {
  const book = new ApprovalBook();
  const shapes = new ShapeRegistry(book);
  const dryRuns: GuardrailHit[][] = [];
  const hooks: PolicyHooks = { shapes, dryRun: (hits) => dryRuns.push([...hits]) };
  const judge = (sql: string, who: Identity = BOT, p = CLOSED_WORLD) =>
    new CodeGuard(who, 'shop', () => CATALOG, hooks).judge(analyzeStatement(sql), p, MOMENT, () =>
      pgTextShape(describeQuery(sql)),
    ).verdict;
  const approve = (identity = 'local:bot') =>
    shapes.approve(LEAD, { subject: identity, forSeconds: 600, reason: 'seen' });
  /** A person approves the text's shape on a request of its own (`--for`), as for any held text. */
  const approveOnRequest = (sql: string) => {
    const shape = pgTextShape(describeQuery(sql));
    if (!shape) return;
    const { request } = book.open({
      binding: { subject: BOT.subject, database: 'shop', statement: sql, parametersHash: '' },
      fingerprint: shape.fingerprint,
      shape: shape.shape,
      requester: BOT,
      rules: [
        {
          guardrail: 'agents',
          rule: 'closed-world',
          approvers: approval.approvers,
          allowSelfApproval: false,
          waitSeconds: 5,
          ttlSeconds: 60,
        },
      ],
      impact: {},
    });
    book.decide(request.id, LEAD, 'approve', 'seen', { shapeForSeconds: 600 });
    expect(shapes.approved(BOT.subject, 'shop', shape.fingerprint)).toBe(true);
  };
  return { shapes, dryRuns, judge, approve, approveOnRequest };
}

describe('unknown-shape rules', () => {
  it('hold a shape nobody approved, learn it, and let it run once its shape is approved', () => {
    const { shapes, judge, approve } = setup();
    const held = judge('SELECT id, note FROM orders WHERE id = 1');
    expect(held).toMatchObject({ outcome: 'refuse', approval: true });
    expect(held.outcome === 'refuse' && held.message).toContain(
      'no person approved its shape for local:bot on database "shop"',
    );
    expect(shapes.list({ subject: 'local:bot' })).toMatchObject([
      { shape: 'SELECT id, note FROM orders WHERE id = $1', count: 1, rules: [{ rule: 'closed-world' }] },
    ]);
    approve();
    expect(judge('SELECT id, note FROM orders WHERE id = 1').outcome).toBe('allow');
    expect(judge('select id,note from orders where id=42 -- next').outcome).toBe('allow');
    expect(judge('SELECT id, note FROM customers WHERE id = 1').outcome).toBe('refuse');
    // Other identities are not covered by bot's shapes, and are not under the rule.
    expect(judge('SELECT id, note FROM orders WHERE id = 1', OTHER).outcome).toBe('allow');
    expect(shapes.list({ subject: 'local:other' })).toEqual([]);
  });

  it('refuse at once with action block, and record the shape for approval', () => {
    const { shapes, judge, approve } = setup();
    const blocking = policy([{ name: 'closed-world', kinds: ['unknown-shape'], action: 'block', approval }]);
    expect(judge('DELETE FROM orders WHERE id = 7', BOT, blocking)).toMatchObject({
      outcome: 'refuse',
      approval: false,
    });
    expect(shapes.list({ subject: 'local:bot' })).toHaveLength(1);
    approve();
    expect(judge('DELETE FROM orders WHERE id = 8', BOT, blocking).outcome).toBe('allow');
  });

  it('in dryRun (the rule or its Guardrail) let every statement run, record the hit and learn the shape', () => {
    for (const p of [
      policy([
        {
          name: 'closed-world',
          kinds: ['unknown-shape'],
          action: 'requireApproval',
          mode: 'dryRun',
          approval,
        },
      ]),
      policy(
        [{ name: 'closed-world', kinds: ['unknown-shape'], action: 'requireApproval', approval }],
        'dryRun',
      ),
    ]) {
      const { shapes, dryRuns, judge } = setup();
      const verdict = judge('UPDATE orders SET note = $$x$$ WHERE id = 3', BOT, p);
      expect(verdict).toMatchObject({
        outcome: 'allow',
        notes: ['dry run: agents/closed-world would requireApproval'],
      });
      expect(dryRuns).toMatchObject([
        [{ rule: 'closed-world', kind: 'unknown-shape', action: 'requireApproval' }],
      ]);
      expect(shapes.list({ subject: 'local:bot' }).map((s) => s.shape)).toEqual([
        'UPDATE orders SET note = $1 WHERE id = $2',
      ]);
    }
  });

  it('never let an approved shape stand for text whose literals steer what it does', () => {
    const { judge, shapes, approveOnRequest } = setup();
    const steered = [
      "SELECT query_to_xml('select 1', true, false, '')",
      "SELECT set_config('application_name', 'x', false)",
      "DELETE FROM orders WHERE 'a' = 'b'",
      "COPY orders FROM '/tmp/x'",
      "SET ROLE 'reader'",
      'SET search_path = public',
      "SELECT nextval('orders_id_seq')",
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ];
    for (const sql of steered) {
      judge(sql);
      approveOnRequest(sql);
    }
    // Nor are they learned: approving their shapes would not cover them.
    expect(shapes.list()).toEqual([]);
    for (const sql of steered) {
      const verdict = judge(sql);
      expect(verdict.outcome, sql).toBe('refuse');
      expect(verdict.outcome === 'refuse' && verdict.message, sql).toMatch(
        /only an approval of this very text|no shape an approval could cover/,
      );
    }
  });

  it('fail closed without a shape: text that does not parse is held', () => {
    const { judge } = setup();
    expect(judge('SELEC nonsense FROM').outcome).toBe('refuse');
  });
});

describe('rule mode dryRun', () => {
  it('a requireApproval rule in dryRun records what it would have held and lets the statement run', () => {
    const { judge, dryRuns } = setup();
    const rule = { name: 'drops', kinds: ['drop'], action: 'requireApproval', approval };
    expect(judge('DROP TABLE scratch', BOT, policy([rule])).outcome).toBe('refuse');
    expect(judge('DROP TABLE scratch', BOT, policy([{ ...rule, mode: 'dryRun' }]))).toMatchObject({
      outcome: 'allow',
      notes: ['dry run: agents/drops would requireApproval'],
    });
    expect(dryRuns).toHaveLength(1);
    // Enforce on a rule does not lift its Guardrail's dryRun.
    expect(judge('DROP TABLE scratch', BOT, policy([{ ...rule, mode: 'enforce' }], 'dryRun')).outcome).toBe(
      'allow',
    );
  });

  it('a row limit in dryRun is measured but not enforced', () => {
    const { judge } = setup();
    const verdict = judge(
      'DELETE FROM orders WHERE id > 0',
      BOT,
      policy([{ name: 'rows', maxAffectedRows: 1, mode: 'dryRun' }]),
    );
    expect(verdict).toMatchObject({ outcome: 'allow', rows: { limits: [{ rule: 'rows', dryRun: true }] } });
  });
});

describe('the shape an approval binds', () => {
  const fingerprint = (sql: string) => pgTextShape(describeQuery(sql))?.fingerprint;
  const base = 'SELECT id, note FROM orders WHERE id = 1';

  it('is the same for spellings that differ in blanks, comments, case and literal values', () => {
    for (const sql of [
      'select id, note from orders where id = 1',
      'SELECT  id ,\n\tnote FROM orders WHERE id=99',
      '/* hi */ SELECT id, note FROM orders -- x\n WHERE id = 2;',
      'SELECT id, note FROM ORDERS WHERE ID = 1',
      'SELECT "id", note FROM "orders" WHERE id = 1',
      "SELECT id, note FROM orders WHERE id = '1'",
    ])
      expect(fingerprint(sql), sql).toBe(fingerprint(base));
  });

  it('differs for another table, column, condition, or a statement added after it', () => {
    for (const sql of [
      'SELECT id, note FROM customers WHERE id = 1',
      'SELECT id, secret FROM orders WHERE id = 1',
      'SELECT id, note FROM orders WHERE id = 1 OR true',
      'SELECT id, note FROM public.orders WHERE id = 1',
      'SELECT id, note FROM "Orders" WHERE id = 1',
      'SELECT id, note FROM orders WHERE id = 1; DROP TABLE orders',
      'SELECT id, note FROM orders WHERE id = 1; SELECT id, note FROM orders WHERE id = 1',
      // libpg_query's own fingerprint calls each of these the same as the base (or as each other).
      'SELECT id, note FROM secret.orders WHERE id = 1',
      'SELECT id, note FROM orders2 WHERE id = 1',
      'SELECT id AS note, note AS id FROM orders WHERE id = 1',
      'SELECT id, note FROM orders WHERE id IN (1, 2)',
      'SELECT id, note FROM orders o WHERE id = 1',
    ])
      expect(fingerprint(sql), sql).not.toBe(fingerprint(base));
    expect(fingerprint('SELECT id FROM orders_2024')).not.toBe(fingerprint('SELECT id FROM orders_2025'));
    expect(fingerprint('EXECUTE a')).not.toBe(fingerprint('EXECUTE b'));
    expect(fingerprint('LISTEN a')).not.toBe(fingerprint('LISTEN b'));
  });

  it('is none for a statement whose literals are its grammar, and for text that does not parse', () => {
    for (const sql of ["COPY orders FROM '/tmp/x'", "DO 'BEGIN END'", 'SELEC 1', ''])
      expect(fingerprint(sql), sql).toBeUndefined();
  });
});

describe('auto-approval conditions on an unknown-shape rule', () => {
  it('see the unknown-shape kind, so a condition on other kinds does not approve every new shape', () => {
    const { judge } = setup();
    const verdict = judge('SELECT id FROM orders WHERE id = 1');
    expect(verdict.outcome === 'refuse' && verdict.held?.kinds).toEqual(['unknown-shape']);
  });
});
