import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { CHANGED_BY_ANNOTATION } from '../../../crds/common.ts';
import type { PolicyChangeEvent } from '../audit/events.ts';
import { documentName, policyChange } from './policy-reload.ts';

/**
 * sha256 of policy documents as JSON with sorted keys, so that the same policy written with other
 * key order or YAML spacing has the same digest; undefined for no documents at all.
 */
export function policyDigest(documents: readonly unknown[]): string | undefined {
  if (documents.length === 0) return undefined;
  return createHash('sha256').update(canonicalJson(documents)).digest('hex');
}

/**
 * The audit record of a policy put in force: `before` is what was in force (undefined at start),
 * `after` what is now. Rules are compared by name (a MaskingPolicy rule, which has none, by place).
 */
export function policyChangeEvent(
  before: readonly unknown[] | undefined,
  after: readonly unknown[],
  file: string,
  changedBy: string | undefined,
): PolicyChangeEvent {
  const documents = policyChange(before ?? [], after);
  const old = byName(before ?? []);
  const now = byName(after);
  const rules = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
  const fields: string[] = [];
  for (const name of documents.added)
    rules.added.push(...ruleNames(now.get(name)).map((r) => `${name}/${r}`));
  for (const name of documents.removed)
    rules.removed.push(...ruleNames(old.get(name)).map((r) => `${name}/${r}`));
  for (const name of documents.changed) {
    const was = rulesByName(old.get(name));
    const is = rulesByName(now.get(name));
    for (const [rule, value] of is) {
      if (!was.has(rule)) rules.added.push(`${name}/${rule}`);
      else if (!isDeepStrictEqual(was.get(rule), value)) rules.changed.push(`${name}/${rule}`);
    }
    for (const rule of was.keys()) if (!is.has(rule)) rules.removed.push(`${name}/${rule}`);
    for (const field of changedFields(old.get(name), now.get(name))) fields.push(`${name}: ${field}`);
  }
  // Who changed each document put in force, as the operator's webhook stamped it (in a cluster).
  const authors = [...documents.added, ...documents.changed].flatMap((name) => {
    const author = authorOf(now.get(name));
    return author === undefined ? [] : [[name, author] as const];
  });
  const stamped = [...new Set(authors.map(([, author]) => author))].sort().join(', ');
  const by = changedBy ?? (stamped === '' ? undefined : stamped);
  const beforeDigest = before === undefined ? undefined : policyDigest(before);
  const afterDigest = policyDigest(after);
  return {
    type: 'policy.change',
    event: before === undefined ? 'loaded' : 'reloaded',
    file,
    ...(by !== undefined && { changedBy: by }),
    ...(authors.length > 0 && { changedByDocument: Object.fromEntries(authors) }),
    ...(beforeDigest !== undefined && { before: beforeDigest }),
    ...(afterDigest !== undefined && { after: afterDigest }),
    added: documents.added,
    removed: documents.removed,
    changed: documents.changed,
    rules,
    fields,
    summary: summarize(before === undefined, documents, rules, fields),
  };
}

function summarize(
  start: boolean,
  documents: { added: readonly string[]; removed: readonly string[]; changed: readonly string[] },
  rules: { added: string[]; removed: string[]; changed: string[] },
  fields: readonly string[],
): string {
  if (start) return documents.added.length > 0 ? `loaded ${documents.added.join(', ')}` : 'loaded no policy';
  const parts: string[] = [];
  if (documents.added.length > 0) parts.push(`added ${documents.added.join(', ')}`);
  if (documents.removed.length > 0) parts.push(`removed ${documents.removed.join(', ')}`);
  for (const what of ['added', 'removed', 'changed'] as const) {
    const inChanged = rules[what].filter((rule) => documents.changed.some((d) => rule.startsWith(`${d}/`)));
    if (inChanged.length > 0)
      parts.push(`rule${inChanged.length > 1 ? 's' : ''} ${what} ${inChanged.join(', ')}`);
  }
  if (fields.length > 0) parts.push(`changed ${fields.join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : 'no policy document changed';
}

function byName(documents: readonly unknown[]): Map<string, unknown> {
  return new Map(documents.map((document) => [documentName(document), document]));
}

function specRules(document: unknown): readonly unknown[] {
  const rules = (document as { spec?: { rules?: unknown } } | undefined)?.spec?.rules;
  return Array.isArray(rules) ? rules : [];
}

function ruleNames(document: unknown): string[] {
  return [...rulesByName(document).keys()];
}

function rulesByName(document: unknown): Map<string, unknown> {
  return new Map(
    specRules(document).map((rule, index) => {
      const name = (rule as { name?: unknown } | null)?.name;
      return [typeof name === 'string' ? name : `#${index + 1}`, rule];
    }),
  );
}

/** The top-level fields (spec.* besides rules, metadata, ...) that differ between two versions. */
function changedFields(before: unknown, after: unknown): string[] {
  const changed: string[] = [];
  const was = (before ?? {}) as Record<string, unknown>;
  const is = (after ?? {}) as Record<string, unknown>;
  for (const key of new Set([...Object.keys(was), ...Object.keys(is)])) {
    if (key === 'spec') {
      const wasSpec = (was['spec'] ?? {}) as Record<string, unknown>;
      const isSpec = (is['spec'] ?? {}) as Record<string, unknown>;
      for (const field of new Set([...Object.keys(wasSpec), ...Object.keys(isSpec)])) {
        if (field !== 'rules' && !isDeepStrictEqual(wasSpec[field], isSpec[field]))
          changed.push(`spec.${field}`);
      }
    } else if (!isDeepStrictEqual(was[key], is[key])) changed.push(key);
  }
  return changed;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The `gatehouse.dev/changed-by` annotation of a policy document, when it has one. */
function authorOf(document: unknown): string | undefined {
  const annotations = (document as { metadata?: { annotations?: Record<string, unknown> } } | undefined)
    ?.metadata?.annotations;
  const author = annotations?.[CHANGED_BY_ANNOTATION];
  return typeof author === 'string' && author !== '' ? author : undefined;
}
