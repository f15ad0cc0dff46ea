import { isDeepStrictEqual } from 'node:util';
import type { ApprovalRequestStatusValue } from '../../../crds/approval-request.ts';
import { decisionRefusal } from '../../../sidecar/src/approvals/decision-refusal.ts';
import { type ApprovalRequestObject, decidable, phaseOf } from './approval-request-object.ts';

/** The authenticated user of an API request, as the API server puts it in an AdmissionReview. */
export interface UserInfo {
  readonly username: string;
  readonly groups?: readonly string[];
}

export type StampResult =
  /** Admit, with `status` as the stored status (undefined: admit what was sent, unchanged). */
  | { readonly allowed: true; readonly status?: ApprovalRequestStatusValue }
  | { readonly allowed: false; readonly message: string };

/**
 * The operator's admission of a write to an ApprovalRequest's status. Only the operator itself
 * writes phases; anyone else may only add a first decision (`verdict`, `reason`, optionally
 * `shapeForSeconds`) to a Pending, unexpired request. Who decided, their groups and when are taken
 * from the API request's authenticated user and the operator's clock, replacing whatever the client
 * wrote, and the decider must be admitted by the same rules as a standalone proxy's: an approver of
 * every rule, and not the requester unless each rule allows self-approval.
 */
export function stampDecision(input: {
  readonly old: ApprovalRequestObject;
  readonly next: ApprovalRequestObject;
  readonly user: UserInfo;
  /** The operator's own user name: its writes (phases, expiry, execution) pass unchanged. */
  readonly operatorUser: string | undefined;
  readonly now: Date;
}): StampResult {
  const { old, next, user, now } = input;
  if (input.operatorUser !== undefined && user.username === input.operatorUser) return { allowed: true };
  const name = old.metadata.name;
  const refuse = (message: string): StampResult => ({ allowed: false, message });
  const decision = next.status?.decision;
  if (decision === undefined)
    return refuse(
      `only the operator writes the status of ${name}; an approver adds status.decision {verdict, reason} (kubectl gatehouse approve|deny)`,
    );
  if (old.status?.decision !== undefined) return refuse(`request ${name} was already decided`);
  const { decision: _new, ...restNext } = next.status ?? {};
  const { decision: _old, ...restOld } = old.status ?? {};
  if (!isDeepStrictEqual(restNext, restOld))
    return refuse(`a decision on ${name} may only add status.decision; the operator writes the phase`);
  if (phaseOf(old) === 'Pending' && now.getTime() >= Date.parse(old.spec.expiresAt))
    return refuse(`request ${name} expired before anyone decided it`);
  const decider = { subject: user.username, groups: [...(user.groups ?? [])] };
  const refused = decisionRefusal(decidable(old), decider);
  if (refused) return refuse(refused.message);
  if (decision.verdict !== 'approve' && decision.verdict !== 'deny')
    return refuse('status.decision.verdict is approve or deny');
  if (typeof decision.reason !== 'string' || decision.reason.trim() === '')
    return refuse('a decision needs a reason (status.decision.reason)');
  if (decision.shapeForSeconds !== undefined) {
    if (decision.verdict !== 'approve') return refuse('only an approval can cover a shape');
    if (old.spec.fingerprint === undefined)
      return refuse(`request ${name} has no shape to approve (its text has no fingerprint)`);
  }
  return {
    allowed: true,
    status: {
      ...restOld,
      phase: decision.verdict === 'approve' ? 'Approved' : 'Denied',
      decision: {
        verdict: decision.verdict,
        reason: decision.reason,
        ...(decision.shapeForSeconds !== undefined && { shapeForSeconds: decision.shapeForSeconds }),
        by: decider.subject,
        groups: decider.groups,
        at: now.toISOString(),
      },
    },
  };
}
