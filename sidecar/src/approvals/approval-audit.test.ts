import { describe, expect, it } from 'vitest';
import { approvalAuditEvent } from './approval-audit.ts';
import { ApprovalBook, type ApprovalChange } from './approval-book.ts';
import { parametersHash } from './approval-request.ts';

describe('approvalAuditEvent', () => {
  it('records each step with the shape, never the text, and the decision on the decision only', () => {
    const changes: ApprovalChange[] = [];
    const book = new ApprovalBook({ newId: () => 'ar-1' });
    book.onChange((c) => changes.push(c));
    const binding = {
      subject: 'local:admin',
      database: 'shop',
      statement: "DELETE FROM customers WHERE email = 'jane@example.com'",
      parametersHash: parametersHash([]),
    };
    book.open({
      binding,
      fingerprint: 'fp',
      shape: 'DELETE FROM customers WHERE email = $1',
      requester: { subject: 'local:admin', groups: [], method: 'local' },
      rules: [
        {
          guardrail: 'prod',
          rule: 'deletes',
          approvers: [{ kind: 'Group', name: 'approvers' }],
          allowSelfApproval: false,
          waitSeconds: 1,
          ttlSeconds: 60,
        },
      ],
      impact: {},
    });
    book.decide('ar-1', { subject: 'local:lead', groups: ['approvers'], method: 'local' }, 'approve', 'ok', {
      shapeForSeconds: 60,
    });
    book.claim(binding, 'fp');
    const events = changes.map(approvalAuditEvent);
    expect(events.map((e) => e.event)).toEqual(['requested', 'approved', 'executed']);
    expect(events[0]).toEqual({
      type: 'approval',
      event: 'requested',
      request: 'ar-1',
      subject: 'local:admin',
      database: 'shop',
      statement: 'DELETE FROM customers WHERE email = $1',
      fingerprint: 'fp',
      parametersHash: '',
      rules: ['prod/deletes'],
    });
    expect(events[1]).toMatchObject({ by: 'local:lead', reason: 'ok', shapeUntil: expect.any(String) });
    expect(events[2]).not.toHaveProperty('by');
    expect(JSON.stringify(events)).not.toContain('jane@example.com');
  });
});
