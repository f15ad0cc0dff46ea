import { describe, expect, it } from 'vitest';
import type { Identity } from '../identity/identity.ts';
import {
  ApprovalBook,
  type ApprovalChange,
  MAX_SHAPE_APPROVAL_SECONDS,
  type OpenRequest,
} from './approval-book.ts';
import {
  type ApprovalRequest,
  type ApprovalRule,
  AUTO_APPROVER,
  parametersHash,
} from './approval-request.ts';

const person = (subject: string, groups: string[] = []): Identity => ({ subject, groups, method: 'local' });
const admin = person('local:admin', ['dba']);
const lead = person('local:lead', ['approvers']);
const outsider = person('local:mallory', ['dev']);

const rule: ApprovalRule = {
  guardrail: 'production',
  rule: 'admin-approvals',
  namespace: 'shop',
  approvers: [
    { kind: 'Group', name: 'approvers' },
    { kind: 'ServiceAccount', name: 'release-bot' },
  ],
  allowSelfApproval: false,
  waitSeconds: 120,
  ttlSeconds: 900,
};

function book() {
  let now = Date.parse('2026-12-07T10:00:00Z');
  let n = 0;
  const changes: ApprovalChange[] = [];
  const b = new ApprovalBook({ now: () => now, newId: () => `ar-${++n}` });
  b.onChange((c) => changes.push(c));
  return { b, changes, advance: (seconds: number) => (now += seconds * 1000), now: () => now };
}

function ask(statement = 'DROP TABLE orders', params: (Buffer | null)[] = [], who = admin): OpenRequest {
  return {
    binding: { subject: who.subject, database: 'shop', statement, parametersHash: parametersHash(params) },
    fingerprint: `fp:${statement.replace(/\d+/g, '?')}`,
    shape: statement.replace(/\d+/g, '$1'),
    requester: who,
    rules: [rule],
    impact: { tables: ['orders'] },
  };
}

const isRequest = (r: unknown): r is ApprovalRequest => typeof r === 'object' && r !== null && 'phase' in r;

describe('ApprovalBook', () => {
  it('opens a Pending request and joins the identical statement to it', () => {
    const { b, changes } = book();
    const first = b.open(ask());
    const again = b.open(ask());
    expect(first.created).toBe(true);
    expect(again).toEqual({ request: first.request, created: false });
    expect(first.request.phase).toBe('Pending');
    expect(changes.map((c) => c.event)).toEqual(['requested']);
  });

  it('an approval releases the identical statement once, then nothing', () => {
    const { b, changes } = book();
    const { request } = b.open(ask());
    expect(b.claim(ask().binding, ask().fingerprint)).toBeUndefined();
    const approved = b.decide(request.id, lead, 'approve', 'checked the backup');
    expect(isRequest(approved) && approved.phase).toBe('Approved');
    const release = b.claim(ask().binding, ask().fingerprint);
    expect(release?.by).toBe('statement');
    expect(release?.request.phase).toBe('Executed');
    expect(b.claim(ask().binding, ask().fingerprint)).toBeUndefined();
    expect(changes.map((c) => c.event)).toEqual(['requested', 'approved', 'executed']);
    expect(b.get(request.id)?.decision).toMatchObject({ by: 'local:lead', reason: 'checked the backup' });
  });

  it('never releases another text, other parameters, another database or another identity', () => {
    const { b } = book();
    const original = ask('DELETE FROM orders WHERE id = $1', [Buffer.from('7')]);
    const { request } = b.open(original);
    b.decide(request.id, lead, 'approve', 'ok');
    const others: OpenRequest[] = [
      ask('DELETE FROM orders WHERE id = $1 ', [Buffer.from('7')]),
      ask('delete from orders where id = $1', [Buffer.from('7')]),
      ask('DELETE FROM orders WHERE id = $1', [Buffer.from('8')]),
      ask('DELETE FROM orders WHERE id = $1', [Buffer.from('7'), null]),
      ask('DELETE FROM orders WHERE id = $1', [null]),
      ask('DELETE FROM orders WHERE id = $1', []),
      ask('DELETE FROM orders WHERE id = $1', [Buffer.from('7')], outsider),
      { ...original, binding: { ...original.binding, database: 'shop2' } },
    ];
    for (const other of others)
      expect(b.claim(other.binding, null), JSON.stringify(other.binding)).toBeUndefined();
    expect(b.claim(original.binding, null)?.by).toBe('statement');
  });

  it('refuses self-approval unless the rule allows it, and deciders who are not approvers', () => {
    const { b } = book();
    const { request } = b.open(ask('DROP TABLE t', [], lead));
    expect(b.decide(request.id, lead, 'approve', 'mine')).toMatchObject({ problem: 'self-approval' });
    expect(b.decide(request.id, outsider, 'approve', 'x')).toMatchObject({ problem: 'not-an-approver' });
    expect(b.decide(request.id, admin, 'approve', 'x')).toMatchObject({ problem: 'not-an-approver' });
    // A ServiceAccount approver in the Guardrail's namespace, and not one of the same name elsewhere.
    expect(
      b.mayDecide(request.id, {
        subject: 'system:serviceaccount:other:release-bot',
        groups: [],
        method: 'token',
      }),
    ).toMatchObject({ problem: 'not-an-approver' });
    expect(
      b.mayDecide(request.id, {
        subject: 'system:serviceaccount:shop:release-bot',
        groups: [],
        method: 'token',
      }),
    ).toBeUndefined();
    expect(b.get(request.id)?.phase).toBe('Pending');

    const selfish = new ApprovalBook();
    const own = selfish.open({
      ...ask('DROP TABLE t', [], lead),
      rules: [{ ...rule, allowSelfApproval: true }],
    });
    expect(isRequest(selfish.decide(own.request.id, lead, 'approve', 'mine'))).toBe(true);
  });

  it('with several rules, a decider must be an approver of each, and self-approval allowed by each', () => {
    const { b } = book();
    const security: ApprovalRule = {
      ...rule,
      guardrail: 'security',
      rule: 'pii-drops',
      namespace: 'shop',
      approvers: [{ kind: 'Group', name: 'security' }],
      allowSelfApproval: true,
      ttlSeconds: 60,
    };
    const both = b.open({ ...ask('DROP TABLE customers', [], lead), rules: [rule, security] }).request;
    // The shorter TTL applies.
    expect(both.expiresAt - both.requestedAt).toBe(60_000);
    expect(b.mayDecide(both.id, person('local:sec', ['security']))).toMatchObject({
      problem: 'not-an-approver',
      message: 'local:sec is not an approver of rule admin-approvals of Guardrail production',
    });
    expect(b.mayDecide(both.id, lead)).toMatchObject({ problem: 'not-an-approver' });
    const lead2 = person('local:lead', ['approvers', 'security']);
    expect(b.mayDecide(both.id, lead2)).toMatchObject({ problem: 'self-approval' });
    expect(b.mayDecide(both.id, person('local:carol', ['approvers', 'security']))).toBeUndefined();
  });

  it('a denial is final, recorded in the history, and the statement asks anew', () => {
    const { b, advance } = book();
    const { request } = b.open(ask());
    const denied = b.decide(request.id, lead, 'deny', 'not during the sale');
    expect(isRequest(denied) && denied.phase).toBe('Denied');
    expect(b.decide(request.id, lead, 'approve', 'changed my mind')).toMatchObject({
      problem: 'not-pending',
    });
    expect(b.claim(ask().binding, null)).toBeUndefined();
    const start = Date.parse('2026-12-07T10:00:00Z');
    expect(b.deniedSince('local:admin', start)).toBe(true);
    expect(b.deniedSince('local:admin', start + 1)).toBe(false);
    expect(b.deniedSince('local:lead', start)).toBe(false);
    advance(1);
    const again = b.open(ask());
    expect(again.created).toBe(true);
    expect(again.request.id).not.toBe(request.id);
  });

  it('expires a Pending request and an unused approval after the TTL', () => {
    const { b, advance, changes } = book();
    const pending = b.open(ask('DROP TABLE a')).request;
    const approved = b.open(ask('DROP TABLE b')).request;
    advance(600);
    b.decide(approved.id, lead, 'approve', 'ok');
    advance(300);
    expect(b.get(pending.id)?.phase).toBe('Expired');
    expect(b.decide(pending.id, lead, 'approve', 'late')).toMatchObject({ problem: 'not-pending' });
    // The approval counts its TTL from the decision: 300 s of 900 used.
    expect(b.get(approved.id)?.phase).toBe('Approved');
    advance(599);
    expect(b.claim(ask('DROP TABLE b').binding, null)?.by).toBe('statement');

    const unused = b.open(ask('DROP TABLE c')).request;
    b.decide(unused.id, lead, 'approve', 'ok');
    advance(900);
    expect(b.claim(ask('DROP TABLE c').binding, null)).toBeUndefined();
    expect(b.get(unused.id)?.phase).toBe('Expired');
    expect(changes.filter((c) => c.event === 'expired').map((c) => c.request.id)).toEqual([
      pending.id,
      unused.id,
    ]);
  });

  it('withdraws a Pending request (the client cancelled) and nothing else', () => {
    const { b } = book();
    const { request } = b.open(ask());
    expect(b.withdraw(request.id)?.phase).toBe('Withdrawn');
    expect(b.withdraw(request.id)).toBeUndefined();
    expect(b.decide(request.id, lead, 'approve', 'x')).toMatchObject({ problem: 'not-pending' });
    expect(b.open(ask()).created).toBe(true);
  });

  it('a shape approval releases the same shape for the same identity until it ends', () => {
    const { b, advance } = book();
    const nightly = (n: number, who = admin) => ask(`DELETE FROM staging WHERE batch = ${n}`, [], who);
    const { request } = b.open(nightly(1));
    expect(
      b.decide(request.id, lead, 'approve', 'nightly job', { shapeForSeconds: 86_400 * 7 }),
    ).toMatchObject({
      phase: 'Approved',
    });
    for (const n of [2, 3, 40, 999]) {
      const other = nightly(n);
      expect(b.claim(other.binding, other.fingerprint)?.by, `batch ${n}`).toBe('shape');
    }
    const stranger = nightly(2, outsider);
    expect(b.claim(stranger.binding, stranger.fingerprint)).toBeUndefined();
    const otherShape = ask('DELETE FROM staging');
    expect(b.claim(otherShape.binding, otherShape.fingerprint)).toBeUndefined();
    advance(86_400 * 7);
    expect(b.claim(nightly(5).binding, nightly(5).fingerprint)).toBeUndefined();
  });

  it('refuses shape approvals that are denials, unbounded or without a fingerprint', () => {
    const { b } = book();
    const { request } = b.open(ask());
    expect(b.decide(request.id, lead, 'deny', 'x', { shapeForSeconds: 60 })).toMatchObject({
      problem: 'invalid',
    });
    for (const seconds of [0, -1, 1.5, MAX_SHAPE_APPROVAL_SECONDS + 1, Number.NaN])
      expect(b.decide(request.id, lead, 'approve', 'x', { shapeForSeconds: seconds })).toMatchObject({
        problem: 'invalid',
      });
    const bare = b.open({ ...ask('SELECT 1'), fingerprint: null }).request;
    expect(b.decide(bare.id, lead, 'approve', 'x', { shapeForSeconds: 60 })).toMatchObject({
      problem: 'invalid',
    });
    expect(b.get(request.id)?.phase).toBe('Pending');
  });

  it('an automatic approval names its condition', () => {
    const { b } = book();
    const { request } = b.open(ask());
    const approved = b.approveAutomatically(request.id, 'small-deletes');
    expect(approved).toMatchObject({
      phase: 'Approved',
      decision: { by: AUTO_APPROVER, condition: 'small-deletes' },
    });
    expect(b.approveAutomatically(request.id, 'again')).toMatchObject({ problem: 'not-pending' });
  });

  it('lists newest first and filters by phase', () => {
    const { b, advance } = book();
    const a = b.open(ask('DROP TABLE a')).request;
    advance(1);
    const c = b.open(ask('DROP TABLE c')).request;
    b.decide(a.id, lead, 'deny', 'no');
    expect(b.list().map((r) => r.id)).toEqual([c.id, a.id]);
    expect(b.list({ phase: 'Pending' }).map((r) => r.id)).toEqual([c.id]);
  });
});

describe('parametersHash', () => {
  it('differs for every pair of different parameter lists in a generated set', () => {
    const lists: (Buffer | null)[][] = [[]];
    const atoms = [
      null,
      Buffer.alloc(0),
      Buffer.from('a'),
      Buffer.from('ab'),
      Buffer.from('b'),
      Buffer.from([0]),
    ];
    for (const x of atoms) lists.push([x]);
    for (const x of atoms) for (const y of atoms) lists.push([x, y]);
    const seen = new Map<string, string>();
    for (const list of lists) {
      const hash = parametersHash(list);
      const label = JSON.stringify(list.map((v) => (v === null ? null : v.toString('hex'))));
      expect(seen.get(hash), `${label} collides`).toBeUndefined();
      seen.set(hash, label);
    }
    expect(parametersHash([Buffer.from('1')], [0])).not.toBe(parametersHash([Buffer.from('1')], [1]));
    expect(parametersHash([Buffer.from('x')])).toBe(parametersHash([Buffer.from('x')]));
  });
});
