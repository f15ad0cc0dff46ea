import type { ApprovalRequest } from './approval-request.ts';

/** A request as the API and `gatehouse approvals --json` show it: times as ISO 8601. */
export function view(request: ApprovalRequest) {
  const { decision } = request;
  return {
    id: request.id,
    phase: request.phase,
    requester: request.requester,
    database: request.binding.database,
    statement: request.binding.statement,
    parametersHash: request.binding.parametersHash,
    fingerprint: request.fingerprint,
    rules: request.rules.map((rule) => ({
      guardrail: rule.guardrail,
      name: rule.rule,
      ...(rule.kind !== undefined && { kind: rule.kind }),
    })),
    ...(request.reason !== undefined && { reason: request.reason }),
    impact: request.impact,
    requestedAt: iso(request.requestedAt),
    expiresAt: iso(request.expiresAt),
    ...(decision && {
      decision: {
        by: decision.by,
        reason: decision.reason,
        at: iso(decision.at),
        ...(decision.condition !== undefined && { condition: decision.condition }),
        ...(decision.shapeUntil !== undefined && { shapeUntil: iso(decision.shapeUntil) }),
      },
    }),
    ...(request.executedAt !== undefined && { executedAt: iso(request.executedAt) }),
    ...(request.access && {
      access: { columns: request.access.columns, forSeconds: request.access.forSeconds },
    }),
  };
}

export type ApprovalView = ReturnType<typeof view>;

const iso = (ms: number) => new Date(ms).toISOString();
