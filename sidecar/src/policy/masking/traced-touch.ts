import type { MaskingMethod } from '../../../../crds/masking-policy.ts';
import type { ColumnRef, StatementLineage, TableRef } from '../../sql/lineage/types.ts';
import type { TracedTouch } from '../gates/statement-touched.ts';
import type { ExemptColumn, Sensitivity } from './sensitive-columns.ts';

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
  const traced: TracedTouch = Object.freeze({
    tablesRead: uniqueTables(lineage.reads),
    tablesWritten: uniqueTables(written),
    columns:
      seen.size === 0
        ? undefined
        : Object.freeze(Object.fromEntries([...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))),
  });
  bySensitivity.set(sensitivity, traced);
  return traced;
}

function uniqueTables(tables: readonly TableRef[]): readonly string[] {
  return Object.freeze([...new Set(tables.map((t) => `${t.schema}.${t.table}`))].sort());
}

function qualifiedColumn(ref: ColumnRef): string {
  return `${ref.schema}.${ref.table}.${ref.column}`;
}
