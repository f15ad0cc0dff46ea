import { describe, expect, it } from 'vitest';
import type { ApprovalRequestObject } from './approval-request-object.ts';
import { stampDecision, type UserInfo } from './stamp-decision.ts';

const NOW = new Date('2026-12-07T10:00:00Z');
const OPERATOR = 'system:serviceaccount:gatehouse-system:gatehouse';

function request(overrides: Partial<ApprovalRequestObject['spec']> = {}): ApprovalRequestObject {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: 'ar-0123456789abcdef', namespace: 'shop' },
    spec: {
      identity: { subject: 'system:serviceaccount:shop:orders-app', groups: ['system:serviceaccounts'] },
      database: 'orders',
      statement: 'DROP TABLE customers',
      parametersHash: '',
      fingerprint: 'f1',
      rules: [
        {
          guardrail: 'admin-approvals',
          rule: 'drops',
          approvers: [
            { kind: 'Group', name: 'approvers' },
            { kind: 'ServiceAccount', name: 'release-bot' },
            { kind: 'User', name: 'system:serviceaccount:shop:orders-app' },
          ],
          allowSelfApproval: false,
          waitSeconds: 120,
          ttlSeconds: 900,
        },
      ],
      requestedBy: 'system:serviceaccount:shop:orders-app',
      requestedAt: '2026-12-07T09:59:00Z',
      expiresAt: '2026-12-07T10:14:00Z',
      ...overrides,
    },
    status: { phase: 'Pending' },
  };
}

function withDecision(base: ApprovalRequestObject, decision: Record<string, unknown>): ApprovalRequestObject {
  return { ...base, status: { ...base.status, decision } as ApprovalRequestObject['status'] };
}

const alice: UserInfo = { username: 'alice', groups: ['approvers', 'system:authenticated'] };

function stamp(old: ApprovalRequestObject, next: ApprovalRequestObject, user: UserInfo, now = NOW) {
  return stampDecision({ old, next, user, operatorUser: OPERATOR, now });
}

describe('stampDecision', () => {
  it('stamps who decided from userInfo, whatever the client wrote in the decision', () => {
    const forged = [
      {},
      { by: 'bob' },
      { by: 'system:serviceaccount:gatehouse-system:gatehouse' },
      { by: 'gatehouse:auto-approve', condition: 'small-and-clean' },
      { by: 'alice', groups: ['system:masters'] },
      { at: '2020-01-01T00:00:00Z', by: '' },
      { groups: [], by: 'ALICE' },
    ];
    for (const extra of forged) {
      const old = request();
      const result = stamp(old, withDecision(old, { verdict: 'approve', reason: 'ok', ...extra }), alice);
      expect(result, JSON.stringify(extra)).toEqual({
        allowed: true,
        status: {
          phase: 'Approved',
          decision: {
            verdict: 'approve',
            reason: 'ok',
            by: 'alice',
            groups: ['approvers', 'system:authenticated'],
            at: NOW.toISOString(),
          },
        },
      });
    }
  });

  it('denies as Denied, and keeps an approved shape period', () => {
    const old = request();
    expect(stamp(old, withDecision(old, { verdict: 'deny', reason: 'no' }), alice)).toMatchObject({
      status: { phase: 'Denied', decision: { by: 'alice', verdict: 'deny' } },
    });
    expect(
      stamp(old, withDecision(old, { verdict: 'approve', reason: 'nightly', shapeForSeconds: 3600 }), alice),
    ).toMatchObject({ status: { phase: 'Approved', decision: { shapeForSeconds: 3600 } } });
  });

  it('admits a service account approver named without a namespace, in the request namespace only', () => {
    const old = request();
    const next = withDecision(old, { verdict: 'approve', reason: 'ok' });
    expect(stamp(old, next, { username: 'system:serviceaccount:shop:release-bot' })).toMatchObject({
      allowed: true,
    });
    expect(stamp(old, next, { username: 'system:serviceaccount:other:release-bot' })).toMatchObject({
      allowed: false,
      message: expect.stringContaining('is not an approver of rule drops of Guardrail admin-approvals'),
    });
  });

  it('refuses users the rules do not name, however close the name', () => {
    const old = request();
    const next = withDecision(old, { verdict: 'approve', reason: 'ok' });
    const strangers: UserInfo[] = [
      { username: 'mallory' },
      { username: 'mallory', groups: ['Approvers'] },
      { username: 'mallory', groups: ['approvers '] },
      { username: 'mallory', groups: ['system:masters'] },
      { username: 'approvers' },
      { username: 'release-bot' },
      { username: 'system:serviceaccount:shop:release-bot2' },
    ];
    for (const user of strangers)
      expect(stamp(old, next, user), JSON.stringify(user)).toMatchObject({ allowed: false });
  });

  it('refuses self-approval unless every rule allows it', () => {
    const self: UserInfo = { username: 'system:serviceaccount:shop:orders-app', groups: ['approvers'] };
    const old = request();
    expect(stamp(old, withDecision(old, { verdict: 'approve', reason: 'mine' }), self)).toMatchObject({
      allowed: false,
      message: expect.stringContaining('may not decide it'),
    });
    const allowing = request({ rules: [{ ...request().spec.rules[0]!, allowSelfApproval: true }] });
    expect(
      stamp(allowing, withDecision(allowing, { verdict: 'approve', reason: 'mine' }), self),
    ).toMatchObject({ allowed: true });
  });

  it('refuses a second decision, a phase written by an approver, an expired request, and bad decisions', () => {
    const old = request();
    const decided = stamp(old, withDecision(old, { verdict: 'approve', reason: 'ok' }), alice);
    if (!decided.allowed || !decided.status) throw new Error('expected a stamped status');
    const after = { ...old, status: decided.status };
    const cases: [string, ApprovalRequestObject, ApprovalRequestObject, Date?][] = [
      ['decided', after, withDecision(after, { verdict: 'deny', reason: 'changed my mind' })],
      ['no decision', old, { ...old, status: { phase: 'Approved' } }],
      [
        'phase',
        old,
        { ...old, status: { phase: 'Approved', decision: { verdict: 'approve', reason: 'x' } } },
      ],
      [
        'executed',
        old,
        {
          ...old,
          status: {
            phase: 'Pending',
            executedAt: NOW.toISOString(),
            decision: { verdict: 'approve', reason: 'x' },
          },
        },
      ],
      [
        'expired',
        old,
        withDecision(old, { verdict: 'approve', reason: 'late' }),
        new Date('2026-12-07T10:14:00Z'),
      ],
      ['verdict', old, withDecision(old, { verdict: 'yes', reason: 'x' })],
      ['reason', old, withDecision(old, { verdict: 'approve', reason: '  ' })],
      ['shape on deny', old, withDecision(old, { verdict: 'deny', reason: 'x', shapeForSeconds: 60 })],
      [
        'shape without fingerprint',
        request({ fingerprint: undefined }),
        withDecision(request({ fingerprint: undefined }), {
          verdict: 'approve',
          reason: 'x',
          shapeForSeconds: 60,
        }),
      ],
    ];
    for (const [what, before, next, now] of cases)
      expect(stamp(before, next, alice, now), what).toMatchObject({ allowed: false });
  });

  it("lets the operator's own writes through unchanged", () => {
    const old = request();
    expect(stamp(old, { ...old, status: { phase: 'Expired' } }, { username: OPERATOR })).toEqual({
      allowed: true,
    });
    // Without knowing its own name, the operator admits nobody's phase writes.
    expect(
      stampDecision({
        old,
        next: { ...old, status: { phase: 'Expired' } },
        user: { username: OPERATOR },
        operatorUser: undefined,
        now: NOW,
      }),
    ).toMatchObject({ allowed: false });
  });
});
