import type { Logger } from 'pino';
import type { ApprovalBook } from './approval-book.ts';
import type { ApprovalDecision, ApprovalRequest } from './approval-request.ts';
import type { RestoredApprovals } from './approval-restore.ts';
import { decisionRefusal } from './decision-refusal.ts';
import type { OperatorClient } from './operator-client.ts';
import type { RestoreAnswer, RestoredRequestView } from './operator-protocol.ts';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * What a sidecar that starts again takes back from the operator (docs/approvals.md, "After a
 * restart"), as a standalone proxy takes it from its audit log (approval-restore.ts), and kept
 * consistent with it: shapes approved for a period that has not ended and approved access requests
 * still in force are put back; approvals of an exact text are not (the session that would have run
 * the text ended with the process), nor is anything Pending. The operator ends the earlier process's
 * Pending requests (Withdrawn) and unused exact-text approvals (Expired); they are recorded here too.
 */
export function restoredFromOperator(answer: RestoreAnswer, now: number): RestoredApprovals {
  const requests: ApprovalRequest[] = [];
  const shapes: RestoredApprovals['shapes'][number][] = [];
  const skipped: { request: string; why: string }[] = [];
  for (const view of answer.standing) {
    const request = requestOf(view);
    // The operator's webhook admitted the decider; the sidecar's own rules must admit them too.
    const decision = request.decision;
    const refused =
      view.decision?.verdict !== 'approve' || !decision
        ? { message: 'it carries no approval stamped by the operator' }
        : decisionRefusal(
            { ...request, phase: 'Pending' },
            { subject: decision.by, groups: decision.groups },
          );
    if (refused) {
      skipped.push({ request: request.id, why: refused.message });
      continue;
    }
    const shapeUntil = request.decision?.shapeUntil;
    if (shapeUntil !== undefined && shapeUntil > now && request.fingerprint !== null)
      shapes.push({
        subject: request.binding.subject,
        database: request.binding.database,
        fingerprint: request.fingerprint,
        until: shapeUntil,
        requestId: request.id,
      });
    if (request.access !== undefined) {
      if (request.phase === 'Approved' && request.expiresAt > now) requests.push(request);
    } else if (request.phase === 'Approved')
      // Another pod's unused approval of an exact text: never this process's to run, nor to end.
      requests.push({ ...request, phase: 'Expired' });
    else requests.push(request);
  }
  const ended = answer.ended.map((view) => ({
    event: view.phase === 'Withdrawn' ? ('withdrawn' as const) : ('expired' as const),
    request: requestOf(view),
  }));
  const denials = answer.denials
    .map((d) => ({ subject: d.subject, at: Date.parse(d.at) }))
    .filter((d) => !Number.isNaN(d.at));
  return { requests, ended, shapes, grants: [], denials, skipped };
}

/** The book's request for an ApprovalRequest the operator kept. */
function requestOf(view: RestoredRequestView): ApprovalRequest {
  const { spec } = view;
  const access = spec.access && {
    columns: [...spec.access.columns],
    forSeconds: spec.access.forSeconds,
    ...(spec.access.issuer !== undefined && { issuer: spec.access.issuer }),
  };
  return {
    id: view.id,
    binding: {
      subject: spec.identity.subject,
      database: spec.database,
      statement: spec.statement,
      parametersHash: spec.parametersHash,
    },
    fingerprint: spec.fingerprint ?? null,
    shape: spec.shape ?? null,
    requester: { subject: spec.identity.subject, groups: [...spec.identity.groups] },
    rules: spec.rules.map((rule) => ({
      ...rule,
      ...(access && { kind: 'MaskingPolicy' as const }),
      approvers: rule.approvers.map((a) => ({ ...a })),
    })),
    impact: { ...spec.impact },
    requestedAt: Date.parse(spec.requestedAt),
    expiresAt: Date.parse(view.until ?? spec.expiresAt),
    phase: view.phase,
    ...(decisionOf(view) && { decision: decisionOf(view) }),
    ...(access && { access }),
  };
}

function decisionOf(view: RestoredRequestView): ApprovalDecision | undefined {
  const decision = view.decision;
  if (!decision?.by || !decision.at) return undefined;
  const at = Date.parse(decision.at);
  return {
    by: decision.by,
    groups: [...(decision.groups ?? [])],
    reason: decision.reason,
    at,
    ...(decision.condition !== undefined && { condition: decision.condition }),
    ...(decision.shapeForSeconds !== undefined && { shapeUntil: at + decision.shapeForSeconds * 1000 }),
  };
}

/**
 * Asks the operator until it answers (with backoff; the proxy serves meanwhile, and nothing earlier is
 * in force until it does: fail closed), then puts what stands into the book. Each call says which
 * requests this process made already, so that a retry never ends its own.
 */
export async function restoreFromOperator(
  book: ApprovalBook,
  client: OperatorClient,
  database: string,
  logger: Pick<Logger, 'info' | 'warn'>,
  signal: AbortSignal,
  now: () => number = Date.now,
): Promise<void> {
  for (let delay = RETRY_MIN_MS; !signal.aborted; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
    try {
      const keep = book.list().map((r) => r.id);
      const answer = await client.restore({ database, keep }, signal);
      // A retry after sessions began: this process's own requests are its book's, as they are.
      const own = new Set(keep);
      const restored = restoredFromOperator(
        {
          ...answer,
          standing: answer.standing.filter((v) => !own.has(v.id)),
          ended: answer.ended.filter((v) => !own.has(v.id)),
        },
        now(),
      );
      book.restore(restored);
      for (const { request, why } of restored.skipped)
        logger.warn({ request, problem: why }, 'approval not restored from the operator');
      logger.info(
        {
          shapes: restored.shapes.length,
          accessRequests: restored.requests.filter((r) => r.access).length,
          ended: restored.ended.length,
          denials: restored.denials.length,
        },
        'approvals restored from the operator',
      );
      return;
    } catch (error) {
      if (signal.aborted) return;
      logger.warn(
        { err: String(error), retryInMs: delay },
        'approvals not yet restored from the operator: earlier shape approvals and access requests are not in force',
      );
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
  }
}
