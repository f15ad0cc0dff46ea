import { CLEAN, type Trace, transform, union, unionAll } from './trace.ts';
import type { TableRef } from './types.ts';

/** One output column of a row source, with the lineage of its values. */
export interface Col {
  readonly name: string;
  readonly trace: Trace;
}

/** The columns a row source yields: a query's output, a table, a function's result. */
export interface Relation {
  readonly columns: readonly Col[];
  /**
   * Further columns whose number and names are unknown (a relation missing from the catalog), with
   * the lineage any of them may have; null when `columns` is complete.
   */
  readonly rest: Trace | null;
  /** Lineage of a column of `rest` referenced by name (a system relation names its own column). */
  readonly named?: (name: string) => Trace;
}

/** A range-table entry: a row source that the query can refer to. */
export interface Entry {
  /** Its reference name: the alias, or the relation or function name; undefined when it has none. */
  readonly name: string | undefined;
  /** Schema of an unaliased catalog relation, for `schema.table.column` references. */
  readonly schema: string | undefined;
  readonly relation: Relation;
  /** Lineage of the whole-row value (`SELECT c FROM customers c`). */
  readonly whole: Trace;
  /** A catalog table, whose system columns (ctid, xmin, ...) may be referenced too. */
  readonly table: TableRef | undefined;
}

/** How PostgreSQL's namespace items work: a join hides the column names of its inputs, an alias their names. */
export interface Item {
  readonly entry: Entry;
  readonly relVisible: boolean;
  readonly colsVisible: boolean;
}

export interface Scope {
  readonly items: readonly Item[];
  readonly parent: Scope | undefined;
}

const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid']);

export function entryOf(name: string | undefined, relation: Relation, whole?: Trace): Entry {
  return {
    name,
    schema: undefined,
    relation,
    whole: whole ?? transform(wholeOf(relation)),
    table: undefined,
  };
}

/** The whole-row value of a derived relation carries every column's values. */
export function wholeOf(relation: Relation): Trace {
  const columns = unionAll(relation.columns.map((col) => col.trace));
  return relation.rest ? union(columns, relation.rest) : columns;
}

/** The lineage of column `name` of one entry, or undefined when it has no such column. */
export function columnOf(entry: Entry, name: string): Trace | undefined {
  let found: Trace | undefined;
  for (const col of entry.relation.columns) if (col.name === name) found = union(found ?? CLEAN, col.trace);
  if (found) return found;
  if (entry.table && SYSTEM_COLUMNS.has(name))
    return {
      ...CLEAN,
      columns: new Map([
        [
          entry.table.schema + '\u0000' + entry.table.table + '\u0000' + name,
          { ...entry.table, column: name },
        ],
      ]),
    };
  return undefined;
}

/** Lineage a column of the unknown rest of an entry may have. */
function maybeColumnOf(entry: Entry, name: string): Trace | undefined {
  const relation = entry.relation;
  if (!relation.rest) return undefined;
  return relation.named ? relation.named(name) : relation.rest;
}

/**
 * Resolves a column reference as PostgreSQL does, from the innermost query level outwards: `x` is a
 * column, else a whole row; `a.x` is column x of relation a, else field x of column a. A name that
 * may belong to a relation whose columns are unknown adds that possibility to whatever else it finds.
 * Returns undefined when nothing matches (PostgreSQL would reject the statement).
 */
export function resolveColumn(fields: readonly string[], scope: Scope | undefined): Trace | undefined {
  if (fields.length === 1) return resolveBare(fields[0]!, scope);
  if (fields.length === 2) return resolveQualified(undefined, fields[0]!, fields[1]!, scope);
  if (fields.length === 3)
    return (
      resolveQualified(fields[0]!, fields[1]!, fields[2]!, scope) ??
      resolveQualified(undefined, fields[1]!, fields[2]!, scope)
    );
  if (fields.length === 4) return resolveQualified(fields[1]!, fields[2]!, fields[3]!, scope);
  return undefined;
}

function resolveBare(name: string, scope: Scope | undefined): Trace | undefined {
  let maybe: Trace | undefined;
  for (let level = scope; level; level = level.parent) {
    let found: Trace | undefined;
    for (const item of level.items) {
      if (!item.colsVisible) continue;
      const trace = columnOf(item.entry, name);
      if (trace) found = union(found ?? CLEAN, trace);
      else {
        const possible = maybeColumnOf(item.entry, name);
        if (possible) maybe = union(maybe ?? CLEAN, possible);
      }
    }
    if (found) return maybe ? union(found, maybe) : found;
  }
  const row = findRelation(undefined, name, scope);
  if (row) return maybe ? union(row.whole, maybe) : row.whole;
  return maybe;
}

function resolveQualified(
  schema: string | undefined,
  relation: string,
  column: string,
  scope: Scope | undefined,
): Trace | undefined {
  const entries = findRelations(schema, relation, scope);
  if (entries.length > 0) {
    let found: Trace | undefined;
    for (const entry of entries) {
      const trace = columnOf(entry, column) ?? maybeColumnOf(entry, column);
      if (trace) found = union(found ?? CLEAN, trace);
    }
    return found;
  }
  // `a.x` where a is no relation: field x of a composite column a, which carries all of a.
  return schema === undefined ? resolveBare(relation, scope) : undefined;
}

/** The relation named `name` at the innermost level that has one (several at one level are ambiguous). */
export function findRelation(
  schema: string | undefined,
  name: string,
  scope: Scope | undefined,
): Entry | undefined {
  const entries = findRelations(schema, name, scope);
  if (entries.length <= 1) return entries[0];
  const whole = unionAll(entries.map((entry) => entry.whole));
  const rest = unionAll(entries.map((entry) => wholeOf(entry.relation)));
  return entryOf(name, { columns: [], rest }, whole);
}

function findRelations(schema: string | undefined, name: string, scope: Scope | undefined): Entry[] {
  for (let level = scope; level; level = level.parent) {
    const entries = level.items
      .filter(
        (item) =>
          item.relVisible &&
          item.entry.name === name &&
          (schema === undefined || item.entry.schema === schema),
      )
      .map((item) => item.entry);
    if (entries.length > 0) return entries;
  }
  return [];
}

/** The columns `*` stands for at the innermost level, in order. */
export function starColumns(scope: Scope | undefined): Relation {
  const columns: Col[] = [];
  let rest: Trace | null = null;
  for (const item of scope?.items ?? []) {
    if (!item.colsVisible) continue;
    for (const col of item.entry.relation.columns) columns.push(col);
    if (item.entry.relation.rest) rest = union(rest ?? CLEAN, item.entry.relation.rest);
  }
  return { columns, rest };
}
