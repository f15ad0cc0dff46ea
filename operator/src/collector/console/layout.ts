import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ConsoleSession } from './console-sessions.ts';

/** What every page is rendered from. Every value goes through `html`, which escapes it. */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export const BASE = '/console';

const VIEWS = [
  ['sessions', 'Sessions'],
  ['statements', 'Statements'],
  ['touched', 'Data touched'],
  ['approvals', 'Approvals'],
  ['integrity', 'Integrity'],
] as const;
export type ViewName = (typeof VIEWS)[number][0];

export function page(options: {
  title: string;
  session?: ConsoleSession | undefined;
  active?: ViewName;
  body: Html;
}): Html {
  const { title, session, active, body } = options;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Gatehouse</title>
<link rel="stylesheet" href="${BASE}/console.css">
</head>
<body>
<header>
<a class="brand" href="${BASE}/">Gatehouse audit</a>
${
  session
    ? html`<nav>${VIEWS.map(
        ([name, label]) =>
          html`<a href="${BASE}/${name}"${name === active ? html` aria-current="page"` : ''}>${label}</a>`,
      )}</nav>
<form class="who" method="post" action="${BASE}/sign-out">
<span>${session.user.subject} (${session.user.roles.join(', ')})</span>
${csrfField(session)}<button type="submit">Sign out</button>
</form>`
    : ''
}
</header>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

export function csrfField(session: ConsoleSession): Html {
  return html`<input type="hidden" name="csrf" value="${session.csrf}">`;
}

/** A time as people read it (UTC), keeping the exact one in `datetime`. */
export function time(iso: string | null): Html | string {
  if (iso === null) return '';
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')}</time>`;
}

/** A link within the console with its query string built from `params` (empty values left out). */
export function href(path: string, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `${BASE}/${path}${text ? `?${text}` : ''}`;
}

export interface Field {
  readonly name: string;
  readonly label: string;
  readonly placeholder?: string;
  /** A select's options; a text input without. */
  readonly options?: readonly string[];
}

/** A GET form whose fields are the API's filter names, so its query string is the API's. */
export function filterForm(path: string, fields: readonly Field[], values: Record<string, string>): Html {
  return html`<form class="filters" method="get" action="${BASE}/${path}">
${fields.map((field) =>
  field.options
    ? html`<label>${field.label}<select name="${field.name}"><option value="">any</option>${field.options.map(
        (option) => html`<option${values[field.name] === option ? html` selected` : ''}>${option}</option>`,
      )}</select></label>`
    : html`<label>${field.label}<input name="${field.name}" value="${values[field.name] ?? ''}" placeholder="${field.placeholder ?? ''}"></label>`,
)}
<button type="submit">Search</button>
</form>`;
}

/** The query's non-empty values: an empty form field is no filter. */
export function filledIn(query: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value.trim() !== ''));
}

export function problemBox(message: string): Html {
  return html`<p class="problem" role="alert">${message}</p>`;
}

export function noticeBox(message: string): Html {
  return html`<p class="notice" role="status">${message}</p>`;
}

/** Shortened text with the whole of it in a tooltip; for statements, which may be long. */
export function clip(text: string | null, max = 160): Html | string {
  if (text === null) return '';
  if (text.length <= max) return html`<code>${text}</code>`;
  return html`<code title="${text}">${text.slice(0, max)}…</code>`;
}
