import { html } from 'hono/html';
import { parseRecordFilter } from '../record-filter.ts';
import { CursorError, queryStatements } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { type Field, filledIn, filterForm, type Html, href, page, problemBox } from './layout.ts';
import { statementsTable } from './statements-table.ts';

const FIELDS: readonly Field[] = [
  { name: 'text', label: 'Text', placeholder: 'DROP TABLE' },
  { name: 'outcome', label: 'Outcome', options: ['ok', 'refused', 'error'] },
  { name: 'subject', label: 'Identity', placeholder: 'local:demo' },
  { name: 'database', label: 'Database' },
  { name: 'table', label: 'Table', placeholder: 'customers' },
  { name: 'column', label: 'Column', placeholder: 'customers.ssn' },
  { name: 'seen', label: 'Seen', options: ['clear', 'masked'] },
  { name: 'purpose', label: 'Purpose' },
  { name: 'run_id', label: 'Run id' },
  { name: 'since', label: 'From', placeholder: '1h, 7d or 2026-12-01' },
  { name: 'until', label: 'To' },
];

/** Statement search: the API's `GET /v1/statements`, with the same filters and the same query. */
export function registerStatementsView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/statements', async (c) => {
    const values = filledIn(c.req.query());
    const filter = parseRecordFilter(values);
    let body: Html;
    if (typeof filter === 'string') body = problemBox(filter);
    else {
      try {
        const result = await queryStatements(deps.store.db, filter);
        body = html`${statementsTable(result.items)}
${result.next ? html`<p class="more"><a rel="next" href="${href('statements', { ...values, cursor: result.next })}">Older statements</a></p>` : ''}`;
      } catch (error) {
        if (!(error instanceof CursorError)) throw error;
        body = problemBox(error.message);
      }
    }
    return c.html(
      page({
        title: 'Statements',
        session: c.get('session'),
        active: 'statements',
        body: html`${filterForm('statements', FIELDS, values)}${body}`,
      }),
    );
  });
}
