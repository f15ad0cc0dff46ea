import type {
  A_Expr,
  A_Indirection,
  Alias,
  CaseExpr,
  ColumnRef,
  CommonTableExpr,
  FuncCall,
  JoinExpr,
  JsonTable,
  Node,
  RangeFunction,
  RangeTableFunc,
  RangeVar,
  ResTarget,
  SelectStmt,
  SubLink,
  TypeCast,
  WindowDef,
  WithClause,
} from 'libpg-query';
import { BUILTIN_OPERATORS, fromShape, PURE_FUNCTIONS, SINK_FUNCTIONS } from './builtins.ts';
import { qualifiedName } from './catalog.ts';
import {
  type Context,
  MAX_DEPTH,
  recordEquality,
  recordPredicate,
  recordRead,
  recordUnknownCode,
  recordWrite,
  withLevel,
} from './context.ts';
import { parseCached } from './parse-cached.ts';
import {
  type Col,
  columnOf,
  type Entry,
  entryOf,
  findRelation,
  type Item,
  type Relation,
  resolveColumn,
  type Scope,
  starColumns,
  wholeOf,
} from './scope.ts';
import { mayFail, totalArgument, totalCast, totalOperands } from './total-expressions.ts';
import {
  CLEAN,
  fromLineage,
  makeOpaque,
  OPAQUE,
  ofColumn,
  ofRow,
  sameSize,
  type Trace,
  transform,
  union,
  unionAll,
} from './trace.ts';
import type { CatalogViewEntry, TableRef } from './types.ts';

/** CTEs visible at some query level: the innermost WITH first. */
interface Ctes {
  readonly map: ReadonlyMap<string, CteBinding>;
  readonly parent: Ctes | undefined;
}

interface CteBinding {
  relation: Relation | undefined;
  busy: boolean;
  readonly compute: () => Relation;
}

/** Query levels carry the CTEs visible to them. */
interface Level extends Scope {
  readonly ctes: Ctes | undefined;
}

export const ROOT: Level = Object.freeze({ items: [], parent: undefined, ctes: undefined });

const EMPTY: Relation = Object.freeze({ columns: [], rest: null });
const UNKNOWN: Relation = Object.freeze({ columns: [], rest: OPAQUE });
const MAX_RECURSION_ROUNDS = 32;
const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema']);

// ---------------------------------------------------------------------------------------------
// Queries

/** The output of any query-like node: SELECT, VALUES, set operations, and DML with RETURNING. */
export function queryRelation(node: Node | undefined, outer: Level, ctx: Context): Relation {
  if (!node) return UNKNOWN;
  if (++ctx.depth > MAX_DEPTH) {
    ctx.depth--;
    ctx.readsUnknown = true;
    return UNKNOWN;
  }
  try {
    if ('SelectStmt' in node) return selectRelation(node.SelectStmt, outer, ctx);
    if ('InsertStmt' in node || 'UpdateStmt' in node || 'DeleteStmt' in node || 'MergeStmt' in node)
      return modifyRelation(node, outer, ctx) ?? EMPTY;
    ctx.readsUnknown = true;
    return UNKNOWN;
  } finally {
    ctx.depth--;
  }
}

function selectRelation(stmt: SelectStmt, outer: Level, ctx: Context): Relation {
  const ctes = stmt.withClause ? withCtes(stmt.withClause, outer, ctx) : outer.ctes;
  const base: Level = { items: [], parent: outer, ctes };

  if (stmt.op && stmt.op !== 'SETOP_NONE') {
    // Through queryRelation, so a long chain of UNIONs counts against the nesting bound.
    const left = stmt.larg ? queryRelation({ SelectStmt: stmt.larg }, base, ctx) : UNKNOWN;
    const right = stmt.rarg ? queryRelation({ SelectStmt: stmt.rarg }, base, ctx) : UNKNOWN;
    const combined = positionalUnion(left, right);
    // UNION, INTERSECT and EXCEPT without ALL compare every column for equality to remove duplicates.
    if (!stmt.all) for (const col of combined.columns) recordEquality(ctx, col.trace);
    finishOutput(stmt, undefined, combined, base, ctx);
    return combined;
  }

  if (stmt.valuesLists) {
    let rows: Relation | undefined;
    for (const list of stmt.valuesLists) {
      const items = 'List' in list ? (list.List.items ?? []) : [list];
      const row: Relation = {
        columns: items.map((item, index) => ({
          name: `column${index + 1}`,
          trace: expression(item, base, ctx),
        })),
        rest: null,
      };
      rows = rows ? positionalUnion(rows, row) : row;
    }
    const values = rows ?? EMPTY;
    finishOutput(stmt, undefined, values, base, ctx);
    return values;
  }

  const items = fromList(stmt.fromClause, outer, ctes, ctx);
  const level: Level = { items, parent: outer, ctes };
  if (stmt.whereClause) condition(stmt.whereClause, level, ctx);
  for (const window of stmt.windowClause ?? [])
    if ('WindowDef' in window) windowPredicates(window.WindowDef, level, ctx);
  const output = targetList(stmt.targetList, level, ctx);
  for (const group of stmt.groupClause ?? [])
    for (const key of groupKeys(group, level, output, ctx)) recordEquality(ctx, key);
  if (stmt.havingClause) recordPredicate(ctx, expression(stmt.havingClause, level, ctx));
  finishOutput(stmt, level, output, base, ctx);
  return output;
}

/** DISTINCT ON, ORDER BY, LIMIT and OFFSET decide which rows come back: predicates. */
function finishOutput(
  stmt: SelectStmt,
  level: Level | undefined,
  output: Relation,
  base: Level,
  ctx: Context,
): void {
  for (const key of stmt.distinctClause ?? []) {
    if (!isEmptyNode(key)) recordEquality(ctx, sortKey(key, level, output, ctx));
    // SELECT DISTINCT compares whole output rows: every column for equality.
    else for (const col of output.columns) recordEquality(ctx, col.trace);
  }
  for (const sort of stmt.sortClause ?? [])
    if ('SortBy' in sort && sort.SortBy.node)
      recordPredicate(ctx, sortKey(sort.SortBy.node, level, output, ctx));
  if (stmt.limitCount) recordPredicate(ctx, expression(stmt.limitCount, level ?? base, ctx));
  if (stmt.limitOffset) recordPredicate(ctx, expression(stmt.limitOffset, level ?? base, ctx));
}

/** `SELECT DISTINCT` has a distinctClause of one empty node; it selects nothing by itself. */
function isEmptyNode(node: Node): boolean {
  return Object.keys(node).length === 0;
}

/** ORDER BY and DISTINCT ON keys: an output column by position or name, else an input expression. */
function sortKey(node: Node, level: Level | undefined, output: Relation, ctx: Context): Trace {
  const position = integerConstant(node);
  if (position !== undefined) return output.columns[position - 1]?.trace ?? wholeOf(output);
  const name = bareColumnName(node);
  if (name !== undefined) {
    const named = output.columns.filter((col) => col.name === name).map((col) => col.trace);
    const input = level ? resolveColumn([name], level) : undefined;
    if (named.length > 0 || input) return union(unionAll(named), input ?? CLEAN);
    return output.rest ?? OPAQUE;
  }
  if (!level) return wholeOf(output);
  return expression(node, level, ctx);
}

/** GROUP BY keys, one each: like ORDER BY, but input columns win over output names; grouping sets nest. */
function groupKeys(node: Node, level: Level, output: Relation, ctx: Context): Trace[] {
  if ('GroupingSet' in node)
    return (node.GroupingSet.content ?? []).flatMap((item) => groupKeys(item, level, output, ctx));
  if ('List' in node) return (node.List.items ?? []).flatMap((item) => groupKeys(item, level, output, ctx));
  return [sortKey(node, level, output, ctx)];
}

/**
 * A WHERE or JOIN condition: each `a = b` between two columns among its AND-ed parts compares them for
 * equality only; everything else in it is a predicate over what it reads.
 */
function condition(node: Node, level: Level, ctx: Context): void {
  if ('BoolExpr' in node && node.BoolExpr.boolop === 'AND_EXPR') {
    for (const part of node.BoolExpr.args ?? []) condition(part, level, ctx);
    return;
  }
  const expr = 'A_Expr' in node ? node.A_Expr : undefined;
  const { lexpr, rexpr } = expr ?? {};
  if (
    expr?.kind === 'AEXPR_OP' &&
    (expr.name ?? []).length === 1 &&
    stringOf(expr.name?.[0]) === '=' &&
    lexpr !== undefined &&
    'ColumnRef' in lexpr &&
    rexpr !== undefined &&
    'ColumnRef' in rexpr
  ) {
    recordEquality(ctx, union(expression(lexpr, level, ctx), expression(rexpr, level, ctx)));
    return;
  }
  recordPredicate(ctx, expression(node, level, ctx));
}

function integerConstant(node: Node): number | undefined {
  if ('A_Const' in node && node.A_Const.ival !== undefined) return node.A_Const.ival.ival ?? 0;
  return undefined;
}

function bareColumnName(node: Node): string | undefined {
  if (!('ColumnRef' in node)) return undefined;
  const fields = node.ColumnRef.fields ?? [];
  return fields.length === 1 ? stringOf(fields[0]) : undefined;
}

function windowPredicates(window: WindowDef, level: Level, ctx: Context): void {
  for (const part of window.partitionClause ?? []) recordPredicate(ctx, expression(part, level, ctx));
  for (const sort of window.orderClause ?? [])
    if ('SortBy' in sort && sort.SortBy.node) recordPredicate(ctx, expression(sort.SortBy.node, level, ctx));
  if (window.startOffset) recordPredicate(ctx, expression(window.startOffset, level, ctx));
  if (window.endOffset) recordPredicate(ctx, expression(window.endOffset, level, ctx));
}

/**
 * Column-wise union of two row sources of the same shape (UNION, VALUES rows, recursive CTE rounds).
 * A column that holds data on one side and only constants on the other mixes literals among the values:
 * comparing it (DISTINCT, GROUP BY) compares values with literals, so it counts as computed.
 */
function positionalUnion(left: Relation, right: Relation): Relation {
  if (left.columns.length !== right.columns.length || left.rest || right.rest) {
    // Shapes that do not line up: every column may hold anything either side holds.
    const all = union(wholeOf(left), wholeOf(right));
    return {
      columns: left.columns.map((col) => ({ name: col.name, trace: all })),
      rest: left.rest || right.rest || left.columns.length !== right.columns.length ? all : null,
    };
  }
  return {
    columns: left.columns.map((col, index) => {
      const other = right.columns[index]!.trace;
      const both = union(col.trace, other);
      return { name: col.name, trace: isClean(col.trace) !== isClean(other) ? transform(both) : both };
    }),
    rest: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Target lists

/** The output columns of a target list (SELECT list or RETURNING), with `*` expanded in order. */
function targetList(targets: readonly Node[] | undefined, level: Level, ctx: Context): Relation {
  const columns: Col[] = [];
  let rest: Trace | null = null;
  for (const target of targets ?? []) {
    if (!('ResTarget' in target)) continue;
    const { name, val } = target.ResTarget;
    if (!val) continue;
    const expanded = starExpansion(val, level, ctx);
    if (expanded) {
      for (const col of expanded.columns) columns.push(col);
      if (expanded.rest) rest = union(rest ?? CLEAN, expanded.rest);
      continue;
    }
    columns.push({ name: name ?? figureName(val), trace: expression(val, level, ctx) });
  }
  return { columns, rest };
}

/** `*`, `t.*` and `(composite).*` in a target list stand for several columns. */
function starExpansion(val: Node, level: Level, ctx: Context): Relation | undefined {
  if ('ColumnRef' in val) {
    const fields = val.ColumnRef.fields ?? [];
    if (fields.length === 0 || !('A_Star' in fields[fields.length - 1]!)) return undefined;
    if (fields.length === 1) return starColumns(level);
    const names = fields.slice(0, -1).map(stringOf);
    const table = names[names.length - 1];
    const schema = names.length >= 2 ? names[names.length - 2] : undefined;
    const entry = table === undefined ? undefined : findRelation(schema, table, level);
    return entry?.relation ?? UNKNOWN;
  }
  if ('A_Indirection' in val) {
    const indirection = val.A_Indirection.indirection ?? [];
    const last = indirection[indirection.length - 1];
    if (!last || !('A_Star' in last)) return undefined;
    if (indirection.length === 1 && val.A_Indirection.arg)
      return compositeColumns(val.A_Indirection.arg, level, ctx);
    return { columns: [], rest: expression(val, level, ctx) };
  }
  return undefined;
}

/** The fields of a composite value: a whole-row reference, or a value of a catalog row type. */
function compositeColumns(node: Node, level: Level, ctx: Context): Relation {
  if ('ColumnRef' in node) {
    const fields = (node.ColumnRef.fields ?? []).map(stringOf);
    if (fields.length === 1 && fields[0] !== undefined && resolveColumnOnly(fields[0], level) === undefined) {
      const entry = findRelation(undefined, fields[0], level);
      if (entry) return entry.relation;
    }
  }
  const trace = expression(node, level, ctx);
  const names = rowTypeNames(node, ctx);
  if (names) return { columns: names.map((name) => ({ name, trace })), rest: null };
  return { columns: [], rest: trace };
}

/** Whether `name` is a column (not a whole-row reference) somewhere in scope. */
function resolveColumnOnly(name: string, level: Level): Trace | undefined {
  for (let scope: Scope | undefined = level; scope; scope = scope.parent)
    for (const item of scope.items)
      if (item.colsVisible && columnOf(item.entry, name)) return columnOf(item.entry, name);
  return undefined;
}

/** Column names of the row type a composite expression has, when the catalog can tell. */
function rowTypeNames(node: Node, ctx: Context): readonly string[] | undefined {
  let cast: TypeCast | undefined;
  if ('TypeCast' in node) cast = node.TypeCast;
  else if ('FuncCall' in node && fromShapeOf(node.FuncCall, ctx)?.kind === 'row-of-first-argument') {
    const first = node.FuncCall.args?.[0];
    if (first && 'TypeCast' in first) cast = first.TypeCast;
  }
  const typeNames = (cast?.typeName?.names ?? []).map(stringOf);
  if (typeNames.length === 0 || typeNames.some((name) => name === undefined)) return undefined;
  const name = typeNames[typeNames.length - 1]!;
  const schema = typeNames.length > 1 ? typeNames[typeNames.length - 2] : undefined;
  const found = lookupRelation(schema, name, ctx);
  const first = found[0];
  if (found.length !== 1 || !first) return undefined;
  if (first.kind === 'table') return first.table.columns.map((col) => col.name);
  if (first.kind === 'view' && first.view.columns) return first.view.columns;
  return undefined;
}

function fromShapeOf(call: FuncCall, ctx: Context) {
  const { schema, name } = functionName(call);
  return name !== undefined && trustedFunction(schema, name, ctx) ? fromShape(name) : undefined;
}

/** The name PostgreSQL gives an unnamed output column (FigureColname). */
function figureName(node: Node): string {
  return namedBy(node)?.name ?? '?column?';
}

/**
 * A name and how strongly the expression suggests it: 2 for a column or function name, 1 for a type
 * name; CASE and casts prefer the stronger name of what they wrap, as FigureColnameInternal does.
 */
function namedBy(node: Node): { name: string; strength: 1 | 2 } | undefined {
  const strong = (name: string | undefined) =>
    name === undefined ? undefined : { name, strength: 2 as const };
  if ('ColumnRef' in node) {
    const fields = node.ColumnRef.fields ?? [];
    return strong(stringOf(fields[fields.length - 1]));
  }
  if ('A_Indirection' in node) {
    const indirection = node.A_Indirection.indirection ?? [];
    for (let index = indirection.length - 1; index >= 0; index--) {
      const field = stringOf(indirection[index]);
      if (field !== undefined) return strong(field);
    }
    return node.A_Indirection.arg ? namedBy(node.A_Indirection.arg) : undefined;
  }
  if ('FuncCall' in node) return strong(functionName(node.FuncCall).name);
  if ('TypeCast' in node) {
    const inner = node.TypeCast.arg ? namedBy(node.TypeCast.arg) : undefined;
    if (inner?.strength === 2) return inner;
    const names = node.TypeCast.typeName?.names ?? [];
    const type = stringOf(names[names.length - 1]);
    return type === undefined ? inner : { name: type, strength: 1 };
  }
  if ('CollateClause' in node) return node.CollateClause.arg ? namedBy(node.CollateClause.arg) : undefined;
  if ('A_Expr' in node) return node.A_Expr.kind === 'AEXPR_NULLIF' ? strong('nullif') : undefined;
  if ('CaseExpr' in node) {
    const inner = node.CaseExpr.defresult ? namedBy(node.CaseExpr.defresult) : undefined;
    return inner?.strength === 2 ? inner : { name: 'case', strength: 1 };
  }
  if ('SubLink' in node) {
    const type = node.SubLink.subLinkType;
    if (type === 'EXISTS_SUBLINK') return strong('exists');
    if (type === 'ARRAY_SUBLINK') return strong('array');
    if (type === 'EXPR_SUBLINK') return strong(subqueryFirstName(node.SubLink.subselect));
    return undefined;
  }
  if ('A_ArrayExpr' in node) return strong('array');
  if ('RowExpr' in node) return strong('row');
  if ('CoalesceExpr' in node) return strong('coalesce');
  if ('MinMaxExpr' in node) return strong(node.MinMaxExpr.op === 'IS_GREATEST' ? 'greatest' : 'least');
  if ('SQLValueFunction' in node) return strong(SQL_VALUE_NAMES[node.SQLValueFunction.op ?? '']);
  if ('XmlExpr' in node) return strong(XML_NAMES[node.XmlExpr.op ?? '']);
  if ('XmlSerialize' in node) return strong('xmlserialize');
  if ('GroupingFunc' in node) return strong('grouping');
  if ('MergeSupportFunc' in node) return strong('merge_action');
  if ('JsonObjectConstructor' in node) return strong('json_object');
  if ('JsonArrayConstructor' in node || 'JsonArrayQueryConstructor' in node) return strong('json_array');
  if ('JsonObjectAgg' in node) return strong('json_objectagg');
  if ('JsonArrayAgg' in node) return strong('json_arrayagg');
  if ('JsonParseExpr' in node) return strong('json');
  if ('JsonScalarExpr' in node) return strong('json_scalar');
  if ('JsonSerializeExpr' in node) return strong('json_serialize');
  if ('JsonFuncExpr' in node) return strong(JSON_FUNC_NAMES[node.JsonFuncExpr.op ?? '']);
  return undefined;
}

/** A scalar subquery's column is named like the subquery's own output column. */
function subqueryFirstName(node: Node | undefined): string | undefined {
  let select = node && 'SelectStmt' in node ? node.SelectStmt : undefined;
  while (select?.op && select.op !== 'SETOP_NONE') select = select.larg;
  const first = select?.targetList?.[0];
  if (!first || !('ResTarget' in first)) return undefined;
  if (first.ResTarget.name) return first.ResTarget.name;
  return first.ResTarget.val ? figureName(first.ResTarget.val) : undefined;
}

const SQL_VALUE_NAMES: Readonly<Record<string, string>> = {
  SVFOP_CURRENT_DATE: 'current_date',
  SVFOP_CURRENT_TIME: 'current_time',
  SVFOP_CURRENT_TIME_N: 'current_time',
  SVFOP_CURRENT_TIMESTAMP: 'current_timestamp',
  SVFOP_CURRENT_TIMESTAMP_N: 'current_timestamp',
  SVFOP_LOCALTIME: 'localtime',
  SVFOP_LOCALTIME_N: 'localtime',
  SVFOP_LOCALTIMESTAMP: 'localtimestamp',
  SVFOP_LOCALTIMESTAMP_N: 'localtimestamp',
  SVFOP_CURRENT_ROLE: 'current_role',
  SVFOP_CURRENT_USER: 'current_user',
  SVFOP_USER: 'user',
  SVFOP_SESSION_USER: 'session_user',
  SVFOP_CURRENT_CATALOG: 'current_catalog',
  SVFOP_CURRENT_SCHEMA: 'current_schema',
};

const XML_NAMES: Readonly<Record<string, string>> = {
  IS_XMLCONCAT: 'xmlconcat',
  IS_XMLELEMENT: 'xmlelement',
  IS_XMLFOREST: 'xmlforest',
  IS_XMLPARSE: 'xmlparse',
  IS_XMLPI: 'xmlpi',
  IS_XMLROOT: 'xmlroot',
  IS_XMLSERIALIZE: 'xmlserialize',
};

const JSON_FUNC_NAMES: Readonly<Record<string, string>> = {
  JSON_EXISTS_OP: 'json_exists',
  JSON_QUERY_OP: 'json_query',
  JSON_VALUE_OP: 'json_value',
};

// ---------------------------------------------------------------------------------------------
// CTEs

function withCtes(clause: WithClause, outer: Level, ctx: Context): Ctes {
  const map = new Map<string, CteBinding>();
  const ctes: Ctes = { map, parent: outer.ctes };
  const definitions = (clause.ctes ?? []).flatMap((node) =>
    'CommonTableExpr' in node ? [node.CommonTableExpr] : [],
  );
  if (!clause.recursive) {
    // Each CTE sees the ones before it; a name it repeats means an outer CTE or a table.
    for (const cte of definitions) {
      const visible: Ctes = { map: new Map(map), parent: outer.ctes };
      const relation = cteRelation(cte, { items: [], parent: outer, ctes: visible }, ctx);
      map.set(cte.ctename ?? '', { relation, busy: false, compute: () => relation });
    }
    return ctes;
  }
  const level: Level = { items: [], parent: outer, ctes };
  for (const cte of definitions) {
    const binding: CteBinding = {
      relation: undefined,
      busy: false,
      compute: () => cteStart(cte, level, ctx),
    };
    map.set(cte.ctename ?? '', binding);
  }
  // Fixpoint: the recursive term sees the union of all rounds so far, until no lineage grows.
  for (const binding of map.values()) cteLookup(binding);
  for (let round = 0; round < MAX_RECURSION_ROUNDS; round++) {
    let grew = false;
    for (const cte of definitions) {
      const binding = map.get(cte.ctename ?? '')!;
      const before = binding.relation!;
      const after = positionalUnion(before, cteRelation(cte, level, ctx));
      binding.relation = after;
      if (!sameRelation(before, after)) grew = true;
    }
    if (!grew) return ctes;
  }
  for (const binding of map.values())
    binding.relation = { columns: [], rest: makeOpaque(wholeOf(binding.relation!)) };
  return ctes;
}

/** The first approximation of a recursive CTE: its non-recursive term. */
function cteStart(cte: CommonTableExpr, level: Level, ctx: Context): Relation {
  const query = cte.ctequery;
  if (query && 'SelectStmt' in query && query.SelectStmt.op === 'SETOP_UNION' && query.SelectStmt.larg)
    return cteColumns(cte, selectRelation(query.SelectStmt.larg, level, ctx));
  return cteRelation(cte, level, ctx);
}

function cteRelation(cte: CommonTableExpr, level: Level, ctx: Context): Relation {
  return cteColumns(cte, queryRelation(cte.ctequery, level, ctx));
}

/** Applies the CTE's column list, then adds the SEARCH and CYCLE columns, which carry the listed columns. */
function cteColumns(cte: CommonTableExpr, relation: Relation): Relation {
  const renamed = renameColumns(relation, namesOf(cte.aliascolnames));
  const added: Col[] = [];
  const listed = (nodes: Node[] | undefined): Trace =>
    transform(unionAll(namesOf(nodes).map((name) => columnTraceByName(renamed, name))));
  if (cte.search_clause?.search_seq_column)
    added.push({
      name: cte.search_clause.search_seq_column,
      trace: listed(cte.search_clause.search_col_list),
    });
  const cycle = cte.cycle_clause;
  if (cycle) {
    const trace = listed(cycle.cycle_col_list);
    if (cycle.cycle_mark_column) added.push({ name: cycle.cycle_mark_column, trace });
    if (cycle.cycle_path_column) added.push({ name: cycle.cycle_path_column, trace });
  }
  return added.length === 0 ? renamed : { columns: [...renamed.columns, ...added], rest: renamed.rest };
}

function columnTraceByName(relation: Relation, name: string): Trace {
  const found = relation.columns.filter((col) => col.name === name);
  return found.length > 0 ? unionAll(found.map((col) => col.trace)) : (relation.rest ?? OPAQUE);
}

function cteLookup(binding: CteBinding): Relation {
  if (binding.relation) return binding.relation;
  // A recursive CTE whose non-recursive term refers to itself: PostgreSQL rejects it.
  if (binding.busy) return UNKNOWN;
  binding.busy = true;
  try {
    binding.relation = binding.compute();
  } finally {
    binding.busy = false;
  }
  return binding.relation;
}

function findCte(ctes: Ctes | undefined, name: string): Relation | undefined {
  for (let scope = ctes; scope; scope = scope.parent) {
    const binding = scope.map.get(name);
    if (binding) return cteLookup(binding);
  }
  return undefined;
}

function sameRelation(a: Relation, b: Relation): boolean {
  if (a.columns.length !== b.columns.length || Boolean(a.rest) !== Boolean(b.rest)) return false;
  if (a.rest && b.rest && !sameSize(a.rest, b.rest)) return false;
  return a.columns.every((col, index) => sameSize(col.trace, b.columns[index]!.trace));
}

// ---------------------------------------------------------------------------------------------
// FROM

/** The namespace items of a FROM list; each item may refer to earlier ones only when LATERAL. */
function fromList(
  nodes: readonly Node[] | undefined,
  outer: Level,
  ctes: Ctes | undefined,
  ctx: Context,
): Item[] {
  const items: Item[] = [];
  for (const node of nodes ?? []) items.push(...fromItem(node, outer, ctes, items, ctx).items);
  return items;
}

interface FromResult {
  /** The row source as a whole, for joins and `*`. */
  readonly entry: Entry;
  readonly items: readonly Item[];
}

function fromItem(
  node: Node,
  outer: Level,
  ctes: Ctes | undefined,
  preceding: readonly Item[],
  ctx: Context,
): FromResult {
  const plain: Level = { items: [], parent: outer, ctes };
  const lateral: Level = { items: preceding, parent: outer, ctes };
  if ('RangeVar' in node) return single(rangeVarEntry(node.RangeVar, ctes, ctx));
  if ('RangeSubselect' in node) {
    const sub = node.RangeSubselect;
    const relation = queryRelation(sub.subquery, sub.lateral ? lateral : plain, ctx);
    return single(aliased(sub.alias, undefined, relation));
  }
  // Functions in FROM may always refer to earlier FROM items.
  if ('RangeFunction' in node) return single(functionEntry(node.RangeFunction, lateral, ctx));
  if ('RangeTableFunc' in node) return single(xmlTableEntry(node.RangeTableFunc, lateral, ctx));
  if ('JsonTable' in node) return single(jsonTableEntry(node.JsonTable, lateral, ctx));
  if ('RangeTableSample' in node) {
    const sample = node.RangeTableSample;
    for (const arg of [...(sample.args ?? []), ...(sample.repeatable ? [sample.repeatable] : [])])
      expression(arg, lateral, ctx);
    return sample.relation
      ? fromItem(sample.relation, outer, ctes, preceding, ctx)
      : single(entryOf(undefined, UNKNOWN));
  }
  if ('JoinExpr' in node) return joinItem(node.JoinExpr, outer, ctes, preceding, ctx);
  ctx.readsUnknown = true;
  return single(entryOf(undefined, UNKNOWN, OPAQUE));
}

function single(entry: Entry): FromResult {
  return { entry, items: [{ entry, relVisible: true, colsVisible: true }] };
}

function joinItem(
  join: JoinExpr,
  outer: Level,
  ctes: Ctes | undefined,
  preceding: readonly Item[],
  ctx: Context,
): FromResult {
  const left = join.larg
    ? fromItem(join.larg, outer, ctes, preceding, ctx)
    : single(entryOf(undefined, UNKNOWN));
  const right = join.rarg
    ? fromItem(join.rarg, outer, ctes, [...preceding, ...left.items], ctx)
    : single(entryOf(undefined, UNKNOWN));
  const inputs = [...left.items, ...right.items];
  const leftColumns = left.entry.relation.columns;
  const rightColumns = right.entry.relation.columns;
  let using = namesOf(join.usingClause);
  if (join.isNatural) {
    const rightNames = new Set(rightColumns.map((col) => col.name));
    using = [...new Set(leftColumns.map((col) => col.name).filter((name) => rightNames.has(name)))];
  }
  const usingColumns: Col[] = using.map((name) => {
    const trace = union(
      columnTraceByName(left.entry.relation, name),
      columnTraceByName(right.entry.relation, name),
    );
    return { name, trace: join.jointype === 'JOIN_FULL' ? transform(trace) : trace };
  });
  for (const col of usingColumns) recordEquality(ctx, col.trace);
  if (join.quals) condition(join.quals, { items: inputs, parent: outer, ctes }, ctx);
  const merged = new Set(using);
  const relation: Relation = {
    columns: [
      ...usingColumns,
      ...leftColumns.filter((col) => !merged.has(col.name)),
      ...rightColumns.filter((col) => !merged.has(col.name)),
    ],
    rest:
      left.entry.relation.rest || right.entry.relation.rest
        ? union(left.entry.relation.rest ?? CLEAN, right.entry.relation.rest ?? CLEAN)
        : null,
  };
  const entry = aliased(join.alias, undefined, relation);
  if (join.alias) return { entry, items: [{ entry, relVisible: true, colsVisible: true }] };
  const items: Item[] = [
    ...inputs.map((item) => ({ ...item, colsVisible: false })),
    { entry, relVisible: false, colsVisible: true },
  ];
  if (join.join_using_alias?.aliasname)
    items.push({
      entry: entryOf(join.join_using_alias.aliasname, { columns: usingColumns, rest: null }),
      relVisible: true,
      colsVisible: false,
    });
  return { entry, items };
}

/** An entry named by its alias, with the alias's column names applied in order. */
function aliased(alias: Alias | undefined, fallbackName: string | undefined, relation: Relation): Entry {
  return entryOf(alias?.aliasname ?? fallbackName, renameColumns(relation, namesOf(alias?.colnames)));
}

function renameColumns(relation: Relation, names: readonly string[]): Relation {
  if (names.length === 0) return relation;
  return {
    ...relation,
    columns: relation.columns.map((col, index) =>
      index < names.length ? { name: names[index]!, trace: col.trace } : col,
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Relations of the catalog

type Found =
  | {
      readonly kind: 'table';
      readonly table: { schema: string; name: string; columns: readonly { name: string }[] };
    }
  | { readonly kind: 'view'; readonly view: CatalogViewEntry; readonly fromSession: boolean }
  | { readonly kind: 'system'; readonly schema: string; readonly name: string };

/**
 * The relations a name may denote. Unqualified names are looked up in pg_temp, pg_catalog and then
 * the search path, under every search path the session may have. A view created in the session
 * may have been dropped or rolled back since, so the search goes on past it to what it would shadow.
 */
function lookupRelation(schema: string | undefined, name: string, ctx: Context): Found[] {
  const found = new Map<string, Found>();
  /** Looks through `schemas` in order; stops at the first that holds the name unless `every`. */
  const search = (schemas: readonly string[], every: boolean): void => {
    for (const candidate of schemas) {
      const key = qualifiedName(candidate, name);
      const sessionViews = ctx.session.views.get(key) ?? [];
      sessionViews.forEach((view, index) => {
        found.set(`s${index}:${key}`, { kind: 'view', view, fromSession: true });
      });
      const table = ctx.catalog.tables.get(key);
      const view = ctx.catalog.views.get(key);
      if (table) found.set('t' + key, { kind: 'table', table });
      else if (view) found.set('v' + key, { kind: 'view', view, fromSession: false });
      else if (schema !== undefined && SYSTEM_SCHEMAS.has(candidate) && sessionViews.length === 0)
        found.set('y' + key, { kind: 'system', schema: candidate, name });
      if ((table || view) && !every) return;
    }
  };
  if (schema !== undefined) search([schema.startsWith('pg_temp') ? 'pg_temp' : schema], false);
  else {
    search(withImplicitSchemas(ctx.catalog.searchPath), false);
    for (const path of ctx.session.searchPaths) {
      if (path === null) search(allSchemas(ctx), true);
      else search(withImplicitSchemas(path), false);
    }
  }
  return [...found.values()];
}

/** pg_temp, then pg_catalog, are searched first unless the path places them. */
function withImplicitSchemas(path: readonly string[]): readonly string[] {
  const named = path.filter((schema) => schema !== '$user');
  const head: string[] = [];
  if (!named.includes('pg_temp')) head.push('pg_temp');
  if (!named.includes('pg_catalog')) head.push('pg_catalog');
  return [...head, ...named];
}

/** Every schema that holds a relation: under an unknown search path, any of them may come first. */
function allSchemas(ctx: Context): readonly string[] {
  const schemas = new Set<string>(['pg_temp', 'pg_catalog']);
  for (const table of ctx.catalog.tables.values()) schemas.add(table.schema);
  for (const view of ctx.catalog.views.values()) schemas.add(view.schema);
  for (const views of ctx.session.views.values()) for (const view of views) schemas.add(view.schema);
  return [...schemas];
}

function rangeVarEntry(range: RangeVar, ctes: Ctes | undefined, ctx: Context): Entry {
  const name = range.relname ?? '';
  if (!range.schemaname) {
    const cte = findCte(ctes, name);
    if (cte) return aliased(range.alias, name, cte);
  }
  const relation = catalogRelation(range.schemaname, name, ctx);
  const entry = aliased(range.alias, name, relation.relation);
  return {
    ...entry,
    schema: range.alias ? undefined : relation.schema,
    whole: relation.whole,
    table: relation.table,
  };
}

interface CatalogRelation {
  readonly relation: Relation;
  readonly whole: Trace;
  readonly schema: string | undefined;
  readonly table: TableRef | undefined;
}

/** The columns of a relation of the catalog or the session, each traced to itself and what it derives from. */
export function catalogRelation(schema: string | undefined, name: string, ctx: Context): CatalogRelation {
  const found = lookupRelation(schema, name, ctx);
  if (found.length === 0) {
    ctx.readsUnknown = true;
    return { relation: UNKNOWN, whole: OPAQUE, schema, table: undefined };
  }
  const relations = found.map((one) => foundRelation(one, ctx));
  const first = relations[0]!;
  if (relations.length === 1) return first;
  const whole = unionAll(relations.map((one) => one.whole));
  const names = (candidate: CatalogRelation): string =>
    JSON.stringify([candidate.relation.columns.map((col) => col.name), Boolean(candidate.relation.rest)]);
  if (relations.every((one) => names(one) === names(first))) {
    let relation = first.relation;
    for (const other of relations.slice(1)) relation = positionalUnion(relation, other.relation);
    return { relation, whole, schema: first.schema, table: first.table };
  }
  // Different shapes: `*` cannot be matched to either, but a named column is whichever has it.
  const relation: Relation = {
    columns: [],
    rest: unionAll(relations.map((one) => wholeOf(one.relation))),
    named: (column) => {
      const traces = relations.flatMap((one) => {
        const trace = columnOf(entryOf(undefined, one.relation), column) ?? maybeNamed(one.relation, column);
        return trace ? [trace] : [];
      });
      return traces.length > 0 ? unionAll(traces) : OPAQUE;
    },
  };
  return { relation, whole, schema: first.schema, table: first.table };
}

function maybeNamed(relation: Relation, column: string): Trace | undefined {
  if (!relation.rest) return undefined;
  return relation.named ? relation.named(column) : relation.rest;
}

function foundRelation(found: Found, ctx: Context): CatalogRelation {
  if (found.kind === 'table') {
    const ref: TableRef = { schema: found.table.schema, table: found.table.name };
    recordRead(ctx, ref);
    const settings = ref.schema === 'pg_catalog' && ref.table === 'pg_settings' ? allSettings(ctx) : CLEAN;
    const columns = found.table.columns.map((col) => ({
      name: col.name,
      trace: union(ofColumn({ ...ref, column: col.name }), settings),
    }));
    const relation: Relation = { columns, rest: null };
    return { relation, whole: ofRow(ref, wholeOf(relation)), schema: ref.schema, table: ref };
  }
  if (found.kind === 'system') {
    const ref: TableRef = { schema: found.schema, table: found.name };
    recordRead(ctx, ref);
    const settings = ref.schema === 'pg_catalog' && ref.table === 'pg_settings' ? allSettings(ctx) : CLEAN;
    const relation: Relation = {
      columns: [],
      rest: ofRow(ref, settings),
      named: (column) => union(ofColumn({ ...ref, column }), settings),
    };
    return { relation, whole: ofRow(ref, settings), schema: ref.schema, table: ref };
  }
  const view = found.view;
  const ref: TableRef = { schema: view.schema, table: view.name };
  recordRead(ctx, ref);
  const expanded = expandView(view, found.fromSession, ctx);
  const relation: Relation = {
    columns: expanded.columns.map((col) => ({
      name: col.name,
      trace: union(col.trace, ofColumn({ ...ref, column: col.name })),
    })),
    rest: expanded.rest,
  };
  return { relation, whole: ofRow(ref, wholeOf(relation)), schema: ref.schema, table: undefined };
}

function expandView(view: CatalogViewEntry, fromSession: boolean, ctx: Context): Relation {
  const stmts = ctx.viewDepth < ctx.maxViewDepth ? parseCached(view.definition) : null;
  const query = stmts?.length === 1 ? stmts[0]!.stmt : undefined;
  if (!query || !('SelectStmt' in query)) {
    ctx.readsUnknown = true;
    return view.columns
      ? { columns: view.columns.map((name) => ({ name, trace: OPAQUE })), rest: null }
      : UNKNOWN;
  }
  ctx.viewDepth++;
  if (!fromSession) ctx.hidePredicates++;
  try {
    // A view sees no CTE or column of the query that reads it.
    return renameColumns(queryRelation(query, ROOT, ctx), view.columns ?? []);
  } finally {
    ctx.viewDepth--;
    if (!fromSession) ctx.hidePredicates--;
  }
}

// ---------------------------------------------------------------------------------------------
// Functions, XMLTABLE and JSON_TABLE in FROM

function functionEntry(range: RangeFunction, level: Level, ctx: Context): Entry {
  const columns: Col[] = [];
  let rest: Trace | null = null;
  const functions = range.functions ?? [];
  const aliasName = range.alias?.aliasname;
  for (const item of functions) {
    const parts = 'List' in item ? (item.List.items ?? []) : [item];
    const call = parts[0];
    if (!call) continue;
    const own = parts[1] && 'List' in parts[1] ? parts[1].List.items : undefined;
    const definitions =
      columnDefinitions(own) ?? (functions.length === 1 ? columnDefinitions(range.coldeflist) : undefined);
    const produced = functionColumns(
      call,
      definitions,
      functions.length === 1 ? aliasName : undefined,
      level,
      ctx,
    );
    for (const col of produced.columns) columns.push(col);
    if (produced.rest) rest = union(rest ?? CLEAN, produced.rest);
  }
  if (range.ordinality) columns.push({ name: 'ordinality', trace: CLEAN });
  const first = functions[0];
  const firstCall = first && 'List' in first ? first.List.items?.[0] : first;
  const fallback =
    functions.length === 1 && firstCall && 'FuncCall' in firstCall
      ? functionName(firstCall.FuncCall).name
      : undefined;
  return aliased(range.alias, fallback, { columns, rest });
}

/** Names of a column definition list (`AS (a int, b text)`), or undefined without one. */
function columnDefinitions(nodes: readonly Node[] | undefined): string[] | undefined {
  if (!nodes?.length) return undefined;
  return nodes.flatMap((def) => ('ColumnDef' in def && def.ColumnDef.colname ? [def.ColumnDef.colname] : []));
}

function functionColumns(
  call: Node,
  definitions: readonly string[] | undefined,
  aliasName: string | undefined,
  level: Level,
  ctx: Context,
): Relation {
  const trace = expression(call, level, ctx);
  if (!('FuncCall' in call)) return { columns: [{ name: aliasName ?? figureName(call), trace }], rest: null };
  const name = functionName(call.FuncCall).name ?? '?column?';
  const shape = fromShapeOf(call.FuncCall, ctx);
  if (definitions) return { columns: definitions.map((column) => ({ name: column, trace })), rest: null };
  if (!shape) return { columns: [], rest: trace };
  switch (shape.kind) {
    case 'columns':
      return { columns: shape.names.map((column) => ({ name: column, trace })), rest: null };
    case 'per-argument': {
      const count = call.FuncCall.args?.length ?? 0;
      if (count <= 1) return { columns: [{ name: aliasName ?? name, trace }], rest: null };
      return { columns: Array.from({ length: count }, () => ({ name, trace })), rest: null };
    }
    case 'record':
      return { columns: [], rest: trace };
    case 'row-of-first-argument': {
      const names = rowTypeNames(call, ctx);
      return names
        ? { columns: names.map((column) => ({ name: column, trace })), rest: null }
        : { columns: [], rest: trace };
    }
    case 'scalar':
      return { columns: [{ name: aliasName ?? name, trace }], rest: null };
  }
}

function xmlTableEntry(table: RangeTableFunc, level: Level, ctx: Context): Entry {
  let trace = union(
    expressionOrClean(table.docexpr, level, ctx),
    expressionOrClean(table.rowexpr, level, ctx),
  );
  for (const namespace of table.namespaces ?? []) trace = union(trace, expression(namespace, level, ctx));
  const columns: Col[] = [];
  const definitions = (table.columns ?? []).flatMap((node) =>
    'RangeTableFuncCol' in node ? [node.RangeTableFuncCol] : [],
  );
  for (const col of definitions) {
    trace = union(
      trace,
      union(expressionOrClean(col.colexpr, level, ctx), expressionOrClean(col.coldefexpr, level, ctx)),
    );
  }
  trace = transform(trace);
  for (const col of definitions)
    columns.push({ name: col.colname ?? '?column?', trace: col.for_ordinality ? CLEAN : trace });
  return aliased(table.alias, 'xmltable', { columns, rest: null });
}

function jsonTableEntry(table: JsonTable, level: Level, ctx: Context): Entry {
  let trace = expressionOrClean(table.context_item?.raw_expr, level, ctx);
  for (const arg of table.passing ?? []) trace = union(trace, expression(arg, level, ctx));
  trace = transform(trace);
  const columns: Col[] = [];
  const walk = (nodes: readonly Node[] | undefined): void => {
    for (const node of nodes ?? []) {
      if (!('JsonTableColumn' in node)) continue;
      const col = node.JsonTableColumn;
      if (col.coltype === 'JTC_NESTED') walk(col.columns);
      else
        columns.push({
          name: col.name ?? '?column?',
          trace: col.coltype === 'JTC_FOR_ORDINALITY' ? CLEAN : trace,
        });
    }
  };
  walk(table.columns);
  return aliased(table.alias, 'json_table', { columns, rest: null });
}

// ---------------------------------------------------------------------------------------------
// Expressions

/** Node types that combine the lineage of their parts and add nothing we cannot see. */
const COMBINING: ReadonlySet<string> = new Set([
  'BoolExpr',
  'NullTest',
  'BooleanTest',
  'CaseExpr',
  'CaseWhen',
  'CoalesceExpr',
  'MinMaxExpr',
  'RowExpr',
  'A_ArrayExpr',
  'A_Indices',
  'XmlExpr',
  'XmlSerialize',
  'GroupingFunc',
  'List',
  'JsonValueExpr',
  'JsonKeyValue',
  'JsonObjectConstructor',
  'JsonArrayConstructor',
  'JsonArrayQueryConstructor',
  'JsonFuncExpr',
  'JsonIsPredicate',
  'JsonParseExpr',
  'JsonScalarExpr',
  'JsonSerializeExpr',
  'JsonBehavior',
  'JsonArgument',
  'JsonTablePathSpec',
]);

/** Node types that carry no data: constants, parameters, type names, session facts. */
const INERT: ReadonlySet<string> = new Set([
  'A_Const',
  'ParamRef',
  'SQLValueFunction',
  'SetToDefault',
  'MergeSupportFunc',
  'CurrentOfExpr',
  'TypeName',
  'String',
  'Integer',
  'Float',
  'Boolean',
  'BitString',
  'A_Star',
  'JsonFormat',
  'JsonOutput',
  'JsonReturning',
]);

/** The lineage of an expression's value. */
export function expression(node: Node, level: Level, ctx: Context): Trace {
  if (++ctx.depth > MAX_DEPTH) {
    ctx.depth--;
    ctx.readsUnknown = true;
    return OPAQUE;
  }
  try {
    return expressionOf(node, level, ctx);
  } finally {
    ctx.depth--;
  }
}

function expressionOrClean(node: Node | undefined, level: Level, ctx: Context): Trace {
  return node ? expression(node, level, ctx) : CLEAN;
}

function expressionOf(node: Node, level: Level, ctx: Context): Trace {
  if ('ColumnRef' in node) return columnReference(node.ColumnRef, level);
  if ('FuncCall' in node) return functionCall(node.FuncCall, level, ctx);
  if ('A_Expr' in node) return operatorExpression(node.A_Expr, level, ctx);
  if ('TypeCast' in node) {
    const arg = node.TypeCast.arg;
    if (!arg || ('A_Const' in arg && arg.A_Const.isnull)) return CLEAN;
    const value = expression(arg, level, ctx);
    // A cast that may reject the value is an error oracle on it.
    if (!totalCast(node.TypeCast.typeName)) recordPredicate(ctx, value);
    return transform(value);
  }
  if ('CaseExpr' in node) return caseExpression(node.CaseExpr, level, ctx);
  if ('BoolExpr' in node || 'CoalesceExpr' in node)
    return shortCircuit(
      'BoolExpr' in node ? (node.BoolExpr.args ?? []) : (node.CoalesceExpr.args ?? []),
      level,
      ctx,
    );
  if ('CollateClause' in node) return expressionOrClean(node.CollateClause.arg, level, ctx);
  if ('NamedArgExpr' in node) return expressionOrClean(node.NamedArgExpr.arg, level, ctx);
  if ('A_Indirection' in node) return indirection(node.A_Indirection, level, ctx);
  if ('SubLink' in node) return subLink(node.SubLink, level, ctx);
  if ('SelectStmt' in node) return transform(wholeOf(queryRelation(node, level, ctx)));
  if ('MultiAssignRef' in node) return expressionOrClean(node.MultiAssignRef.source, level, ctx);
  if ('JsonObjectAgg' in node || 'JsonArrayAgg' in node) {
    const aggregate = 'JsonObjectAgg' in node ? node.JsonObjectAgg : node.JsonArrayAgg;
    // Every object has a `constructor`; only the parser's own one is the aggregate's clauses.
    const clauses = Object.hasOwn(aggregate, 'constructor') ? aggregate.constructor : undefined;
    if (clauses?.agg_filter) recordPredicate(ctx, expression(clauses.agg_filter, level, ctx));
    if (clauses?.over) windowPredicates(clauses.over, level, ctx);
    const order = sortNodes(clauses?.agg_order, level, ctx);
    recordPredicate(ctx, order);
    return transform(union(parts(aggregate.arg, level, ctx), order));
  }
  const kind = Object.keys(node)[0] ?? '';
  if (INERT.has(kind)) return CLEAN;
  const combined = transform(parts((node as Record<string, unknown>)[kind], level, ctx));
  if (COMBINING.has(kind)) return combined;
  ctx.readsUnknown = true;
  return makeOpaque(combined);
}

/** The union of the lineage of every expression nested in a node's fields. */
function parts(value: unknown, level: Level, ctx: Context): Trace {
  if (Array.isArray(value)) return unionAll(value.map((item) => parts(item, level, ctx)));
  if (value === null || typeof value !== 'object') return CLEAN;
  const keys = Object.keys(value);
  if (keys.length === 1 && /^[A-Z]/.test(keys[0]!)) return expression(value as Node, level, ctx);
  return unionAll(keys.map((key) => parts((value as Record<string, unknown>)[key], level, ctx)));
}

function sortNodes(nodes: readonly Node[] | undefined, level: Level, ctx: Context): Trace {
  return unionAll(
    (nodes ?? []).map((sort) =>
      'SortBy' in sort && sort.SortBy.node ? expression(sort.SortBy.node, level, ctx) : CLEAN,
    ),
  );
}

function columnReference(ref: ColumnRef, level: Level): Trace {
  const fields = ref.fields ?? [];
  const last = fields[fields.length - 1];
  if (last && 'A_Star' in last) {
    // `t.*` as a value (in a function call, ROW, a cast) is the whole row of t.
    if (fields.length === 1)
      return unionAll(level.items.filter((item) => item.colsVisible).map((item) => item.entry.whole));
    const names = fields.slice(0, -1).map(stringOf);
    const table = names[names.length - 1];
    const entry =
      table === undefined
        ? undefined
        : findRelation(names.length >= 2 ? names[names.length - 2] : undefined, table, level);
    return entry?.whole ?? OPAQUE;
  }
  const names = fields.map(stringOf);
  if (names.some((name) => name === undefined)) return OPAQUE;
  return resolveColumn(names as string[], level) ?? OPAQUE;
}

function indirection(node: A_Indirection, level: Level, ctx: Context): Trace {
  const steps = node.indirection ?? [];
  let base: Trace | undefined;
  const arg = node.arg;
  const field = stringOf(steps[0]);
  // `(c).ssn` is column ssn of relation c when c names a relation and not a column.
  if (arg && 'ColumnRef' in arg && field !== undefined) {
    const names = (arg.ColumnRef.fields ?? []).map(stringOf);
    if (names.length === 1 && names[0] !== undefined && resolveColumnOnly(names[0], level) === undefined) {
      const entry = findRelation(undefined, names[0], level);
      if (entry) base = columnOf(entry, field) ?? entry.whole;
    }
  }
  base ??= expressionOrClean(arg, level, ctx);
  let subscripts = CLEAN;
  for (const step of steps)
    if ('A_Indices' in step) subscripts = union(subscripts, parts(step.A_Indices, level, ctx));
  recordPredicate(ctx, subscripts);
  return subscripts === CLEAN ? base : transform(union(base, subscripts));
}

function subLink(link: SubLink, level: Level, ctx: Context): Trace {
  const { result: relation, predicates } = withLevel(ctx, () => queryRelation(link.subselect, level, ctx));
  const values = wholeOf(relation);
  switch (link.subLinkType) {
    case 'EXPR_SUBLINK':
      return values;
    case 'ARRAY_SUBLINK':
    case 'MULTIEXPR_SUBLINK':
      return transform(values);
    case 'EXISTS_SUBLINK':
      // The value is whether the subquery's predicates hold.
      return transform(predicates);
    default: {
      const test = expressionOrClean(link.testexpr, level, ctx);
      const operator = link.operName ? operatorTrust(link.operName, ctx) : CLEAN;
      return transform(unionAll([test, values, predicates, operator]));
    }
  }
}

/** CASE: the value of its result, chosen by conditions that are always conditions on what they read. */
function caseExpression(node: CaseExpr, level: Level, ctx: Context): Trace {
  const subject = expressionOrClean(node.arg as Node | undefined, level, ctx);
  recordPredicate(ctx, subject);
  let trace = subject;
  for (const when of node.args ?? []) {
    if (!('CaseWhen' in when)) continue;
    const condition = expressionOrClean(when.CaseWhen.expr as Node | undefined, level, ctx);
    recordPredicate(ctx, condition);
    trace = union(
      trace,
      union(condition, expressionOrClean(when.CaseWhen.result as Node | undefined, level, ctx)),
    );
  }
  return transform(union(trace, expressionOrClean(node.defresult as Node | undefined, level, ctx)));
}

/**
 * AND, OR and COALESCE evaluate their later arguments or not depending on the earlier ones: when a
 * later one may fail, that choice is an oracle on every argument, so all are conditions.
 */
function shortCircuit(args: readonly Node[], level: Level, ctx: Context): Trace {
  const traces = args.map((arg) => expression(arg, level, ctx));
  if (args.some(mayFail)) for (const trace of traces) recordPredicate(ctx, trace);
  return transform(unionAll(traces));
}

function operatorExpression(expr: A_Expr, level: Level, ctx: Context): Trace {
  const left = expressionOrClean(expr.lexpr, level, ctx);
  const right = expressionOrClean(expr.rexpr, level, ctx);
  // Arithmetic can overflow or divide by zero, a pattern can be malformed: conditions on the value.
  const total = totalOperands(expr);
  if (!total.left) recordPredicate(ctx, left);
  if (!total.right) recordPredicate(ctx, right);
  const operands = union(left, right);
  const checked =
    expr.kind === 'AEXPR_BETWEEN' ||
    expr.kind === 'AEXPR_NOT_BETWEEN' ||
    expr.kind === 'AEXPR_BETWEEN_SYM' ||
    expr.kind === 'AEXPR_NOT_BETWEEN_SYM'
      ? CLEAN
      : operatorTrust(expr.name, ctx);
  return transform(union(operands, checked));
}

/** CLEAN for a built-in operator; OPAQUE for one the session or database may have defined. */
function operatorTrust(name: readonly Node[] | undefined, ctx: Context): Trace {
  const names = (name ?? []).map(stringOf);
  const operator = names[names.length - 1];
  const schema = names.length > 1 ? names[0] : undefined;
  if (
    operator !== undefined &&
    BUILTIN_OPERATORS.has(operator) &&
    (schema === undefined || schema === 'pg_catalog') &&
    !ctx.catalog.userRoutines.has(operator) &&
    !ctx.session.routines.has(operator)
  )
    return CLEAN;
  recordUnknownCode(ctx);
  return OPAQUE;
}

function functionName(call: FuncCall): { schema: string | undefined; name: string | undefined } {
  const names = (call.funcname ?? []).map(stringOf);
  return {
    name: names[names.length - 1],
    schema: names.length > 1 ? names[names.length - 2] : undefined,
  };
}

function trustedFunction(schema: string | undefined, name: string, ctx: Context): boolean {
  if (schema !== undefined && schema !== 'pg_catalog') return false;
  if (schema === undefined && (ctx.catalog.userRoutines.has(name) || ctx.session.routines.has(name)))
    return false;
  return (
    PURE_FUNCTIONS.has(name) ||
    SINK_FUNCTIONS.has(name) ||
    name === 'set_config' ||
    name === 'current_setting'
  );
}

function functionCall(call: FuncCall, level: Level, ctx: Context): Trace {
  const args = (call.args ?? []).map((arg) => expression(arg, level, ctx));
  const { schema: calledSchema, name: calledName } = functionName(call);
  const builtin = calledName !== undefined && trustedFunction(calledSchema, calledName, ctx);
  // count(x) looks only at whether x is NULL, count(DISTINCT x) at which values are equal: the true count.
  if (builtin && calledName === 'count' && !call.agg_order && !call.agg_filter && !call.over) {
    if (call.agg_distinct) for (const arg of args) recordEquality(ctx, arg);
    return CLEAN;
  }
  // A value may reach the result only through positions where the function cannot fail, wait or change
  // the number of rows on it; anywhere else it is a condition (a set-returning function's count, ...).
  // Sinks and functions Gatehouse cannot see into are writes of their arguments instead (below).
  if (builtin && PURE_FUNCTIONS.has(calledName))
    args.forEach((arg, index) => {
      // array_agg(DISTINCT email): the value passes on, compared for equality with the others.
      if (call.agg_distinct && totalArgument({ ...call, agg_distinct: false }, calledName, index))
        recordEquality(ctx, arg);
      else if (!totalArgument(call, calledName, index)) recordPredicate(ctx, arg);
    });
  let trace = unionAll(args);
  if (call.agg_order) {
    // Ordered-set aggregates (percentile_disc ... WITHIN GROUP (ORDER BY ssn)) return the ordered values.
    const order = sortNodes(call.agg_order, level, ctx);
    recordPredicate(ctx, order);
    trace = union(trace, order);
  }
  if (call.agg_filter) {
    const filter = expression(call.agg_filter, level, ctx);
    recordPredicate(ctx, filter);
    trace = union(trace, filter);
  }
  if (call.over) windowPredicates(call.over, level, ctx);
  const { schema, name } = functionName(call);
  const display = (call.funcname ?? []).map(stringOf).join('.');
  if (name === undefined || !trustedFunction(schema, name, ctx)) {
    recordUnknownCode(ctx);
    if (!isClean(trace)) recordWrite(ctx, { kind: 'function', name: display }, trace);
    return makeOpaque(transform(trace));
  }
  if (name === 'set_config') return setConfig(call, args, ctx);
  if (name === 'current_setting') return currentSetting(call, ctx);
  if (SINK_FUNCTIONS.has(name) && !isClean(trace)) recordWrite(ctx, { kind: 'function', name }, trace);
  return transform(trace);
}

function isClean(trace: Trace): boolean {
  return trace.columns.size === 0 && trace.rows.size === 0 && !trace.opaque;
}

function setConfig(call: FuncCall, args: readonly Trace[], ctx: Context): Trace {
  const setting = constantString(call.args?.[0]);
  const value = args[1] ?? CLEAN;
  const stored = union(value, args[0] ?? CLEAN);
  if (setting?.toLowerCase() === 'search_path') {
    const path = constantString(call.args?.[1]);
    ctx.effects.push({ kind: 'search-path', path: path === undefined ? null : parseSearchPath(path) });
  }
  if (!isClean(stored)) {
    const key = setting === undefined ? null : setting.toLowerCase();
    const seen = ctx.settingsWritten.get(key);
    ctx.settingsWritten.set(key, seen ? union(seen, stored) : stored);
    recordWrite(ctx, { kind: 'function', name: 'set_config' }, stored);
  }
  return transform(stored);
}

function currentSetting(call: FuncCall, ctx: Context): Trace {
  ctx.settingsRead = true;
  const setting = constantString(call.args?.[0]);
  return transform(settingLineage(setting === undefined ? undefined : setting.toLowerCase(), ctx));
}

/** What a setting may hold after the session's set_config calls; all settings when `name` is undefined. */
export function settingLineage(name: string | undefined, ctx: Context): Trace {
  if (name === undefined) return allSettings(ctx);
  const session = ctx.session;
  let trace = CLEAN;
  const stored = session.settings.get(name);
  if (stored) trace = union(trace, fromLineage(stored));
  if (session.anySetting) trace = union(trace, fromLineage(session.anySetting));
  trace = union(trace, union(ctx.pendingSettings.get(name) ?? CLEAN, ctx.pendingSettings.get(null) ?? CLEAN));
  if (!isClean(trace)) ctx.usedSession = true;
  return trace;
}

function allSettings(ctx: Context): Trace {
  const session = ctx.session;
  let trace = unionAll([...session.settings.values()].map(fromLineage));
  if (session.anySetting) trace = union(trace, fromLineage(session.anySetting));
  trace = union(trace, unionAll(ctx.pendingSettings.values()));
  if (!isClean(trace)) ctx.usedSession = true;
  return trace;
}

/** `'"$user", public'` → ['$user', 'public']. */
function parseSearchPath(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) =>
      part.startsWith('"') && part.endsWith('"')
        ? part.slice(1, -1).replaceAll('""', '"')
        : part.toLowerCase(),
    );
}

function constantString(node: Node | undefined): string | undefined {
  if (!node) return undefined;
  if ('A_Const' in node) return node.A_Const.sval?.sval;
  if ('TypeCast' in node) return constantString(node.TypeCast.arg);
  return undefined;
}

export function stringOf(node: Node | undefined): string | undefined {
  return node && 'String' in node ? (node.String.sval ?? '') : undefined;
}

export function namesOf(nodes: readonly Node[] | undefined): string[] {
  return (nodes ?? []).flatMap((node) => {
    const name = stringOf(node);
    return name === undefined ? [] : [name];
  });
}

// ---------------------------------------------------------------------------------------------
// INSERT, UPDATE, DELETE, MERGE

type ModifyNode = Extract<
  Node,
  { InsertStmt: unknown } | { UpdateStmt: unknown } | { DeleteStmt: unknown } | { MergeStmt: unknown }
>;

/** Records what a data-modifying statement writes; returns its RETURNING columns, or null without RETURNING. */
export function modifyRelation(node: ModifyNode, outer: Level, ctx: Context): Relation | null {
  const stmt =
    'InsertStmt' in node
      ? node.InsertStmt
      : 'UpdateStmt' in node
        ? node.UpdateStmt
        : 'DeleteStmt' in node
          ? node.DeleteStmt
          : node.MergeStmt;
  const ctes = stmt.withClause ? withCtes(stmt.withClause, outer, ctx) : outer.ctes;
  const base: Level = { items: [], parent: outer, ctes };
  const range = stmt.relation;
  const targetName = range?.relname ?? '';
  const target = catalogRelation(range?.schemaname, targetName, ctx);
  const refName = range?.alias?.aliasname ?? targetName;
  const original = target.relation;
  const targetEntry: Entry = { ...entryOf(refName, original, target.whole), table: target.table };
  const targetItem: Item = { entry: targetEntry, relVisible: true, colsVisible: true };
  /** New value lineage per target column; absent columns keep their value. */
  const assigned = new Map<string, Trace>();
  const assign = (column: string, trace: Trace): void => {
    assigned.set(column, union(assigned.get(column) ?? CLEAN, trace));
    const destination = columnTraceByName(original, column);
    for (const ref of destination.columns.values()) recordWrite(ctx, { kind: 'column', column: ref }, trace);
    if (destination.columns.size === 0)
      recordWrite(
        ctx,
        { kind: 'column', column: { schema: range?.schemaname ?? '', table: targetName, column } },
        trace,
      );
  };
  let others: readonly Item[] = [];
  let keepsOld = false;

  if ('InsertStmt' in node) {
    const insert = node.InsertStmt;
    const columns = insert.cols
      ? insert.cols.flatMap((col) => ('ResTarget' in col && col.ResTarget.name ? [col.ResTarget.name] : []))
      : original.columns.map((col) => col.name);
    const partial = new Set(
      (insert.cols ?? []).flatMap((col) =>
        'ResTarget' in col && col.ResTarget.indirection?.length ? [col.ResTarget.name ?? ''] : [],
      ),
    );
    const source = insert.selectStmt ? queryRelation(insert.selectStmt, base, ctx) : EMPTY;
    const inserted = new Map<string, Trace>();
    // Without a column list, columns past the values get their defaults.
    const filled = insert.cols || source.rest ? columns : columns.slice(0, source.columns.length);
    filled.forEach((column, index) => {
      let trace = source.columns[index]?.trace ?? CLEAN;
      if (source.rest) trace = union(trace, source.rest);
      if (partial.has(column)) trace = union(trace, columnTraceByName(original, column));
      inserted.set(column, trace);
      assign(column, trace);
    });
    // A relation the catalog does not know (made on the database directly), with no column list: what
    // goes where cannot be told, so every value written lands in a column no policy masks.
    if (!insert.cols && original.columns.length === 0)
      assign('?column?', unionAll([...source.columns.map((col) => col.trace), source.rest ?? CLEAN]));
    const conflict = insert.onConflictClause;
    if (conflict?.action === 'ONCONFLICT_UPDATE') {
      keepsOld = true;
      // Columns left out of the INSERT get their default, which may be any expression.
      const excluded: Relation = {
        columns: original.columns.map((col) => ({
          name: col.name,
          trace: inserted.get(col.name) ?? col.trace,
        })),
        rest: original.rest,
      };
      const level: Level = {
        items: [targetItem, { entry: entryOf('excluded', excluded), relVisible: true, colsVisible: false }],
        parent: base,
        ctes,
      };
      assignments(conflict.targetList, level, ctx, assign);
      if (conflict.whereClause) recordPredicate(ctx, expression(conflict.whereClause, level, ctx));
    }
    if (conflict?.infer?.whereClause)
      recordPredicate(
        ctx,
        expression(conflict.infer.whereClause, { items: [targetItem], parent: base, ctes }, ctx),
      );
  } else if ('UpdateStmt' in node) {
    const update = node.UpdateStmt;
    others = fromList(update.fromClause, base, ctes, ctx);
    const level: Level = { items: [targetItem, ...others], parent: base, ctes };
    if (update.whereClause) recordPredicate(ctx, expression(update.whereClause, level, ctx));
    assignments(update.targetList, level, ctx, assign);
  } else if ('DeleteStmt' in node) {
    const remove = node.DeleteStmt;
    others = fromList(remove.usingClause, base, ctes, ctx);
    const level: Level = { items: [targetItem, ...others], parent: base, ctes };
    if (remove.whereClause) recordPredicate(ctx, expression(remove.whereClause, level, ctx));
  } else {
    const merge = node.MergeStmt;
    keepsOld = true;
    others = merge.sourceRelation ? fromItem(merge.sourceRelation, base, ctes, [], ctx).items : [];
    const level: Level = { items: [targetItem, ...others], parent: base, ctes };
    if (merge.joinCondition) recordPredicate(ctx, expression(merge.joinCondition, level, ctx));
    for (const clauseNode of merge.mergeWhenClauses ?? []) {
      if (!('MergeWhenClause' in clauseNode)) continue;
      const clause = clauseNode.MergeWhenClause;
      if (clause.condition) recordPredicate(ctx, expression(clause.condition, level, ctx));
      if (clause.commandType === 'CMD_UPDATE') assignments(clause.targetList, level, ctx, assign);
      if (clause.commandType === 'CMD_INSERT') {
        const columns = clause.targetList
          ? clause.targetList.flatMap((col) =>
              'ResTarget' in col && col.ResTarget.name ? [col.ResTarget.name] : [],
            )
          : original.columns.map((col) => col.name);
        const values = clause.values ?? [];
        columns.forEach((column, index) => {
          const value = values[index];
          assign(column, value ? expression(value, level, ctx) : CLEAN);
        });
      }
    }
  }

  const returning = stmt.returningClause;
  if (!returning?.exprs?.length) return null;
  const isDelete = 'DeleteStmt' in node;
  // What RETURNING sees: the new values; an INSERT's missing columns get defaults, which may be any
  // expression, so they keep the column's own lineage; ON CONFLICT and MERGE may also keep old rows.
  const current: Relation = {
    columns: original.columns.map((col) => {
      const value = assigned.get(col.name);
      if (isDelete || value === undefined) return col;
      return { name: col.name, trace: keepsOld ? union(value, col.trace) : value };
    }),
    rest: original.rest,
  };
  const targetRef = target.table ?? { schema: range?.schemaname ?? '', table: targetName };
  const currentEntry: Entry = {
    ...entryOf(refName, current, ofRow(targetRef, wholeOf(current))),
    table: target.table,
  };
  let oldName = 'old';
  let newName = 'new';
  for (const option of returning.options ?? []) {
    if (!('ReturningOption' in option)) continue;
    if (option.ReturningOption.option === 'RETURNING_OPTION_OLD')
      oldName = option.ReturningOption.value ?? oldName;
    if (option.ReturningOption.option === 'RETURNING_OPTION_NEW')
      newName = option.ReturningOption.value ?? newName;
  }
  const level: Level = {
    items: [
      { entry: currentEntry, relVisible: true, colsVisible: true },
      ...others,
      { entry: { ...currentEntry, name: newName }, relVisible: true, colsVisible: false },
      { entry: { ...targetEntry, name: oldName }, relVisible: true, colsVisible: false },
    ],
    parent: base,
    ctes,
  };
  return targetList(returning.exprs, level, ctx);
}

/** SET clauses: `col = expr`, `col[1] = expr` (keeps the rest of col), `(a, b) = (SELECT ...)`. */
function assignments(
  targets: readonly Node[] | undefined,
  level: Level,
  ctx: Context,
  assign: (column: string, trace: Trace) => void,
): void {
  const sources = new Map<Node, Relation>();
  for (const target of targets ?? []) {
    if (!('ResTarget' in target)) continue;
    const { name, val, indirection: steps } = target.ResTarget as ResTarget;
    if (!name || !val) continue;
    let trace: Trace;
    if ('MultiAssignRef' in val) {
      const { source, colno } = val.MultiAssignRef;
      if (!source) continue;
      let relation = sources.get(source);
      if (!relation) {
        relation =
          'SubLink' in source
            ? queryRelation(source.SubLink.subselect, level, ctx)
            : 'RowExpr' in source
              ? {
                  columns: (source.RowExpr.args ?? []).map((arg, index) => ({
                    name: String(index),
                    trace: expression(arg, level, ctx),
                  })),
                  rest: null,
                }
              : { columns: [], rest: expression(source, level, ctx) };
        sources.set(source, relation);
      }
      const picked = relation.columns[(colno ?? 1) - 1]?.trace ?? wholeOf(relation);
      trace = relation.rest ? union(picked, relation.rest) : picked;
    } else {
      trace = expression(val, level, ctx);
    }
    if (steps?.length) {
      trace = union(trace, resolveColumn([name], level) ?? CLEAN);
      for (const step of steps)
        if ('A_Indices' in step) trace = union(trace, parts(step.A_Indices, level, ctx));
    }
    assign(name, trace);
  }
}
