import { type ApprovalRequest, describeRules } from './approval-request.ts';

/**
 * The announcement of a new request. Only the statement's shape (literals as placeholders) leaves
 * the proxy: the text's values may be personal data, and chat channels and webhooks are not where
 * they may go. The approver sees the text itself through `gatehouse approvals show`.
 */
export function slackMessage(request: ApprovalRequest): { text: string; blocks: unknown[] } {
  const shape = request.shape ?? '(a statement Gatehouse could not parse; see the request)';
  const impact = impactLine(request);
  const text = `Approval needed: ${request.requester.subject} wants to run a statement on ${request.binding.database} (${describeRules(request.rules)}), request ${request.id}`;
  return {
    text,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*Approval needed* for \`${request.requester.subject}\` on \`${request.binding.database}\``,
        },
      },
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${shape.replaceAll('```', "'''")}\`\`\`` } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `${describeRules(request.rules)}${impact ? ` · ${impact}` : ''} · expires ${new Date(request.expiresAt).toISOString()}`,
          },
        ],
      },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `Decide: \`gatehouse approvals approve ${request.id} --reason "…"\` or \`deny\``,
        },
      },
    ],
  };
}

/** What became of a request, for a target with `onDecision`: who decided and why, or that it expired. */
export function slackDecisionMessage(request: ApprovalRequest): { text: string } {
  const { decision } = request;
  const what =
    request.phase !== 'Expired'
      ? `was ${request.phase.toLowerCase()} by ${decision?.by ?? 'an approver'}: ${decision?.reason ?? ''}`
      : decision
        ? `was approved by ${decision.by} and expired unused`
        : 'expired before anyone decided it';
  return {
    text: `Request ${request.id} of ${request.requester.subject} on ${request.binding.database} ${what} (${describeRules(request.rules)})`,
  };
}

/** The request as a generic webhook receives it: the API's view with the shape in place of the text. */
export function webhookMessage(request: ApprovalRequest): Record<string, unknown> {
  const { decision } = request;
  return {
    type: request.phase === 'Pending' ? 'gatehouse.approval.requested' : 'gatehouse.approval.decided',
    request: {
      id: request.id,
      phase: request.phase,
      requester: request.requester,
      database: request.binding.database,
      shape: request.shape,
      fingerprint: request.fingerprint,
      rules: request.rules.map((rule) => ({ guardrail: rule.guardrail, name: rule.rule })),
      impact: request.impact,
      requestedAt: new Date(request.requestedAt).toISOString(),
      expiresAt: new Date(request.expiresAt).toISOString(),
      ...(decision && {
        decision: {
          by: decision.by,
          reason: decision.reason,
          at: new Date(decision.at).toISOString(),
          ...(decision.condition !== undefined && { condition: decision.condition }),
        },
      }),
    },
  };
}

function impactLine(request: ApprovalRequest): string {
  const { affectedRows, notMeasured, estimatedRows, tables, dependents, sensitiveColumns } = request.impact;
  const parts: string[] = [];
  if (affectedRows !== undefined) parts.push(`${affectedRows} rows measured`);
  if (notMeasured !== undefined) parts.push(`rows not measured: ${notMeasured}`);
  if (estimatedRows !== undefined) parts.push(`about ${estimatedRows} rows planned`);
  if (tables?.length) parts.push(`tables ${tables.join(', ')}`);
  if (dependents?.length) parts.push(`depended on by ${dependents.join(', ')}`);
  if (sensitiveColumns?.length) parts.push(`sensitive columns ${sensitiveColumns.join(', ')}`);
  return parts.join(' · ');
}
