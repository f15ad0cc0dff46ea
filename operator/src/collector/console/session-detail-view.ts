import { html } from 'hono/html';
import { MAX_LIMIT, querySessions, queryStatements } from '../store-queries.ts';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { href, page, time } from './layout.ts';
import { duration } from './sessions-view.ts';
import { statementsTable } from './statements-table.ts';

/** One session: who, from where, how it ended, and its statements (the newest thousand). */
export function registerSessionDetailView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/sessions/:id', async (c) => {
    const id = c.req.param('id');
    const [sessions, statements] = await Promise.all([
      querySessions(deps.store.db, { session: id, limit: 1 }),
      queryStatements(deps.store.db, { session: id, limit: MAX_LIMIT }),
    ]);
    const s = sessions.items[0];
    if (!s && statements.items.length === 0) {
      c.status(404);
      return c.html(
        page({
          title: 'No such session',
          session: c.get('session'),
          active: 'sessions',
          body: html`<p class="empty">The store holds no session ${id}.</p>`,
        }),
      );
    }
    const facts: [string, unknown][] = s
      ? [
          ['subject', s.subject],
          ['groups', s.groups.join(', ')],
          ['method', s.method],
          ['namespace', s.namespace],
          ['service account', s.serviceAccount],
          ['pod', s.pod],
          ['from', s.clientAddress],
          ['database', s.database],
          ['protocol', s.protocol],
          ['purpose', s.purpose],
          ['run id', s.runId],
          ['source', `${s.source.cluster}/${s.source.namespace}/${s.source.pod}`],
        ]
      : [];
    const body = html`${
      s
        ? html`<dl class="facts">
${facts
  .filter(([, value]) => value !== null && value !== '')
  .map(([name, value]) => html`<dt>${name}</dt><dd>${String(value)}</dd>`)}
<dt>started</dt><dd>${time(s.started)}</dd>
<dt>ended</dt><dd>${s.ended ? html`${time(s.ended)} (${s.endReason ?? 'ended'}, ${duration(s.durationMs)}, ${s.statements ?? 0} statement${s.statements === 1 ? '' : 's'})` : 'still open, or its end is not in the store yet'}</dd>
</dl>`
        : html`<p class="notice">The session's start is not in the store (older than the retention?); its statements are.</p>`
    }
<h2>Statements</h2>
${statementsTable(statements.items, { session: false })}
${statements.next ? html`<p class="more"><a href="${href('statements', { session: id })}">More in the statement search</a></p>` : ''}`;
    return c.html(page({ title: `Session ${id}`, session: c.get('session'), active: 'sessions', body }));
  });
}
