import { type ApprovalRequest, parametersHash } from '../../approvals/approval-request.ts';
import { withMeasured } from '../../approvals/held-statement.ts';
import { heldNotice, notReleasedMessage } from '../../approvals/hold.ts';
import { impactPlan } from '../../approvals/impact-plan.ts';
import type { SessionCore } from '../session-core.ts';
import { noticeResponse } from './backend-writer.ts';
import type { PortalText, Refusal } from './exchange.ts';
import { bindParameters } from './message-fields.ts';
import { HOLD } from './message-framer.ts';
import type { SessionState } from './session-state.ts';

const EXTENDED_NOT_MEASURED =
  'a statement sent with the extended protocol (a driver with parameters) is not measured yet';

/** A held statement that did not run (denied, withdrawn, expired, still pending), as the client's error. */
export function approvalRefusal(request: ApprovalRequest): Refusal {
  return {
    reason: `approval ${request.id}: ${request.phase}`,
    fields: { severity: 'ERROR', code: '42501', message: `Gatehouse: ${notReleasedMessage(request)}` },
  };
}

/** Tells the client at once that its statement waits, and how to decide it (psql prints it while it waits). */
export function tellHeld(core: SessionCore, request: ApprovalRequest): void {
  core.tellClient(noticeResponse({ severity: 'NOTICE', code: '01000', message: heldNotice(request) }));
}

/** The digest of a Bind's parameter values and formats, which an approval is bound to. */
export function boundParametersHash(frame: Buffer): string {
  const { values, formats } = bindParameters(frame);
  return parametersHash(values, formats);
}

/**
 * An Execute of a statement an approval must release, with the parameters its Bind bound: released
 * (the request that did), refused (denied, withdrawn, still pending), or HOLD while it waits; the
 * Execute is handled again once the wait ends.
 */
export function executeApproval(
  state: SessionState,
  core: SessionCore,
  portal: PortalText,
): { request: string } | { refusal: Refusal } | typeof HOLD {
  const { sql, held } = portal.text.approval!;
  const hash = portal.parametersHash ?? '';
  // One key per text and parameters: what the wait is for, and what the decision is handed to.
  const key = `${sql}\u0000${hash}`;
  const end = state.holds.take(key);
  if (end) return end.run ? { request: end.request } : { refusal: approvalRefusal(end.request) };
  // Between a driver's Bind and Sync the connection is not free for the proxy's own queries.
  const changesRows = held.statementFacts && impactPlan(held.statementFacts).measure === 'rows';
  const bound = { ...held, binding: { ...held.binding, parametersHash: hash } };
  const start = state.holds.begin(
    key,
    changesRows ? withMeasured(bound, { notMeasured: EXTENDED_NOT_MEASURED }) : bound,
  );
  if (start.run) return { request: start.request };
  tellHeld(core, start.request);
  return HOLD;
}
