import { type ApprovalView, queryApprovals } from '../approvals-queries.ts';
import type { ConsoleApp, ConsoleDeps, KubeApprovals } from './console-env.ts';
import type { ConsoleSession, Flash } from './console-sessions.ts';
import { apiTokenOf, decideInKubernetes } from './kube-decide.ts';
import { BASE } from './layout.ts';

const DECIDE_TIMEOUT_MS = 10_000;

/**
 * Approve or deny from the console, always as the signed-in person: forwarded to a standalone
 * proxy's approvals API (`console.approvals.url`) with their own credentials, or written on the
 * ApprovalRequest through the Kubernetes API server (`console.approvals.kubernetes`) with their own
 * token. The authority (the proxy, or the API server and the operator's webhook) checks who decides;
 * the console's approver role only offers the buttons.
 */
export function registerApprovalsDecide(app: ConsoleApp, deps: ConsoleDeps): void {
  app.post('/approvals/:id/decide', async (c) => {
    const session = c.get('session');
    const id = c.req.param('id');
    if (!session.user.roles.includes('approver'))
      return c.text(`${session.user.subject} is not an approver on this console`, 403);
    const form = await c.req.parseBody();
    const verdict = form['verdict'];
    const reason = typeof form['reason'] === 'string' ? form['reason'].trim() : '';
    if (verdict !== 'approve' && verdict !== 'deny') return c.text('verdict: must be approve or deny', 400);
    const flash = await decide(deps, session, id, { verdict, reason });
    if (flash) await deps.sessions.setFlash(session, flash);
    return c.redirect(`${BASE}/approvals`, 303);
  });
}

/** What the page says of a decision, after it was sent to whoever decides it; undefined: nothing. */
async function decide(
  deps: ConsoleDeps,
  session: ConsoleSession,
  id: string,
  { verdict, reason }: { readonly verdict: 'approve' | 'deny'; readonly reason: string },
): Promise<Flash | undefined> {
  const authority = deps.approvals;
  const kube = deps.kubeApprovals;
  const pending = (await queryApprovals(deps.store.db, { phase: 'Pending' })).items.find(
    (r) =>
      r.request === id && (r.source.cluster === authority?.cluster || r.source.cluster === kube?.cluster),
  );
  if (!pending) return { kind: 'problem', message: `${id} is not a pending request this console can decide` };
  if (reason === '')
    return { kind: 'problem', message: 'Say why, for the audit log: a decision needs a reason.' };
  if (kube && pending.source.cluster === kube.cluster)
    return decideAsPerson(kube, session, pending, { verdict, reason }, deps.logger);
  if (!authority) return undefined;
  if (!session.user.forward)
    return {
      kind: 'problem',
      message: `The proxy cannot be told who you are (signed in by ${session.user.method}); decide with gatehouse approvals.`,
    };
  let answer: Response;
  try {
    answer = await fetch(
      `${authority.url.replace(/\/$/, '')}/approvals/${encodeURIComponent(id)}/${verdict}`,
      {
        method: 'POST',
        headers: { authorization: session.user.forward, 'content-type': 'application/json' },
        body: JSON.stringify({ reason }),
        signal: AbortSignal.timeout(DECIDE_TIMEOUT_MS),
      },
    );
  } catch (error) {
    deps.logger.warn({ request: id, err: (error as Error).message }, 'the approvals API did not answer');
    return { kind: 'problem', message: `The proxy's approvals API at ${authority.url} did not answer.` };
  }
  const body = (await answer.json().catch(() => ({}))) as { phase?: string; message?: string };
  if (!answer.ok)
    return { kind: 'problem', message: `The proxy refused: ${body.message ?? `HTTP ${answer.status}`}` };
  deps.logger.info({ request: id, by: session.user.subject, verdict }, 'decided from the console');
  return {
    kind: 'notice',
    message: `${id} is ${body.phase ?? (verdict === 'approve' ? 'Approved' : 'Denied')}. Its record reaches this page with the proxy's next shipment.`,
  };
}

/** A decision written on the ApprovalRequest with the person's own token, and what the page says of it. */
async function decideAsPerson(
  kube: KubeApprovals,
  session: ConsoleSession,
  pending: ApprovalView,
  decision: { readonly verdict: 'approve' | 'deny'; readonly reason: string },
  logger: ConsoleDeps['logger'],
): Promise<Flash> {
  const id = pending.request;
  const token = apiTokenOf(session.user, kube);
  if (token === undefined)
    return {
      kind: 'problem',
      message: `The Kubernetes API server cannot be told who you are (signed in by ${session.user.method}); decide with kubectl gatehouse approve ${id} -n ${pending.source.namespace}.`,
    };
  const outcome = await decideInKubernetes(
    kube,
    token,
    { namespace: pending.source.namespace, name: id },
    decision,
  );
  if ('failed' in outcome) {
    logger.warn({ request: id, err: outcome.failed }, 'the Kubernetes API server failed a decision');
    return {
      kind: 'problem',
      message: `The Kubernetes API server at ${kube.server} failed: ${outcome.failed}`,
    };
  }
  if ('refused' in outcome) {
    logger.info(
      { request: id, by: session.user.subject, verdict: decision.verdict },
      'decision refused by Kubernetes',
    );
    return { kind: 'problem', message: `Kubernetes refused: ${outcome.refused}` };
  }
  logger.info(
    { request: id, by: outcome.decided.by, verdict: decision.verdict },
    'decided from the console, in Kubernetes',
  );
  return {
    kind: 'notice',
    message: `${id} is ${outcome.decided.phase}, decided by ${outcome.decided.by}. Its record reaches this page with the sidecar's next shipment.`,
  };
}
