import { html } from 'hono/html';
import { parseRecordFilter } from '../record-filter.ts';
import { CursorError, querySessions, type SessionView } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { type Field, filledIn, filterForm, type Html, href, page, problemBox, time } from './layout.ts';

const FIELDS: readonly Field[] = [
  { name: 'subject', label: 'Identity', placeholder: 'local:demo' },
  { name: 'database', label: 'Database' },
  { name: 'purpose', label: 'Purpose' },
  { name: 'run_id', label: 'Run id' },
  { name: 'since', label: 'From', placeholder: '1h, 7d or 2026-12-01' },
  { name: 'until', label: 'To' },
];

/** Who connected, from where, to what, for how long: the API's `GET /v1/sessions`. */
export function registerSessionsView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/sessions', async (c) => {
    const values = filledIn(c.req.query());
    const filter = parseRecordFilter(values);
    let body: Html;
    if (typeof filter === 'string') body = problemBox(filter);
    else {
      try {
        const result = await querySessions(deps.store.db, filter);
        body = html`${sessionsTable(result.items)}
${result.next ? html`<p class="more"><a rel="next" href="${href('sessions', { ...values, cursor: result.next })}">Older sessions</a></p>` : ''}`;
      } catch (error) {
        if (!(error instanceof CursorError)) throw error;
        body = problemBox(error.message);
      }
    }
    return c.html(
      page({
        title: 'Sessions',
        session: c.get('session'),
        active: 'sessions',
        body: html`${filterForm('sessions', FIELDS, values)}${body}`,
      }),
    );
  });
}

function sessionsTable(items: readonly SessionView[]): Html {
  if (items.length === 0) return html`<p class="empty">No sessions match.</p>`;
  return html`<table class="sessions">
<thead><tr><th>started</th><th>subject</th><th>groups</th><th>method</th><th>from</th><th>database</th><th>purpose / run</th><th>where</th><th>statements</th><th>duration</th><th>ended</th></tr></thead>
<tbody>
${items.map(
  (s) => html`<tr>
<td><a href="${href(`sessions/${encodeURIComponent(s.session)}`)}">${time(s.started)}</a></td>
<td>${s.subject ?? ''}</td><td>${s.groups.join(', ')}</td><td>${s.method ?? ''}</td>
<td>${s.clientAddress ?? ''}</td><td>${s.database ?? ''}</td><td>${[s.purpose, s.runId].filter(Boolean).join(' / ')}</td>
<td><small>${s.source.cluster}/${s.source.namespace}/${s.source.pod}</small></td>
<td class="num">${s.statements ?? ''}</td><td class="num">${duration(s.durationMs)}</td>
<td>${s.ended ? (s.endReason ?? 'ended') : html`<span class="badge open">open</span>`}</td>
</tr>`,
)}
</tbody>
</table>`;
}

export function duration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
