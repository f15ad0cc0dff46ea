import { describe, expect, it } from 'vitest';
import type { AdmissionReview } from '../webhook/admission-review.ts';
import { reviewDecision } from './decision-review.ts';

const OPERATOR = 'system:serviceaccount:gatehouse-system:gatehouse';
const logger = { info: () => {}, warn: () => {} };
const deps = { operatorUser: () => OPERATOR, now: () => new Date('2026-12-07T10:00:00Z'), logger };

const stored = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'ApprovalRequest',
  metadata: { name: 'ar-0123456789abcdef', namespace: 'shop' },
  spec: {
    identity: { subject: 'system:serviceaccount:shop:orders-app', groups: [] },
    database: 'orders',
    statement: 'DROP TABLE t',
    parametersHash: '',
    rules: [
      {
        guardrail: 'g',
        rule: 'r',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 120,
        ttlSeconds: 900,
      },
    ],
    requestedBy: 'system:serviceaccount:shop:orders-app',
    requestedAt: '2026-12-07T09:59:00Z',
    expiresAt: '2026-12-07T10:14:00Z',
  },
  status: { phase: 'Pending' },
};

function review(request: Record<string, unknown>): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u-1',
      kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'ApprovalRequest' },
      resource: { group: 'gatehouse.dev', version: 'v1alpha1', resource: 'approvalrequests' },
      subResource: 'status',
      operation: 'UPDATE',
      namespace: 'shop',
      oldObject: stored,
      object: {
        ...stored,
        status: { phase: 'Pending', decision: { verdict: 'approve', reason: 'ok', by: 'eve' } },
      },
      userInfo: { username: 'alice', groups: ['approvers'] },
      ...request,
    } as AdmissionReview['request'],
  };
}

describe('reviewDecision', () => {
  it('answers with a JSON patch of the stamped status, for the same uid', () => {
    const answer = reviewDecision(review({}), deps).response!;
    expect(answer).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(answer.patch!, 'base64').toString())).toEqual([
      {
        op: 'replace',
        path: '/status',
        value: {
          phase: 'Approved',
          decision: {
            verdict: 'approve',
            reason: 'ok',
            by: 'alice',
            groups: ['approvers'],
            at: '2026-12-07T10:00:00.000Z',
          },
        },
      },
    ]);
  });

  it('refuses, with the reason for the client, what it cannot read or must not admit', () => {
    const refused: [string, Record<string, unknown>][] = [
      ['not an approver', { userInfo: { username: 'mallory', groups: [] } }],
      ['no user', { userInfo: {} }],
      ['the main resource', { subResource: undefined }],
      ['a create', { operation: 'CREATE' }],
      [
        'another resource',
        { resource: { group: 'gatehouse.dev', version: 'v1alpha1', resource: 'guardrails' } },
      ],
      ['no old object', { oldObject: undefined }],
      ['not an object', { object: 'approve' }],
    ];
    for (const [what, request] of refused) {
      const answer = reviewDecision(review(request), deps).response!;
      expect(answer, what).toMatchObject({ uid: 'u-1', allowed: false, status: { code: 403 } });
      expect(answer.status?.message, what).toMatch(/^gatehouse: /);
      expect(answer.patch, what).toBeUndefined();
    }
  });

  it("admits the operator's own status writes unchanged", () => {
    const answer = reviewDecision(
      review({ userInfo: { username: OPERATOR }, object: { ...stored, status: { phase: 'Expired' } } }),
      deps,
    ).response!;
    expect(answer).toEqual({ uid: 'u-1', allowed: true });
  });
});
