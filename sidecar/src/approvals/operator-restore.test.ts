import { describe, expect, it } from 'vitest';
import { ApprovalBook } from './approval-book.ts';
import type { RestoredRequestView } from './operator-protocol.ts';
import { restoredFromOperator } from './operator-restore.ts';

const NOW = Date.parse('2026-12-07T10:30:00Z');
const APP = 'system:serviceaccount:shop:orders-app';

function view(id: string, over: Partial<RestoredRequestView> = {}, spec = {}): RestoredRequestView {
  return {
    id,
    phase: 'Approved',
    spec: {
      identity: { subject: APP, groups: [] },
      database: 'orders',
      statement: `DELETE FROM staging WHERE batch = ${id.length}`,
      parametersHash: '',
      fingerprint: `fp-${id}`,
      shape: 'DELETE FROM staging WHERE batch = ?',
      rules: [
        {
          guardrail: 'g',
          rule: 'r',
          approvers: [{ kind: 'Group', name: 'approvers' }],
          allowSelfApproval: false,
          waitSeconds: 30,
          ttlSeconds: 900,
        },
      ],
      requestedAt: '2026-12-07T10:00:00.000Z',
      expiresAt: '2026-12-07T10:15:00.000Z',
      ...spec,
    },
    decision: {
      verdict: 'approve',
      reason: 'ok',
      by: 'system:serviceaccount:shop:lead',
      groups: ['approvers'],
      at: '2026-12-07T10:00:00.000Z',
      shapeForSeconds: 3600,
    },
    ...over,
  };
}

describe('restoredFromOperator', () => {
  it('puts back standing shapes and access requests, never an exact text, and records what was ended', () => {
    const access = {
      statement: 'ACCESS customers.email FOR 3600s',
      parametersHash: 'access:ar-a',
      fingerprint: undefined,
    };
    const restored = restoredFromOperator(
      {
        standing: [
          view('ar-shape'),
          view('ar-old-shape', { decision: { ...view('x').decision!, shapeForSeconds: 60 } }),
          view(
            'ar-access',
            {
              until: '2026-12-07T11:00:00.000Z',
              decision: {
                verdict: 'approve',
                reason: 'ok',
                by: 'lead',
                groups: ['approvers'],
                at: '2026-12-07T10:00:00.000Z',
              },
            },
            {
              ...access,
              access: { columns: ['customers.email'], forSeconds: 3600, issuer: 'https://issuer' },
            },
          ),
          view(
            'ar-over',
            { until: '2026-12-07T10:20:00.000Z' },
            { ...access, access: { columns: ['customers.email'], forSeconds: 1200 } },
          ),
          // Stamped with a decider the rules do not admit: not restored.
          view('ar-forged', {
            decision: { ...view('x').decision!, by: 'system:serviceaccount:shop:intruder', groups: [] },
          }),
          view('ar-self', { decision: { ...view('x').decision!, by: APP, groups: ['approvers'] } }),
        ],
        ended: [view('ar-pending', { phase: 'Withdrawn' }), view('ar-exact', { phase: 'Expired' })],
        denials: [
          { subject: APP, at: '2026-12-07T09:00:00.000Z' },
          { subject: APP, at: 'garbage' },
        ],
      },
      NOW,
    );
    expect(restored.shapes).toEqual([
      {
        subject: APP,
        database: 'orders',
        fingerprint: 'fp-ar-shape',
        until: NOW + 30 * 60_000,
        requestId: 'ar-shape',
      },
    ]);
    // A sibling's unused exact-text approval is never this book's to run.
    expect(restored.requests.find((r) => r.id === 'ar-shape')?.phase).toBe('Expired');
    expect(restored.requests.map((r) => r.id)).not.toContain('ar-over');
    expect(restored.ended.map((e) => [e.event, e.request.id])).toEqual([
      ['withdrawn', 'ar-pending'],
      ['expired', 'ar-exact'],
    ]);
    expect(restored.skipped.map((s) => s.request)).toEqual(['ar-forged', 'ar-self']);
    expect(restored.denials).toEqual([{ subject: APP, at: Date.parse('2026-12-07T09:00:00.000Z') }]);

    const book = new ApprovalBook({ now: () => NOW });
    book.restore(restored);
    const shapeBinding = {
      subject: APP,
      database: 'orders',
      statement: 'DELETE FROM staging WHERE batch = 9',
      parametersHash: '',
    };
    expect(book.claim(shapeBinding, 'fp-ar-shape')).toMatchObject({
      by: 'shape',
      request: { id: 'ar-shape' },
    });
    expect(book.claim(shapeBinding, 'fp-ar-old-shape')).toBeUndefined();
    const identity = { subject: APP, groups: [], method: 'token' as const, issuer: 'https://issuer' };
    expect(book.accessExemptions(identity, 'orders')).toEqual([
      { request: 'ar-access', columns: ['customers.email'], until: Date.parse('2026-12-07T11:00:00.000Z') },
    ]);
    expect(book.accessExemptions({ ...identity, issuer: 'https://other' }, 'orders')).toEqual([]);
    expect(book.deniedSince(APP, NOW - 2 * 3600_000)).toBe(true);
  });
});
