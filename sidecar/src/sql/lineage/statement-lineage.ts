import type { CopyStmt, ExplainStmt, Node, VariableSetStmt } from 'libpg-query';
import { type Catalog, qualifiedName } from './catalog.ts';
import {
  type Context,
  createContext,
  recordEquality,
  recordPredicate,
  recordRead,
  recordUnknownCode,
  recordWrite,
} from './context.ts';
import {
  catalogRelation,
  expression,
  modifyRelation,
  namesOf,
  queryRelation,
  ROOT,
  settingLineage,
  stringOf,
} from './query-lineage.ts';
import type { Relation } from './scope.ts';
import { wholeOf } from './scope.ts';
import type { SessionState } from './session.ts';
import { CLEAN, fromLineage, OPAQUE, type Trace, toLineage, union, unionAll } from './trace.ts';
import type { ColumnLineage, SessionEffect, StatementLineage } from './types.ts';
import { viewFromStatement } from './view-from-create-view.ts';

/** Statement types that never return rows (DDL, transaction control, session commands). */
const NO_ROWS =
  /^(Create|Alter|Drop|Grant|Comment|Truncate|Lock|Listen|Unlisten|Notify|Vacuum|CheckPoint|Load|Reindex|Cluster|RefreshMatView|Discard|Rule|SecLabel|ReassignOwned|ImportForeignSchema|Rename|Define|CompositeType|ConstraintsSet|Index)/;

const CURSOR_OPT_HOLD = 0x20;
const UNKNOWN_ROWS: Relation = Object.freeze({ columns: [], rest: OPAQUE });

export interface StatementInput {
  readonly node: Node;
  /** The text of this statement alone (CREATE VIEW keeps its query as text). */
  readonly text: string;
}

export interface AnalysedStatement {
  readonly lineage: StatementLineage;
  /** The lineage depends on cursors, prepared statements or settings of the session. */
  readonly usedSession: boolean;
}

export function analyseStatement(
  input: StatementInput,
  catalog: Catalog,
  session: SessionState,
  maxViewDepth: number,
): AnalysedStatement {
  let ctx = createContext(catalog, session, maxViewDepth);
  let rows = statementRows(input, ctx);
  // A statement that stores values with set_config and reads settings back sees its own values.
  if (ctx.settingsWritten.size > 0 && ctx.settingsRead) {
    ctx = createContext(catalog, session, maxViewDepth, new Map(ctx.settingsWritten));
    rows = statementRows(input, ctx);
  }
  return { lineage: finish(kindOf(input.node), rows, ctx), usedSession: ctx.usedSession };
}

function finish(kind: string, rows: Relation | null, ctx: Context): StatementLineage {
  const effects: SessionEffect[] = [...ctx.effects];
  for (const [name, trace] of ctx.settingsWritten)
    effects.push({ kind: 'setting', name, lineage: toLineage(trace) });
  const columns: ColumnLineage[] | null = rows
    ? rows.columns.map((col) => ({
        name: col.name,
        ...toLineage(rows.rest ? union(col.trace, rows.rest) : col.trace),
      }))
    : null;
  if (rows?.rest && columns) columns.push({ name: '?column?', ...toLineage(rows.rest) });
  return {
    kind,
    columns,
    exact: rows === null || rows.rest === null,
    reads: [...ctx.reads.values()],
    readsUnknown: ctx.readsUnknown,
    predicates: toLineage(ctx.predicates),
    ...(ctx.equalities.length > 0 && { equalities: ctx.equalities.map(toLineage) }),
    writes: [...ctx.writes.values()].map(({ target, trace }) => ({ target, ...toLineage(trace) })),
    effects,
    ...(ctx.copyOut && { copyOut: ctx.copyOut }),
  };
}

function kindOf(node: Node): string {
  return Object.keys(node)[0] ?? 'Unknown';
}

/** Analyses one statement into `ctx`; returns the rows it sends the client, or null for none. */
function statementRows(input: StatementInput, ctx: Context): Relation | null {
  const node = input.node;
  if ('SelectStmt' in node) {
    const relation = queryRelation(node, ROOT, ctx);
    const into = node.SelectStmt.intoClause;
    if (!into) return relation;
    createdTable(into.rel?.schemaname, into.rel?.relname, namesOf(into.colNames), relation, ctx);
    return null;
  }
  if ('InsertStmt' in node || 'UpdateStmt' in node || 'DeleteStmt' in node || 'MergeStmt' in node)
    return modifyRelation(node, ROOT, ctx);
  if ('ExplainStmt' in node) return explain(node.ExplainStmt, input.text, ctx);
  if ('VariableShowStmt' in node) return show(node.VariableShowStmt.name ?? '', ctx);
  if ('FetchStmt' in node) {
    const fetch = node.FetchStmt;
    if (fetch.ismove) return null;
    return cursorRows(fetch.portalname ?? '', ctx);
  }
  if ('ExecuteStmt' in node)
    return execute(node.ExecuteStmt.name ?? '', node.ExecuteStmt.params, input.text, ctx);
  if ('CopyStmt' in node) return copy(node.CopyStmt, ctx);
  if ('DeclareCursorStmt' in node) {
    const declare = node.DeclareCursorStmt;
    if (declare.query) {
      const cursor = analyseInner({ node: declare.query, text: input.text }, ctx);
      ctx.effects.push({
        kind: 'cursor',
        name: declare.portalname ?? '',
        holdable: ((declare.options ?? 0) & CURSOR_OPT_HOLD) !== 0,
        lineage: cursor,
      });
    }
    return null;
  }
  if ('ClosePortalStmt' in node) {
    ctx.effects.push({ kind: 'close-cursor', name: node.ClosePortalStmt.portalname ?? null });
    return null;
  }
  if ('PrepareStmt' in node) {
    const query = node.PrepareStmt.query;
    if (query) {
      // Not run yet: report what it reads and filters on, but no writes or effects.
      const inner = createContext(ctx.catalog, ctx.session, ctx.maxViewDepth);
      statementRows({ node: query, text: input.text }, inner);
      mergeReads(ctx, inner);
      ctx.effects.push({ kind: 'prepare', name: node.PrepareStmt.name ?? '', statement: { node: query } });
    }
    return null;
  }
  if ('DeallocateStmt' in node) {
    const deallocate = node.DeallocateStmt;
    ctx.effects.push({ kind: 'deallocate', name: deallocate.isall ? null : (deallocate.name ?? null) });
    return null;
  }
  if ('ViewStmt' in node) {
    const view = viewFromStatement(node.ViewStmt, input.text, ctx.catalog.searchPath);
    if (view) ctx.effects.push({ kind: 'view', view });
    return null;
  }
  if ('CreateTableAsStmt' in node) {
    const create = node.CreateTableAsStmt;
    const relation = queryRelation(create.query, ROOT, ctx);
    if (!create.into?.skipData)
      createdTable(
        create.into?.rel?.schemaname,
        create.into?.rel?.relname,
        namesOf(create.into?.colNames),
        relation,
        ctx,
      );
    return null;
  }
  if ('VariableSetStmt' in node) {
    setVariable(node.VariableSetStmt, ctx);
    return null;
  }
  if ('TransactionStmt' in node) {
    const kind = node.TransactionStmt.kind;
    if (kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_ROLLBACK' || kind === 'TRANS_STMT_PREPARE')
      ctx.effects.push({ kind: 'transaction-end' });
    return null;
  }
  if ('CreateFunctionStmt' in node) {
    routine(namesOf(node.CreateFunctionStmt.funcname), ctx);
    return null;
  }
  if ('DefineStmt' in node) {
    const define = node.DefineStmt;
    if (define.kind === 'OBJECT_AGGREGATE' || define.kind === 'OBJECT_OPERATOR')
      routine(namesOf(define.defnames), ctx);
    return null;
  }
  if ('RenameStmt' in node) {
    const rename = node.RenameStmt;
    if (
      rename.newname &&
      ['OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE'].includes(
        rename.renameType ?? '',
      )
    )
      ctx.effects.push({ kind: 'routine', name: rename.newname });
    return null;
  }
  if ('DoStmt' in node) {
    recordUnknownCode(ctx);
    return null;
  }
  if ('CallStmt' in node) {
    // A procedure's body is not visible; with OUT parameters it returns a row.
    recordUnknownCode(ctx);
    const call = node.CallStmt.funccall;
    const args = unionAll((call?.args ?? []).map((arg) => expression(arg, ROOT, ctx)));
    if (!isClean(args)) recordWrite(ctx, { kind: 'function', name: namesOf(call?.funcname).join('.') }, args);
    return { columns: [], rest: union(OPAQUE, args) };
  }
  if (NO_ROWS.test(kindOf(node))) return null;
  recordUnknownCode(ctx);
  return UNKNOWN_ROWS;
}

function isClean(trace: Trace): boolean {
  return trace.columns.size === 0 && trace.rows.size === 0 && !trace.opaque;
}

function routine(names: readonly string[], ctx: Context): void {
  const name = names[names.length - 1];
  if (name !== undefined) ctx.effects.push({ kind: 'routine', name });
}

/** A nested statement (a cursor's query), analysed on its own and merged into the enclosing one. */
function analyseInner(input: StatementInput, ctx: Context): StatementLineage {
  const inner = createContext(ctx.catalog, ctx.session, ctx.maxViewDepth, ctx.pendingSettings);
  const lineage = finish(kindOf(input.node), statementRows(input, inner), inner);
  mergeReads(ctx, inner);
  for (const [key, write] of inner.writes) ctx.writes.set(key, write);
  ctx.effects.push(...inner.effects);
  for (const [name, trace] of inner.settingsWritten) ctx.settingsWritten.set(name, trace);
  ctx.settingsRead ||= inner.settingsRead;
  return lineage;
}

function mergeReads(ctx: Context, inner: Context): void {
  for (const table of inner.reads.values()) recordRead(ctx, table);
  ctx.readsUnknown ||= inner.readsUnknown;
  ctx.usedSession ||= inner.usedSession;
  recordPredicate(ctx, inner.predicates);
  for (const group of inner.equalities) recordEquality(ctx, group);
}

/**
 * EXPLAIN returns plan text, not row values: its one column carries no source. But the plan's row
 * estimates (and with ANALYZE, actual counts) answer the statement's predicates, so those stay
 * predicates; and a function we cannot see may be folded into a constant that the plan prints, so the
 * column is opaque when the statement calls one. Only EXPLAIN ANALYZE runs the statement, so only
 * then do its writes and session effects count.
 */
function explain(stmt: ExplainStmt, text: string, ctx: Context): Relation {
  const runs = (stmt.options ?? []).some(
    (option) => 'DefElem' in option && option.DefElem.defname === 'analyze' && enabled(option.DefElem.arg),
  );
  let opaque = true;
  if (stmt.query) {
    const inner = createContext(ctx.catalog, ctx.session, ctx.maxViewDepth, ctx.pendingSettings);
    const rows = statementRows({ node: stmt.query, text }, inner);
    mergeReads(ctx, inner);
    if (runs) {
      for (const [key, write] of inner.writes) ctx.writes.set(key, write);
      ctx.effects.push(...inner.effects);
      for (const [name, trace] of inner.settingsWritten) ctx.settingsWritten.set(name, trace);
    }
    opaque = inner.readsUnknown || (rows !== null && wholeOf(rows).opaque);
  }
  return { columns: [{ name: 'QUERY PLAN', trace: opaque ? OPAQUE : CLEAN }], rest: null };
}

/** An EXPLAIN option's value as PostgreSQL's defGetBoolean reads it; anything unclear counts as on. */
function enabled(arg: Node | undefined): boolean {
  if (!arg) return true;
  if ('Integer' in arg) return (arg.Integer.ival ?? 0) !== 0;
  const text = stringOf(arg);
  return text === undefined || !['false', 'off', 'no', '0'].includes(text.toLowerCase());
}

/** SHOW returns settings, which hold data only when set_config stored some there. */
function show(name: string, ctx: Context): Relation {
  const setting = name.toLowerCase();
  if (setting === 'all') {
    return {
      columns: [
        { name: 'name', trace: CLEAN },
        { name: 'setting', trace: settingLineage(undefined, ctx) },
        { name: 'description', trace: CLEAN },
      ],
      rest: null,
    };
  }
  return { columns: [{ name: setting, trace: settingLineage(setting, ctx) }], rest: null };
}

function cursorRows(name: string, ctx: Context): Relation {
  ctx.usedSession = true;
  const cursor = ctx.session.cursors.get(name);
  if (!cursor) {
    recordUnknownCode(ctx);
    return UNKNOWN_ROWS;
  }
  return fromStatementLineage(cursor.lineage, ctx);
}

/** Turns a recorded statement's lineage back into rows, and counts its reads and predicates again. */
function fromStatementLineage(lineage: StatementLineage, ctx: Context): Relation {
  for (const table of lineage.reads) recordRead(ctx, table);
  ctx.readsUnknown ||= lineage.readsUnknown;
  recordPredicate(ctx, fromLineage(lineage.predicates));
  for (const group of lineage.equalities ?? []) recordEquality(ctx, fromLineage(group));
  const columns = (lineage.columns ?? []).map((col) => ({ name: col.name, trace: fromLineage(col) }));
  if (lineage.exact) return { columns, rest: null };
  return { columns, rest: unionAll(columns.map((col) => col.trace)) };
}

/** EXECUTE analyses the prepared statement again: PostgreSQL re-plans it under the current search path. */
function execute(
  name: string,
  params: readonly Node[] | undefined,
  text: string,
  ctx: Context,
): Relation | null {
  ctx.usedSession = true;
  const prepared = ctx.session.prepared.get(name);
  const args = unionAll((params ?? []).map((param) => expression(param, ROOT, ctx)));
  if (!prepared) {
    recordUnknownCode(ctx);
    return { columns: [], rest: union(OPAQUE, args) };
  }
  const rows = statementRows({ node: prepared.node as Node, text }, ctx);
  if (isClean(args)) return rows;
  // Parameters can only be constants or expressions without columns, but a setting or a function
  // can still carry data into them: let every output and write carry them.
  for (const [key, write] of ctx.writes) ctx.writes.set(key, { ...write, trace: union(write.trace, args) });
  return (
    rows && {
      columns: rows.columns.map((col) => ({ name: col.name, trace: union(col.trace, args) })),
      rest: rows.rest,
    }
  );
}

/** COPY ... TO STDOUT streams rows to the client; COPY FROM writes them. Server files and programs send nothing. */
function copy(stmt: CopyStmt, ctx: Context): Relation | null {
  const toClient = !stmt.filename && !stmt.is_program;
  if (stmt.query) {
    const relation = queryRelation(stmt.query, ROOT, ctx);
    if (toClient && !stmt.is_from)
      ctx.copyOut = { plainText: plainTextCopy(stmt), types: relation.columns.map(() => undefined) };
    return toClient ? relation : null;
  }
  const range = stmt.relation;
  const table = catalogRelation(range?.schemaname, range?.relname ?? '', ctx);
  const listed = namesOf(stmt.attlist);
  const columns =
    listed.length === 0
      ? table.relation.columns
      : listed.map(
          (name) =>
            table.relation.columns.find((col) => col.name === name) ?? {
              name,
              trace: table.relation.rest ?? OPAQUE,
            },
        );
  if (stmt.is_from) {
    // Rows from the client are the client's own data; from a server file or program, anything.
    const source = toClient ? CLEAN : OPAQUE;
    if (!toClient) recordUnknownCode(ctx);
    for (const col of columns)
      for (const ref of col.trace.columns.values()) recordWrite(ctx, { kind: 'column', column: ref }, source);
    if (stmt.whereClause) recordPredicate(ctx, expression(stmt.whereClause, ROOT, ctx));
    return null;
  }
  if (!toClient) return null;
  const known = table.table && ctx.catalog.tables.get(qualifiedName(table.table.schema, table.table.table));
  ctx.copyOut = {
    plainText: plainTextCopy(stmt),
    types: columns.map((col) => known?.columns.find((c) => c.name === col.name)?.typeOid),
  };
  return { columns, rest: listed.length === 0 ? table.relation.rest : null };
}

/**
 * COPY's default text format with nothing that changes how a row is split: no option other than
 * `FORMAT text` (DELIMITER, NULL, HEADER, ENCODING, the CSV options and the old `BINARY`/`CSV`
 * keywords all arrive as options).
 */
function plainTextCopy(stmt: CopyStmt): boolean {
  return (stmt.options ?? []).every((option) => {
    const def = 'DefElem' in option ? option.DefElem : undefined;
    const value = def?.arg && 'String' in def.arg ? def.arg.String.sval : undefined;
    return def?.defname === 'format' && value?.toLowerCase() === 'text';
  });
}

function setVariable(stmt: VariableSetStmt, ctx: Context): void {
  if (stmt.kind === 'VAR_RESET_ALL') {
    ctx.effects.push({ kind: 'search-path', path: ctx.catalog.searchPath });
    return;
  }
  if (stmt.name?.toLowerCase() !== 'search_path') return;
  if (stmt.kind === 'VAR_SET_VALUE') {
    const values = (stmt.args ?? []).map((arg) => {
      if ('A_Const' in arg) return arg.A_Const.sval?.sval;
      return undefined;
    });
    if (values.some((value) => value === undefined)) {
      ctx.effects.push({ kind: 'search-path', path: null });
      return;
    }
    // SET search_path TO a, "B": the parser has already folded unquoted names to lower case.
    ctx.effects.push({ kind: 'search-path', path: values as string[] });
    return;
  }
  if (stmt.kind === 'VAR_SET_DEFAULT' || stmt.kind === 'VAR_RESET')
    ctx.effects.push({ kind: 'search-path', path: ctx.catalog.searchPath });
}

/** CREATE TABLE AS and SELECT INTO write the query's columns into a new table. */
function createdTable(
  schema: string | undefined,
  table: string | undefined,
  names: readonly string[],
  relation: Relation,
  ctx: Context,
): void {
  const target = {
    schema: schema ?? ctx.catalog.searchPath.find((entry) => entry !== '$user') ?? 'public',
    table: table ?? '',
  };
  relation.columns.forEach((col, index) => {
    const trace = relation.rest ? union(col.trace, relation.rest) : col.trace;
    recordWrite(ctx, { kind: 'column', column: { ...target, column: names[index] ?? col.name } }, trace);
  });
  if (relation.rest)
    recordWrite(ctx, { kind: 'column', column: { ...target, column: '?column?' } }, relation.rest);
}
