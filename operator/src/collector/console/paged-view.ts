import { html } from 'hono/html';
import { parseRecordFilter } from '../record-filter.ts';
import type { SqlDriver } from '../store-driver.ts';
import { CursorError, type Page, type RecordFilter } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { type Field, filledIn, filterForm, type Html, href, page, problemBox } from './layout.ts';

/**
 * A console page over one of the API's paged questions: its filter form, parsed as the API parses it
 * (so the page asks the store what the API would), the table of one page, and a link to the older one.
 */
export function registerPagedView<T>(
  app: ConsoleApp,
  deps: ConsoleDeps,
  view: {
    readonly path: 'sessions' | 'statements';
    readonly title: string;
    readonly fields: readonly Field[];
    readonly query: (db: SqlDriver, filter: RecordFilter) => Promise<Page<T>>;
    readonly table: (items: readonly T[]) => Html;
  },
): void {
  app.get(`/${view.path}`, async (c) => {
    const values = filledIn(c.req.query());
    const filter = parseRecordFilter(values);
    let body: Html;
    if (typeof filter === 'string') body = problemBox(filter);
    else {
      try {
        const result = await view.query(deps.store.db, filter);
        body = html`${view.table(result.items)}
${result.next ? html`<p class="more"><a rel="next" href="${href(view.path, { ...values, cursor: result.next })}">Older ${view.path}</a></p>` : ''}`;
      } catch (error) {
        if (!(error instanceof CursorError)) throw error;
        body = problemBox(error.message);
      }
    }
    return c.html(
      page({
        title: view.title,
        session: c.get('session'),
        active: view.path,
        body: html`${filterForm(view.path, view.fields, values)}${body}`,
      }),
    );
  });
}
