import { html } from 'hono/html';
import type { ConsoleApp, ConsoleDeps } from './console-env.ts';
import { page, time } from './layout.ts';

/** Each source's chain status and last verified checkpoint: the API's `GET /v1/sources`. */
export function registerIntegrityView(app: ConsoleApp, deps: ConsoleDeps): void {
  app.get('/integrity', async (c) => {
    const sources = await deps.store.sources();
    const damaged = sources.filter((s) => s.status !== 'ok').length;
    const body =
      sources.length === 0
        ? html`<p class="empty">No proxy has shipped records yet.</p>`
        : html`<p class="${damaged > 0 ? 'problem' : 'notice'}">${
            damaged > 0
              ? `${damaged} of ${sources.length} sources have a damaged chain: records after the damage are kept and marked unverified.`
              : `All ${sources.length} sources verify: every record's hash chain and checkpoint signature checked on arrival.`
          }</p>
<table class="sources">
<thead><tr><th>cluster</th><th>namespace</th><th>pod</th><th>database</th><th>status</th><th>reason</th><th>last seq</th><th>last verified checkpoint</th><th>records</th><th>last seen</th><th>key</th></tr></thead>
<tbody>
${sources.map(
  (s) => html`<tr>
<td>${s.cluster}</td><td>${s.namespace}</td><td>${s.pod}</td><td>${s.database}</td>
<td><span class="badge ${s.status === 'ok' ? 'ok' : 'broken'}">${s.status}</span></td><td>${s.reason ?? ''}</td>
<td class="num">${s.lastSeq}</td>
<td>${s.checkpointSeq === null ? 'none yet' : html`seq ${s.checkpointSeq}, ${time(s.checkpointTime)}`}</td>
<td class="num">${s.records}</td><td>${time(s.lastSeen)}</td><td><code>${s.logKeyId.slice(0, 16)}</code></td>
</tr>`,
)}
</tbody></table>`;
    return c.html(page({ title: 'Integrity', session: c.get('session'), active: 'integrity', body }));
  });
}
