import { describe, expect, it } from 'vitest';
import { ApprovalBook } from './approval-book.ts';
import type { ApprovalImpact } from './approval-request.ts';
import { slackMessage, webhookMessage } from './notify.ts';

function request(impact: ApprovalImpact) {
  return new ApprovalBook().open({
    binding: { subject: 'local:demo', database: 'shop', statement: 'DROP TABLE orders', parametersHash: '' },
    fingerprint: 'f',
    shape: 'DROP TABLE orders',
    requester: { subject: 'local:demo', groups: [], claims: {} } as never,
    rules: [
      {
        guardrail: 'g',
        rule: 'r',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 5,
        ttlSeconds: 60,
      },
    ],
    impact,
  }).request;
}

describe('the impact in notifications', () => {
  it('tells the measured rows, the estimate, the dependents, or why the rows were not measured', () => {
    const context = (impact: ApprovalImpact) =>
      JSON.stringify((slackMessage(request(impact)).blocks[2] as { elements: unknown[] }).elements);
    expect(context({ affectedRows: 5, estimatedRows: 6 })).toContain(
      '5 rows measured · about 6 rows planned',
    );
    expect(context({ notMeasured: "the session's transaction has failed" })).toContain(
      "rows not measured: the session's transaction has failed",
    );
    expect(context({ dependents: ['view open_orders', 'foreign key fk on lines'] })).toContain(
      'depended on by view open_orders, foreign key fk on lines',
    );
    const impact = { affectedRows: 2, notMeasured: undefined, dependents: ['view v'] };
    expect((webhookMessage(request(impact)).request as { impact: unknown }).impact).toEqual(impact);
  });
});
