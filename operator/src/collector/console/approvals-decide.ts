import { queryApprovals } from '../approvals-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { BASE } from './layout.ts';

const DECIDE_TIMEOUT_MS = 10_000;

/**
 * Approve or deny from the console: forwarded to the proxy's approvals API (`console.approvals.url`)
 * with the approver's own credentials, so the proxy (the authority) checks who decides, as it does
 * for `gatehouse approvals`. The console's approver role only offers the buttons.
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
    const back = c.redirect(`${BASE}/approvals`, 303);
    if (verdict !== 'approve' && verdict !== 'deny') return c.text('verdict: must be approve or deny', 400);
    const authority = deps.approvals;
    const pending = (await queryApprovals(deps.store.db, { phase: 'Pending' })).items.find(
      (r) => r.request === id && authority !== undefined && r.source.cluster === authority.cluster,
    );
    if (!authority || !pending) {
      session.flash = { kind: 'problem', message: `${id} is not a pending request this console can decide` };
      return back;
    }
    if (reason === '') {
      session.flash = { kind: 'problem', message: 'Say why, for the audit log: a decision needs a reason.' };
      return back;
    }
    if (!session.user.forward) {
      session.flash = {
        kind: 'problem',
        message: `The proxy cannot be told who you are (signed in by ${session.user.method}); decide with gatehouse approvals.`,
      };
      return back;
    }
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
      session.flash = {
        kind: 'problem',
        message: `The proxy's approvals API at ${authority.url} did not answer.`,
      };
      return back;
    }
    const body = (await answer.json().catch(() => ({}))) as { phase?: string; message?: string };
    if (!answer.ok) {
      session.flash = {
        kind: 'problem',
        message: `The proxy refused: ${body.message ?? `HTTP ${answer.status}`}`,
      };
      return back;
    }
    deps.logger.info({ request: id, by: session.user.subject, verdict }, 'decided from the console');
    session.flash = {
      kind: 'notice',
      message: `${id} is ${body.phase ?? (verdict === 'approve' ? 'Approved' : 'Denied')}. Its record reaches this page with the proxy's next shipment.`,
    };
    return back;
  });
}
