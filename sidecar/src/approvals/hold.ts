import type { AutoApproveConditionSpec } from '../../../crds/guardrail.ts';
import type { Identity } from '../identity/identity.ts';
import type { StatementFacts } from '../sql/analyze/statement-facts.ts';
import type { ApprovalBook } from './approval-book.ts';
import {
  type ApprovalImpact,
  type ApprovalRequest,
  type ApprovalRule,
  describeRules,
  type StatementBinding,
  ttlSecondsOf,
  waitSecondsOf,
} from './approval-request.ts';
import { type AutoApproveFacts, autoApproval } from './auto-approve.ts';

/** A requireApproval rule with the conditions under which it approves by itself. */
export type HoldingRule = ApprovalRule & { readonly autoApprove: readonly AutoApproveConditionSpec[] };

/** A statement requireApproval rules refused, and what is known of it for the approver and the conditions. */
export interface HeldStatement {
  readonly binding: StatementBinding;
  readonly fingerprint: string | null;
  readonly shape: string | null;
  readonly requester: Identity;
  /** At least one; releasing the statement takes every one of them. */
  readonly rules: readonly HoldingRule[];
  readonly impact: ApprovalImpact;
  /** The statement's facts with the stored code it reaches, for measuring its impact. */
  readonly statementFacts?: StatementFacts;
  readonly facts: Pick<AutoApproveFacts, 'kinds' | 'tables' | 'affectedRows' | 'sensitiveColumns'>;
}

/** The statement runs, under this approval. */
export interface Released {
  readonly run: true;
  readonly request: ApprovalRequest;
  readonly by: 'statement' | 'shape' | 'condition';
}

/** The statement does not run: the request was denied, withdrawn, expired, or is still pending. */
export interface NotReleased {
  readonly run: false;
  readonly request: ApprovalRequest;
}

export type HoldOutcome = Released | NotReleased;

/**
 * What becomes of a held statement, without waiting: released at once (an approval of this exact
 * statement waiting to be used, an approved shape, or a rule's condition), or a Pending request the
 * session tells its client about and then waits on with `waitForDecision`.
 */
export function hold(
  book: ApprovalBook,
  held: HeldStatement,
  at: Date,
): Released | { pending: ApprovalRequest } {
  const ready = book.claim(held.binding, held.fingerprint);
  if (ready) return { run: true, request: ready.request, by: ready.by };
  const { request } = book.open({
    binding: held.binding,
    fingerprint: held.fingerprint,
    shape: held.shape,
    requester: held.requester,
    rules: held.rules.map(({ autoApprove: _, ...rule }) => rule),
    impact: held.impact,
  });
  // Approved without a person only when each rule has a condition that holds.
  const met: string[] = [];
  for (const rule of held.rules) {
    const auto = autoApproval(rule.autoApprove, {
      ...held.facts,
      requester: held.requester,
      ...(rule.namespace !== undefined && { namespace: rule.namespace }),
      at,
      deniedSince: (since) => book.deniedSince(held.requester.subject, since),
    });
    if (!auto) break;
    met.push(auto.condition);
  }
  if (met.length === held.rules.length) {
    book.approveAutomatically(request.id, met.join(', '));
    const claimed = book.claim(held.binding, held.fingerprint);
    if (claimed) return { run: true, request: claimed.request, by: 'condition' };
  }
  return { pending: request };
}

/**
 * Waits until request `id` is decided, for at most `waitMs`, or until `signal` aborts (the client's
 * CancelRequest or the session's end), which withdraws it. An approval is claimed here, so the
 * statement that waited is the one that uses it. A request still Pending after `waitMs` stays open:
 * approved later, the identical statement may run once within its TTL.
 */
export function waitForDecision(
  book: ApprovalBook,
  held: HeldStatement,
  id: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<HoldOutcome> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: HoldOutcome) => {
      clearTimeout(timer);
      stop();
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    let settled = false;
    const settle = (): boolean => {
      // Claiming emits a change of its own, which must not settle this wait a second time.
      if (settled) return true;
      const request = book.get(id);
      if (!request) return false;
      if (request.phase === 'Approved') {
        settled = true;
        const claimed = book.claim(held.binding, held.fingerprint);
        // Another session waiting on the identical statement may have used the approval first.
        finish(
          claimed
            ? { run: true, request: claimed.request, by: claimed.by }
            : { run: false, request: book.get(id)! },
        );
        return true;
      }
      if (request.phase === 'Pending') return false;
      settled = true;
      finish({ run: false, request });
      return true;
    };
    const onAbort = () => finish({ run: false, request: book.withdraw(id) ?? book.get(id)! });
    const stop = book.onChange((change) => {
      if (change.request.id === id) settle();
    });
    if (settle()) return;
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = setTimeout(() => {
      // A request that expired meanwhile says so; one still open says it is pending.
      book.sweep();
      if (!settle()) finish({ run: false, request: book.get(id)! });
    }, waitMs);
    timer.unref?.();
  });
}

/** For the client while it waits (a PostgreSQL NoticeResponse): the request and how to decide it. */
export function heldNotice(request: ApprovalRequest): string {
  return (
    `statement held for approval: request ${request.id} (${describeRules(request.rules)}); ` +
    `waiting up to ${waitSecondsOf(request.rules)} s. An approver runs: ${request.decideCommand ?? `gatehouse approvals approve ${request.id}`} --reason "..."`
  );
}

/** For the client when the statement does not run (SQLSTATE 42501 on PostgreSQL, error 1142 on MySQL). */
export function notReleasedMessage(request: ApprovalRequest): string {
  const rule = describeRules(request.rules);
  switch (request.phase) {
    case 'Denied':
      return `request ${request.id} was denied by ${request.decision?.by ?? 'an approver'}: ${request.decision?.reason ?? ''} (${rule})`;
    case 'Withdrawn':
      return `request ${request.id} was withdrawn: the statement was cancelled while it waited for approval (${rule})`;
    case 'Executed':
      return `request ${request.id} was approved and used by another run of the identical statement; run it again to ask anew (${rule})`;
    case 'Expired':
      return `request ${request.id} expired before anyone decided it (${rule}); run the statement again to ask anew`;
    default:
      return (
        `request ${request.id} is still pending after ${waitSecondsOf(request.rules)} s (${rule}); once it is approved, ` +
        `run the identical statement again within ${ttlSecondsOf(request.rules)} s of the approval`
      );
  }
}
