import { html } from 'hono/html';
import { querySessions, type SessionView } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { type Field, type Html, href, time } from './layout.ts';
import { registerPagedView } from './paged-view.ts';

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
  registerPagedView(app, deps, {
    path: 'sessions',
    title: 'Sessions',
    fields: FIELDS,
    query: querySessions,
    table: sessionsTable,
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
