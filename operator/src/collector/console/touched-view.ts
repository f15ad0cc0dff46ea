import { html } from 'hono/html';
import { parseTouchedFilter } from '../record-filter.ts';
import { queryTouched, TOUCHED_ROWS, type TouchedSummary } from '../touched-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { type Field, filledIn, filterForm, type Html, href, page, problemBox, time } from './layout.ts';

const FIELDS: readonly Field[] = [
  { name: 'subject', label: 'Identity', placeholder: 'local:demo' },
  { name: 'column', label: 'Column', placeholder: 'customers.ssn' },
  { name: 'seen', label: 'Seen', options: ['clear', 'masked'] },
  { name: 'table', label: 'Table', placeholder: 'customers' },
  { name: 'database', label: 'Database' },
  { name: 'purpose', label: 'Purpose' },
  { name: 'run_id', label: 'Run id' },
  { name: 'since', label: 'From', placeholder: '30d or 2026-12-01' },
  { name: 'until', label: 'To' },
];

/**
 * What data each identity's statements returned, per table and source column, in clear or masked
 * (the API's `GET /v1/touched`); with a column, the other way round: who read it, and how.
 */
export function registerTouchedView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/touched', async (c) => {
    const values = filledIn(c.req.query());
    const filter = parseTouchedFilter(values);
    const body =
      typeof filter === 'string'
        ? problemBox(filter)
        : summary(await queryTouched(deps.store.db, filter), values);
    const title = values['column']
      ? `Who read ${values['column']}${values['seen'] ? ` (${values['seen']})` : ''}`
      : 'Data touched';
    return c.html(
      page({
        title,
        session: c.get('session'),
        active: 'touched',
        body: html`${filterForm('touched', FIELDS, values)}${body}`,
      }),
    );
  });
}

function summary(result: TouchedSummary, values: Record<string, string>): Html {
  const period = { since: values['since'], until: values['until'] };
  return html`<h2>Columns</h2>
${
  result.columns.length === 0
    ? html`<p class="empty">No source columns recorded for this question. Columns are recorded for identities a MaskingPolicy covers (PostgreSQL); see the tables below.</p>`
    : html`<table class="touched-columns">
<thead><tr><th>identity</th><th>column</th><th>in clear</th><th>masked</th><th>last</th><th></th></tr></thead>
<tbody>
${result.columns.map(
  (r) => html`<tr>
<td>${r.subject ?? ''}</td><td><code>${r.column}</code></td>
<td class="num">${r.clear > 0 ? html`<span class="badge clear">${r.clear}</span>` : '0'}</td>
<td class="num">${r.masked > 0 ? html`<span class="badge masked">${r.masked}</span>` : '0'}</td>
<td>${time(r.lastTime)}</td>
<td><a href="${href('statements', { ...period, subject: r.subject ?? undefined, column: r.column, seen: values['seen'] })}">statements</a></td>
</tr>`,
)}
</tbody></table>`
}
${result.columns.length >= TOUCHED_ROWS ? html`<p class="notice">The first ${TOUCHED_ROWS} rows: narrow the question.</p>` : ''}
<h2>Tables</h2>
${
  result.tables.length === 0
    ? html`<p class="empty">No tables recorded for this question.</p>`
    : html`<table class="touched-tables">
<thead><tr><th>identity</th><th>table</th><th>statements</th><th>last</th><th></th></tr></thead>
<tbody>
${result.tables.map(
  (r) => html`<tr>
<td>${r.subject ?? ''}</td><td><code>${r.table}</code></td><td class="num">${r.statements}</td><td>${time(r.lastTime)}</td>
<td><a href="${href('statements', { ...period, subject: r.subject ?? undefined, table: r.table })}">statements</a></td>
</tr>`,
)}
</tbody></table>`
}
<p class="hint">In clear means the policy did not mask the column; the exemption that allowed it, if any, is on each statement. Columns used only in WHERE, joins or ordering are not output and are not listed.</p>`;
}
