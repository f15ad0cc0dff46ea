import type { Identity } from '../identity/identity.ts';
import { anySubjectMatches } from '../policy/subject-matches.ts';
import { type ApprovalPhase, type ApprovalRule, describeRules } from './approval-request.ts';

/** Why a decision was not taken; the text is for the person who tried. */
export type DecisionRefusal =
  | { readonly problem: 'not-found'; readonly message: string }
  | { readonly problem: 'not-pending'; readonly message: string }
  | { readonly problem: 'not-an-approver'; readonly message: string }
  | { readonly problem: 'self-approval'; readonly message: string }
  | { readonly problem: 'invalid'; readonly message: string };

/** What deciding depends on, the same for a proxy's book and for an ApprovalRequest object. */
export interface Decidable {
  readonly id: string;
  readonly phase: ApprovalPhase;
  readonly requester: { readonly subject: string };
  readonly rules: readonly ApprovalRule[];
}

/**
 * Why `decider` may not decide `request`, or undefined when they may: the request must be Pending,
 * the decider an approver of every rule that held it, and not its requester unless each of those
 * rules allows self-approval. One function, so that a standalone proxy and the operator's webhook
 * admit exactly the same deciders.
 */
export function decisionRefusal(
  request: Decidable,
  decider: Pick<Identity, 'subject' | 'groups'>,
): DecisionRefusal | undefined {
  const { id } = request;
  if (request.phase !== 'Pending')
    return { problem: 'not-pending', message: `request ${id} is ${request.phase}, not Pending` };
  const notApproverOf = request.rules.filter((r) => !anySubjectMatches(r.approvers, decider, r.namespace));
  if (notApproverOf.length > 0)
    return {
      problem: 'not-an-approver',
      message: `${decider.subject} is not an approver of ${describeRules(notApproverOf)}`,
    };
  const noSelf = request.rules.filter((r) => !r.allowSelfApproval);
  if (decider.subject === request.requester.subject && noSelf.length > 0)
    return {
      problem: 'self-approval',
      message: `${decider.subject} asked for request ${id} and may not decide it (${describeRules(noSelf)} does not allow self-approval)`,
    };
  return undefined;
}
