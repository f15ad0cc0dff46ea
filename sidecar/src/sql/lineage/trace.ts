import type { ColumnRef, Lineage, TableRef } from './types.ts';

/** The working form of a Lineage: keyed sets, so unions stay cheap and duplicate-free. */
export interface Trace {
  readonly columns: ReadonlyMap<string, ColumnRef>;
  readonly rows: ReadonlyMap<string, TableRef>;
  readonly transformed: boolean;
  readonly opaque: boolean;
}

const NONE_COLUMNS: ReadonlyMap<string, ColumnRef> = new Map();
const NONE_ROWS: ReadonlyMap<string, TableRef> = new Map();

/** A constant, a parameter or anything else that carries no data of the database. */
export const CLEAN: Trace = Object.freeze({
  columns: NONE_COLUMNS,
  rows: NONE_ROWS,
  transformed: false,
  opaque: false,
});

export const OPAQUE: Trace = Object.freeze({ ...CLEAN, opaque: true });

export function columnKey(ref: ColumnRef): string {
  return ref.schema + '\u0000' + ref.table + '\u0000' + ref.column;
}

export function tableKey(ref: TableRef): string {
  return ref.schema + '\u0000' + ref.table;
}

export function ofColumn(ref: ColumnRef): Trace {
  return { columns: new Map([[columnKey(ref), ref]]), rows: NONE_ROWS, transformed: false, opaque: false };
}

/** The whole row of a relation: every column of it, and the relation itself. */
export function ofRow(table: TableRef, columns: Trace): Trace {
  const rows = new Map(columns.rows);
  rows.set(tableKey(table), table);
  return { ...columns, rows, transformed: true };
}

export function union(a: Trace, b: Trace): Trace {
  if (a === b || isClean(b)) return a;
  if (isClean(a)) return b;
  return {
    columns: mergeMaps(a.columns, b.columns),
    rows: mergeMaps(a.rows, b.rows),
    transformed: a.transformed || b.transformed,
    opaque: a.opaque || b.opaque,
  };
}

export function unionAll(traces: Iterable<Trace>): Trace {
  let out = CLEAN;
  for (const trace of traces) out = union(out, trace);
  return out;
}

/** Marks a value as computed from its sources; a computed constant stays clean. */
export function transform(trace: Trace): Trace {
  if (trace.transformed || (trace.columns.size === 0 && trace.rows.size === 0 && !trace.opaque)) return trace;
  return { ...trace, transformed: true };
}

export function makeOpaque(trace: Trace): Trace {
  return trace.opaque ? trace : { ...trace, opaque: true };
}

/** Traces only grow while a recursive CTE is iterated, so equal sizes mean nothing changed. */
export function sameSize(a: Trace, b: Trace): boolean {
  return (
    a.columns.size === b.columns.size &&
    a.rows.size === b.rows.size &&
    a.opaque === b.opaque &&
    a.transformed === b.transformed
  );
}

export function toLineage(trace: Trace): Lineage {
  return {
    sources: [...trace.columns.values()],
    wholeRows: [...trace.rows.values()],
    transformed: trace.transformed,
    opaque: trace.opaque,
  };
}

export function fromLineage(lineage: Lineage): Trace {
  let trace: Trace = { ...CLEAN, transformed: lineage.transformed, opaque: lineage.opaque };
  for (const ref of lineage.sources) trace = union(trace, ofColumn(ref));
  if (lineage.wholeRows.length > 0) {
    const rows = new Map(trace.rows);
    for (const row of lineage.wholeRows) rows.set(tableKey(row), row);
    trace = { ...trace, rows };
  }
  return trace;
}

function isClean(trace: Trace): boolean {
  return trace.columns.size === 0 && trace.rows.size === 0 && !trace.opaque && !trace.transformed;
}

function mergeMaps<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): ReadonlyMap<string, V> {
  if (b.size === 0) return a;
  if (a.size === 0) return b;
  let merged: Map<string, V> | undefined;
  for (const [key, value] of b) {
    if (a.has(key)) continue;
    merged ??= new Map(a);
    merged.set(key, value);
  }
  return merged ?? a;
}

/**
 * How a value used only for equality with others (a GROUP BY key, a DISTINCT or UNION column, one side
 * of `a.x = b.y`) counts, for both protocols' lineage: nothing when it carries no data, an equality
 * group when its columns pass through unchanged, else a plain condition (anything computed from a value
 * can be told apart by more than equality).
 */
export function equalityUse(group: Trace): 'none' | 'group' | 'condition' {
  if (group.columns.size === 0 && group.rows.size === 0 && !group.opaque) return 'none';
  return group.transformed || group.opaque || group.rows.size > 0 ? 'condition' : 'group';
}
