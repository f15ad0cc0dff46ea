import type { PackSections } from './pack-sections.ts';
import type { SectionHeader } from './section.ts';

/**
 * index.html: the pack as a person reads it. One file, inline CSS, no script and nothing fetched, so
 * it opens the same offline and years later. Statement texts, subjects and reasons are chosen by
 * whoever connected: every value goes through `escapeHtml`, none is ever markup.
 */
export function packHtml(sections: PackSections, builtAt: string): string {
  const { access, privileged, refusals, exemptions, masking, chains, controls } = sections;
  const period = access.period;
  const body = [
    `<h1>Gatehouse evidence pack</h1>`,
    `<p class="meta">Period <b>${e(period.from)}</b> to <b>${e(period.to)}</b> (end excluded). Built ${e(builtAt)}. Each section is also a JSON file beside this page; manifest.json lists every file's SHA-256 and is signed (<code>gatehouse evidence verify DIR</code>).</p>`,
    summary(sections),
    section(
      chains,
      ['source', 'kind', 'ok', 'summary', 'records', 'keys'],
      chains.rows.map((r) => [
        r.source,
        r.kind,
        r.ok ? 'verified' : 'FAILED',
        r.summary,
        String(r.records),
        r.keys.map((k) => `${k.keyId} (${k.trust}${k.signedBy ? ` by ${k.signedBy}` : ''})`).join(', '),
      ]),
    ),
    section(
      access,
      ['time', 'source', 'event', 'changedBy', 'after', 'summary'],
      [
        ...access.changes.map((r) => [
          when(r),
          r.source,
          r.event ?? '',
          r.changedBy ?? 'not recorded',
          r.after ?? 'none',
          r.summary ?? '',
        ]),
      ],
      [
        sub(
          'Policy in force at the end of the period',
          ['source', 'since', 'changedBy', 'digest'],
          access.inForce.map((r) => [r.source, when(r), r.changedBy ?? 'not recorded', r.after ?? 'none']),
        ),
        access.bundle
          ? sub(
              `Grants of ${access.bundle.file} (digest ${access.bundle.digest ?? 'none'}; in force at: ${access.bundle.inForceAt.join(', ') || 'no source'})`,
              ['DatabaseAccess', 'subjects', 'classes', 'guardrails', 'masking'],
              access.bundle.grants.map((g) => [
                g.access,
                g.subjects.join(', '),
                g.classes.join(', '),
                g.guardrails.map((x) => `${x.name} [${x.rules.join('; ')}]`).join(', '),
                g.maskingPolicies
                  .map((m) => `${m.name} (${m.rules} rules${m.autoDetect ? ', autoDetect' : ''})`)
                  .join(', '),
              ]),
            )
          : '<p class="note">No bundle was given (--policy): the grants themselves are not in this pack, only the digests of the policy in force.</p>',
      ],
    ),
    section(
      privileged,
      ['time', 'subject', 'database', 'statement', 'class', 'outcome', 'approval'],
      privileged.rows.map((r) => [
        when(r),
        r.subject ?? '',
        r.database ?? '',
        r.statement ?? '(not parsed)',
        r.privilege ?? 'approved',
        r.outcome ?? '',
        r.approval
          ? `${r.approval.request}: ${r.approval.decision ?? 'decision not in period'}${r.approval.by ? ` by ${r.approval.by}` : ''}${r.approval.reason ? ` (${r.approval.reason})` : ''}`
          : 'none',
      ]),
    ),
    section(
      refusals,
      ['time', 'kind', 'subject', 'database', 'statement', 'sqlstate', 'reason'],
      refusals.rows.map((r) => [
        when(r),
        r.kind,
        r.subject ?? '',
        r.database ?? '',
        r.statement ?? '',
        r.sqlstate ?? '',
        r.reason ?? '',
      ]),
    ),
    section(
      exemptions,
      ['request', 'requestedBy', 'columns', 'decision', 'reason', 'uses', 'sawClear'],
      exemptions.rows.map((r) => [
        r.request,
        r.requestedBy ?? '',
        r.columns.join(', '),
        r.decision ? `${r.decision}${r.decidedBy ? ` by ${r.decidedBy}` : ''}` : 'not recorded',
        r.reason ?? '',
        String(r.uses.length),
        r.sawClear.join(', '),
      ]),
    ),
    section(
      masking,
      ['column', 'methods', 'masked', 'clear', 'identities'],
      masking.rows.map((r) => [
        r.column,
        r.methods.join(', '),
        String(r.statementsMasked),
        String(r.statementsClear),
        r.identities.map((i) => `${i.subject}: ${i.masked} masked, ${i.clear} clear`).join('; '),
      ]),
      [
        masking.clearOnlyColumns.length > 0
          ? `<p class="note">Returned only in clear: ${e(masking.clearOnlyColumns.join(', '))}</p>`
          : '',
      ],
    ),
    section(
      controls,
      ['framework', 'control', 'evidence', 'exceptions'],
      controls.rows.map((r) => [
        r.framework,
        `${r.id} ${r.title}`,
        r.evidence.map((x) => `${x.file} ${x.count}=${x.rows}: ${x.claim}`).join('\n'),
        r.exceptions.join('\n'),
      ]),
    ),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Gatehouse evidence pack ${e(period.from)} to ${e(period.to)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1400px}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
h3{font-size:1rem}.meta,.note,.shows,.not{color:#444}.not{font-style:italic}
.count{font-weight:normal;color:#555;font-size:.95rem;margin-left:.5rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{border:1px solid #d0d4da;padding:.25rem .45rem;text-align:left;vertical-align:top;white-space:pre-wrap;word-break:break-word}
th{background:#f1f3f6;white-space:nowrap}td.bad{color:#a40000;font-weight:bold}.summary td:first-child{font-weight:bold}`;

/** A row's time, and a warning when its record is past a break in its source's chain. */
function when(row: { time: string; verified: boolean }): string {
  return row.verified ? row.time : `${row.time} UNVERIFIED (after a break in its chain)`;
}

/** The five characters that can end a text or an attribute value, as entities. */
export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}
const e = escapeHtml;

function summary(sections: PackSections): string {
  const rows = Object.values(sections).map((s: SectionHeader) => [
    s.title,
    `${s.section}.json`,
    Object.entries(s.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  ]);
  return `<table class="summary" id="summary"><thead><tr><th>section</th><th>file</th><th>counts</th></tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${e(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function section(
  header: SectionHeader,
  columns: readonly string[],
  rows: readonly string[][],
  extra: readonly string[] = [],
): string {
  // Access has no one list: its count is of changes, and says so.
  const count = header.counts['rows'] ?? header.counts['changes'] ?? rows.length;
  const noun = 'rows' in header.counts ? 'row' : 'change';
  return `<section id="${e(header.section)}">
<h2>${e(header.title)}<span class="count" data-count="${count}">${count} ${count === 1 ? noun : `${noun}s`}</span></h2>
<p class="shows">${e(header.shows)}</p>
<p class="not">Does not show: ${e(header.doesNotShow)}</p>
${extra.join('\n')}
${rows.length === 0 ? '<p class="note empty">No rows in the period.</p>' : table(columns, rows)}
</section>`;
}

function sub(title: string, columns: readonly string[], rows: readonly string[][]): string {
  return `<h3>${e(title)}</h3>\n${rows.length === 0 ? '<p class="note empty">None.</p>' : table(columns, rows)}`;
}

function table(columns: readonly string[], rows: readonly string[][]): string {
  const head = `<tr>${columns.map((c) => `<th>${e(c)}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => `<td${cell === 'FAILED' ? ' class="bad"' : ''}>${e(cell)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}
