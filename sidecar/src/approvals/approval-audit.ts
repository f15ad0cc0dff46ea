import type { ApprovalAuditEvent } from '../audit/events.ts';
import type { ApprovalChange } from './approval-book.ts';
import type { ShapeGrant } from './approval-request.ts';

/** The audit record of a step of an approval request. */
export function approvalAuditEvent({ event, request }: ApprovalChange): ApprovalAuditEvent {
  const decision = event === 'approved' || event === 'denied' ? request.decision : undefined;
  return {
    type: 'approval',
    event,
    request: request.id,
    subject: request.requester.subject,
    database: request.binding.database,
    statement: request.shape,
    fingerprint: request.fingerprint,
    parametersHash: request.binding.parametersHash,
    rules: request.rules.map((rule) => `${rule.guardrail}/${rule.rule}`),
    ...(decision && { by: decision.by, reason: decision.reason }),
    ...(decision?.condition !== undefined && { condition: decision.condition }),
    ...(decision?.shapeUntil !== undefined && { shapeUntil: new Date(decision.shapeUntil).toISOString() }),
    ...(request.access && { columns: [...request.access.columns], forSeconds: request.access.forSeconds }),
    // null for a local user: a restart restores the exemption to this issuer's subject only.
    ...(request.access && { issuer: request.access.issuer ?? null }),
    ...(request.access && event === 'approved' && { until: new Date(request.expiresAt).toISOString() }),
  };
}

/** Learned shapes approved in one go: one `approved` record each, with the grant's id for a request. */
export function shapeGrantAuditEvent(grant: ShapeGrant): ApprovalAuditEvent {
  return {
    type: 'approval',
    event: 'approved',
    request: grant.id,
    subject: grant.subject,
    database: grant.database,
    statement: grant.shape,
    fingerprint: grant.fingerprint,
    parametersHash: '',
    rules: grant.rules.map((rule) => `${rule.guardrail}/${rule.rule}`),
    by: grant.by,
    reason: grant.reason,
    shapeUntil: new Date(grant.until).toISOString(),
  };
}
