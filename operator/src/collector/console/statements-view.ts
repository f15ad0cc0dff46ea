import { queryStatements } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import type { Field } from './layout.ts';
import { registerPagedView } from './paged-view.ts';
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
  registerPagedView(app, deps, {
    path: 'statements',
    title: 'Statements',
    fields: FIELDS,
    query: queryStatements,
    table: statementsTable,
  });
}
