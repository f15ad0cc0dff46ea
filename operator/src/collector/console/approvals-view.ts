import { html } from 'hono/html';
import { type ApprovalView, queryApprovals } from '../approvals-queries.ts';
import { parseApprovalFilter } from '../record-filter.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import type { ConsoleSession } from './console-sessions.ts';
import { apiTokenOf } from './kube-decide.ts';
import {
  BASE,
  csrfField,
  type Field,
  filledIn,
  filterForm,
  type Html,
  page,
  problemBox,
  time,
} from './layout.ts';

const FIELDS: readonly Field[] = [
  {
    name: 'phase',
    label: 'Phase',
    options: ['Pending', 'Approved', 'Denied', 'Expired', 'Executed', 'Withdrawn'],
  },
  { name: 'subject', label: 'Requester', placeholder: 'local:admin' },
  { name: 'database', label: 'Database' },
  { name: 'since', label: 'From', placeholder: '1d (the default)' },
  { name: 'until', label: 'To' },
];

/**
 * The approval requests as the proxies' records tell them (the API's `GET /v1/approvals`), Pending
 * first, in Kubernetes too: the records are the audit every viewer reads, in every namespace, whereas
 * ApprovalRequests would need each viewer's RBAC in each namespace. The collector is not the approval
 * authority: a decision goes, as the signed-in approver, to the proxy's own approvals API
 * (`console.approvals.url`) or to the Kubernetes API server (`console.approvals.kubernetes`), which
 * check that they may decide; elsewhere the page says how to decide.
 */
export function registerApprovalsView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/approvals', async (c) => {
    const values = filledIn(c.req.query());
    // The queue by default; the form's "any" (an empty phase) asks for every phase.
    if (c.req.query('phase') === undefined) values['phase'] = 'Pending';
    const filter = parseApprovalFilter(values);
    const session = c.get('session');
    const flash = await deps.sessions.takeFlash(session);
    const body =
      typeof filter === 'string'
        ? problemBox(filter)
        : approvalsList((await queryApprovals(deps.store.db, filter)).items, session, deps);
    return c.html(
      page({
        title: 'Approvals',
        session,
        active: 'approvals',
        body: html`${flash ? html`<p class="${flash.kind}" role="status">${flash.message}</p>` : ''}
${filterForm('approvals', FIELDS, values)}${body}`,
      }),
    );
  });
}

function approvalsList(items: readonly ApprovalView[], session: ConsoleSession, deps: ConsoleDeps): Html {
  if (items.length === 0) return html`<p class="empty">No approval requests match.</p>`;
  const approver = session.user.roles.includes('approver');
  return html`${items.map(
    (r) => html`<section class="approval" id="${r.request}">
<h2><code>${r.request}</code> <span class="badge phase-${r.phase}">${r.phase}</span></h2>
<dl class="facts">
<dt>requester</dt><dd>${r.requester}</dd>
<dt>database</dt><dd>${r.database ?? ''}</dd>
<dt>statement</dt><dd><code class="sql">${r.statement ?? ''}</code></dd>
${r.columns.length > 0 ? html`<dt>columns in clear</dt><dd>${r.columns.join(', ')}${r.forSeconds ? ` for ${r.forSeconds} s` : ''}</dd>` : ''}
<dt>rules</dt><dd>${r.rules.join(', ')}</dd>
<dt>source</dt><dd>${r.source.cluster}/${r.source.namespace}/${r.source.pod}</dd>
<dt>requested</dt><dd>${time(r.requestedAt)}</dd>
${r.decision ? html`<dt>decided by</dt><dd>${r.decision.by}${r.decision.reason ? html`: ${r.decision.reason}` : ''} (${time(r.updatedAt)})</dd>` : ''}
</dl>
${r.phase === 'Pending' ? decide(r, session, approver, deps) : ''}
</section>`,
  )}`;
}

function decide(r: ApprovalView, session: ConsoleSession, approver: boolean, deps: ConsoleDeps): Html {
  if (!approver)
    return html`<p class="hint">Waiting for an approver. You may view the queue; signing in as an approver lets you decide.</p>`;
  const kubectl = html`<code>kubectl gatehouse approve ${r.request} -n ${r.source.namespace} --reason "…"</code>`;
  const kube = deps.kubeApprovals;
  if (kube && r.source.cluster === kube.cluster) {
    if (apiTokenOf(session.user, kube) !== undefined) return decideForm(r, session);
    return html`<p class="hint">The Kubernetes API server cannot be told who you are (signed in by ${session.user.method}${session.user.method === 'oidc' ? ', and this console does not forward ID tokens to it' : ''}): decide as yourself with ${kubectl} (or <code>deny</code>), or sign in with a Kubernetes token.</p>`;
  }
  if (deps.approvals && r.source.cluster === deps.approvals.cluster) return decideForm(r, session);
  return html`<p class="hint">This collector cannot decide for ${r.source.cluster}/${r.source.pod}: decide where the request waits.
A standalone proxy: <code>gatehouse approvals approve ${r.request} --reason "…" --server http://PROXY-ADMIN</code> (or <code>deny</code>).
In Kubernetes: ${kubectl}.</p>`;
}

function decideForm(r: ApprovalView, session: ConsoleSession): Html {
  return html`<form class="decide" method="post" action="${BASE}/approvals/${encodeURIComponent(r.request)}/decide">
${csrfField(session)}
<label>Reason (for the audit log)<textarea name="reason" required maxlength="1000"></textarea></label>
<button type="submit" name="verdict" value="approve" class="approve">Approve</button>
<button type="submit" name="verdict" value="deny" class="deny">Deny</button>
</form>`;
}
