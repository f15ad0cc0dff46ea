import { html } from 'hono/html';
import type { StatementView } from '../store-queries.ts';
import { clip, type Html, href, time } from './layout.ts';

/** Statement records as a table: the statements view's and a session's. */
export function statementsTable(items: readonly StatementView[], options: { session?: boolean } = {}): Html {
  if (items.length === 0) return html`<p class="empty">No statements match.</p>`;
  return html`<table class="statements">
<thead><tr><th>time</th><th>subject</th><th>database</th><th>outcome</th><th>rows</th><th>ms</th><th>statement</th><th>data touched</th><th>reason</th>${options.session === false ? '' : html`<th>session</th>`}</tr></thead>
<tbody>
${items.map(
  (s) => html`<tr class="outcome-${s.outcome ?? 'unknown'}">
<td>${time(s.time)}</td><td>${s.subject ?? ''}</td><td>${s.database ?? ''}</td>
<td><span class="badge ${s.outcome ?? ''}">${s.outcome ?? ''}</span>${s.verified ? '' : html` <span class="badge broken" title="recorded after damage to its source's chain">unverified</span>`}</td>
<td class="num">${s.rows ?? ''}</td><td class="num">${s.durationMs ?? ''}</td>
<td class="sql">${clip(s.statement)}</td>
<td>${touched(s)}</td>
<td>${s.reason ?? ''}${s.exemptions.length > 0 ? html`<br><small>exemptions: ${s.exemptions.join(', ')}</small>` : ''}</td>
${options.session === false ? '' : html`<td>${s.session ? html`<a href="${href(`sessions/${encodeURIComponent(s.session)}`)}">${s.session.slice(0, 12)}</a>` : ''}</td>`}
</tr>`,
)}
</tbody>
</table>`;
}

/** Each source column with how it was seen; the tables when no column is known. */
function touched(s: StatementView): Html | string {
  const columns = Object.entries(s.columns);
  if (columns.length > 0)
    return html`<ul class="touched">${columns.map(
      ([column, how]) =>
        // `unknown` (table.*) columns were seen in clear too, which ones not known: badged as clear.
        html`<li><code>${column}</code> <span class="badge ${how === 'clear' || how === 'unknown' ? 'clear' : 'masked'}">${how}</span></li>`,
    )}</ul>`;
  const tables = [...s.tablesRead, ...s.tablesWritten];
  return tables.length > 0 ? html`<small>${tables.join(', ')}</small>` : '';
}
