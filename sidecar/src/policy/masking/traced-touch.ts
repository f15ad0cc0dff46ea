import type { MaskingMethod } from '../../../../crds/masking-policy.ts';
import type { ColumnRef, StatementLineage, TableRef } from '../../sql/lineage/types.ts';
import type { ExemptColumn, Sensitivity } from './sensitive-columns.ts';

/** The statement's lineage, where lineage traced it: qualified tables and its output's source columns. */
export interface TracedTouch {
  readonly tablesRead: readonly string[];
  readonly tablesWritten: readonly string[];
  readonly columns: Readonly<Record<string, string>> | undefined;
}

/**
 * Kept per lineage and sensitivity, of which the plan's masks are a function: lineage is cached by
 * shape and sensitivity per catalog and settings, so a shape seen before costs two lookups.
 */
const cache = new WeakMap<StatementLineage, WeakMap<Sensitivity, TracedTouch>>();

/**
 * What a statement touched as its lineage traced it, for the audit record: the relations it reads
 * (through views), the tables it writes columns of, and each source column of its output with how
 * this identity saw it: `clear`, or the method of the output column it flows into. A column seen both
 * ways in one statement counts as `clear`: the record must never understate what was read in clear.
 * Columns shown clear under an access request's exemption are `clear` (the record names the request).
 */
/** An output column's mask as statement-mask-plan.ts plans it: only its method matters here. */
type Masked = { readonly method: MaskingMethod };

export function tracedTouch(
  lineage: StatementLineage,
  sensitivity: Sensitivity,
  planned: readonly (Masked | undefined)[],
  rest: Masked | undefined,
  exempt: readonly (ExemptColumn | undefined)[],
): TracedTouch {
  let bySensitivity = cache.get(lineage);
  if (bySensitivity === undefined) {
    bySensitivity = new WeakMap();
    cache.set(lineage, bySensitivity);
  }
  const hit = bySensitivity.get(sensitivity);
  if (hit) return hit;
  const traced = maskedTouch(lineage, planned, rest, exempt);
  bySensitivity.set(sensitivity, traced);
  return traced;
}

/**
 * tracedTouch without its cache, for MySQL, whose lineage is traced per text: `planned` the masks of
 * the output columns in order (when the lineage is exact), `rest` the mask of every column otherwise.
 */
export function maskedTouch(
  lineage: StatementLineage,
  planned: readonly (Masked | undefined)[],
  rest: Masked | undefined,
  exempt: readonly (unknown | undefined)[],
): TracedTouch {
  const seen = new Map<string, string>();
  (lineage.columns ?? []).forEach((column, i) => {
    const mask = lineage.exact ? planned[i] : rest;
    const how = mask && exempt[i] === undefined ? mask.method : 'clear';
    for (const source of column.sources) {
      const key = qualifiedColumn(source);
      if (seen.get(key) !== 'clear') seen.set(key, how);
    }
  });
  const written = lineage.writes.flatMap((w) => (w.target.kind === 'column' ? [w.target.column] : []));
  return Object.freeze({
    tablesRead: uniqueTables(lineage.reads),
    tablesWritten: uniqueTables(written),
    columns: seen.size === 0 ? undefined : sortedColumns(seen),
  });
}

function uniqueTables(tables: readonly TableRef[]): readonly string[] {
  return Object.freeze([...new Set(tables.map((t) => `${t.schema}.${t.table}`))].sort());
}

function qualifiedColumn(ref: ColumnRef): string {
  return `${ref.schema}.${ref.table}.${ref.column}`;
}

const clearCache = new WeakMap<StatementLineage, TracedTouch>();

/**
 * What a statement touched for an identity that sees every column in clear (no MaskingPolicy covers
 * it), from the lineage either protocol traced: each source column of its output `clear`. Where the
 * output cannot be tied to its columns (an unknown function or relation, a `*` over columns lineage
 * does not know), each table the statement reads is named `schema.table.*` with `unknown`, so the
 * record neither claims a column clear nor leaves the read out. Kept per lineage, which the shape
 * caches share between texts of one shape.
 */
export function clearTouch(lineage: StatementLineage): TracedTouch {
  const hit = clearCache.get(lineage);
  if (hit) return hit;
  const seen = new Map<string, string>();
  let unknown = !lineage.exact || lineage.readsUnknown;
  for (const column of lineage.columns ?? []) {
    for (const source of column.sources) seen.set(qualifiedColumn(source), 'clear');
    if (column.opaque) unknown = true;
  }
  if (unknown && lineage.columns !== null)
    for (const table of lineage.reads) {
      const key = `${table.schema}.${table.table}.*`;
      if (!seen.has(key)) seen.set(key, UNKNOWN);
    }
  const written = lineage.writes.flatMap((w) => (w.target.kind === 'column' ? [w.target.column] : []));
  const traced: TracedTouch = Object.freeze({
    tablesRead: uniqueTables(lineage.reads),
    tablesWritten: uniqueTables(written),
    columns: seen.size === 0 ? undefined : sortedColumns(seen),
  });
  clearCache.set(lineage, traced);
  return traced;
}

/** How a record names source columns lineage could not tell apart: some columns of the table, which not known. */
export const UNKNOWN = 'unknown';

/**
 * For a text lineage could not read at all (the analysis still named its tables): each table it reads
 * as `table.*` `unknown`, as the analysis named it.
 */
export function untracedTouch(tablesRead: readonly string[] | undefined): TracedTouch | undefined {
  if (!tablesRead || tablesRead.length === 0) return undefined;
  return Object.freeze({
    tablesRead: Object.freeze([...tablesRead]),
    tablesWritten: Object.freeze([]),
    columns: sortedColumns(new Map(tablesRead.map((t) => [`${t}.*`, UNKNOWN]))),
  });
}

function sortedColumns(seen: ReadonlyMap<string, string>): Readonly<Record<string, string>> {
  return Object.freeze(Object.fromEntries([...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}
