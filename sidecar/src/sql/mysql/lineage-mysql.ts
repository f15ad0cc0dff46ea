import { type Catalog, type CatalogTable, qualifiedName } from '../lineage/catalog.ts';
import {
  CLEAN,
  equalityUse,
  fromLineage,
  makeOpaque,
  OPAQUE,
  ofColumn,
  type Trace,
  tableKey,
  toLineage,
  transform,
  union,
  unionAll,
} from '../lineage/trace.ts';
import type {
  ColumnLineage,
  Lineage,
  LineageResult,
  StatementLineage,
  TableRef,
  WriteLineage,
} from '../lineage/types.ts';
import { asArray, field, identName, isObject, nameParts, variant } from './ast.ts';
import { MYSQL_COUNTING_FUNCTIONS, MYSQL_PURE_FUNCTIONS, MYSQL_TOTAL_FUNCTIONS } from './builtins.ts';
import { functionName } from './effective-where.ts';
import {
  type ConditionalComments,
  joinTokens,
  type LexedStatement,
  lexMysql,
  type MysqlToken,
} from './lexer.ts';
import { parseMysqlStatement } from './parser.ts';
import { parserText } from './parser-text.ts';
import type { MysqlSessionState } from './session-state.ts';
import { EVERY_SQL_MODE, type MysqlSqlMode } from './sql-mode.ts';

/** A statement's lineage, with what it stores in user variables (`SET @v = ...`, `@v :=`, `INTO @v`). */
export interface MysqlStatementLineage extends StatementLineage {
  readonly userVariables: readonly { readonly name: string; readonly lineage: Lineage }[];
}

export interface MysqlLineageResult extends LineageResult {
  readonly statements: readonly MysqlStatementLineage[];
}

const MAX_VIEW_DEPTH = 16;
const UNREADABLE: MysqlLineageResult = Object.freeze({ statements: Object.freeze([]), parseError: true });

/**
 * For every statement of MySQL text: the lineage of each output column (through aliases,
 * expressions, functions, subqueries, derived tables, CTEs, UNION, `*` and `t.*`, views of the
 * catalog, user variables and HANDLER reads), the predicates, writes and user variables stored.
 * Statements see the user variables assigned by the statements before them. Text that cannot be
 * read or parsed gives `parseError`: refuse it. `loadMysqlParser()` must have finished.
 */
export function mysqlOutputLineage(
  sql: string,
  catalog: Catalog,
  session: MysqlSessionState,
): MysqlLineageResult {
  const code = lexUnder(sql, session.sqlMode, 'code');
  if (code === null) return UNREADABLE;
  const asCode = readingLineage(code.statements, catalog, session);
  if (!code.conditional || asCode === null) return asCode ?? UNREADABLE;
  // Conditional comments: a server may skip them, so the result may have the columns of either reading.
  const skipped = lexUnder(sql, session.sqlMode, 'comment');
  if (skipped === null) return UNREADABLE;
  if (sameStatements(skipped.statements, code.statements)) return asCode;
  const asComment = readingLineage(skipped.statements, catalog, session);
  if (asComment === null) return UNREADABLE;
  const count = Math.max(asCode.statements.length, asComment.statements.length);
  const statements: MysqlStatementLineage[] = [];
  for (let i = 0; i < count; i++) statements.push(eitherOf(asCode.statements[i], asComment.statements[i]));
  return Object.freeze({ statements: Object.freeze(statements), parseError: false });
}

function readingLineage(
  statements: readonly LexedStatement[],
  catalog: Catalog,
  session: MysqlSessionState,
): MysqlLineageResult | null {
  const out: MysqlStatementLineage[] = [];
  const variables = new Map(session.userVariables);
  let database = session.database;
  for (const statement of statements) {
    const first = statement.tokens[0];
    const named = statement.tokens[1];
    if (first?.type === 'word' && first.value === 'USE' && named)
      database = named.type === 'ident' ? named.value : named.canonical;
    let lineage: MysqlStatementLineage | null;
    try {
      lineage = statementLineage(statement, { catalog, session, variables, database });
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      lineage = null;
    }
    if (lineage === null) return null;
    out.push(lineage);
    for (const v of lineage.userVariables) variables.set(v.name, v.lineage);
  }
  return Object.freeze({ statements: Object.freeze(out), parseError: false });
}

/**
 * A statement that is one of two readings: its result columns may be either's. When both readings
 * return the same number of columns, each exactly (`SELECT /*!40001 SQL_NO_CACHE *\/ a, b` of
 * mariadb-dump), column i is column i of one of them: it is traced to both, and stays exact.
 * Otherwise the columns cannot be told apart.
 */
function eitherOf(
  a: MysqlStatementLineage | undefined,
  b: MysqlStatementLineage | undefined,
): MysqlStatementLineage {
  if (!a || !b) return { ...(a ?? b)!, exact: false };
  const aligned =
    a.exact && b.exact && a.columns !== null && b.columns !== null && a.columns.length === b.columns.length;
  const columns = aligned
    ? a.columns!.map((column, i) => ({
        name: column.name,
        ...toLineage(union(fromLineage(column), fromLineage(b.columns![i]!))),
      }))
    : a.columns === null && b.columns === null
      ? null
      : [...(a.columns ?? []), ...(b.columns ?? [])];
  const reads = new Map([...a.reads, ...b.reads].map((r) => [tableKey(r), r]));
  return Object.freeze({
    kind: a.kind,
    columns,
    exact: aligned,
    reads: [...reads.values()],
    readsUnknown: a.readsUnknown || b.readsUnknown,
    predicates: toLineage(union(fromLineage(a.predicates), fromLineage(b.predicates))),
    writes: [...a.writes, ...b.writes],
    effects: [...a.effects, ...b.effects],
    userVariables: [...a.userVariables, ...b.userVariables],
  });
}

function sameStatements(a: readonly LexedStatement[], b: readonly LexedStatement[]): boolean {
  return a.length === b.length && a.every((s, i) => s.canonical === b[i]!.canonical);
}

function lexUnder(
  sql: string,
  mode: MysqlSqlMode | null,
  conditional: ConditionalComments,
): { statements: readonly LexedStatement[]; conditional: boolean } | null {
  if (mode) {
    const lexed = lexMysql(sql, mode, conditional);
    return lexed.error === null ? lexed : null;
  }
  const readings = EVERY_SQL_MODE.map((m) => lexMysql(sql, m, conditional));
  const first = readings[0]!;
  const same = readings.every((r) => r.error === null && sameStatements(r.statements, first.statements));
  return same ? first : null;
}

interface StatementEnv {
  readonly catalog: Catalog;
  readonly session: MysqlSessionState;
  readonly variables: ReadonlyMap<string, Lineage>;
  /** The default database (USE earlier in the session or the text), or null for the catalog's searchPath. */
  readonly database: string | null;
}

/** Mutable facts gathered while one statement is traced. */
class Collector {
  readonly reads = new Map<string, TableRef>();
  readsUnknown = false;
  predicates: Trace = CLEAN;
  /** Values only compared for equality with each other, one trace per group (see recordEquality). */
  readonly equalities: Trace[] = [];
  readonly assigned: { name: string; trace: Trace }[] = [];
  readonly env: StatementEnv;
  readonly depth: number;
  constructor(env: StatementEnv, depth: number) {
    this.env = env;
    this.depth = depth;
  }
}

interface Column {
  readonly name: string;
  readonly trace: Trace;
}

interface Relation {
  /** Lower-cased names the query may qualify its columns by. */
  readonly names: ReadonlySet<string>;
  /** Null when the relation's columns are not known. */
  readonly columns: readonly Column[] | null;
}

interface Scope {
  readonly relations: readonly Relation[];
  readonly parent: Scope | null;
  readonly ctes: ReadonlyMap<string, readonly Column[]>;
}

const EMPTY_SCOPE: Scope = { relations: [], parent: null, ctes: new Map() };

function statementLineage(statement: LexedStatement, env: StatementEnv): MysqlStatementLineage | null {
  const words = statement.tokens.map((t) => (t.type === 'word' ? t.value : ''));
  let first = 0;
  while (statement.tokens[first]?.type === 'punct' && statement.tokens[first]!.value === '(') first++;
  const w0 = words[first] ?? '';
  const c = new Collector(env, 0);
  switch (w0) {
    case 'SELECT':
    case 'WITH':
    case 'VALUES':
    case 'TABLE':
    case 'DELETE':
    case 'INSERT':
    case 'REPLACE':
    case 'UPDATE':
      return parsedLineage(statement, c);
    case 'SET':
      if (words[first + 1] === 'STATEMENT') return setStatementLineage(statement, env);
      return setLineage(statement, c);
    case 'HANDLER':
      return handlerLineage(statement, words, c);
    case 'EXECUTE':
      return executeLineage(statement, c);
    case 'CALL':
      c.readsUnknown = true;
      return finish('Call', c, [{ name: '?column?', ...toLineage(OPAQUE) }], false);
    case 'SHOW':
      // Other sessions' statements (with their literals), binary-log row events, and the messages of
      // the last statement's warnings and errors, which quote the values it handled: untraceable values.
      // SHOW FULL TABLES / COLUMNS / FIELDS are metadata like their short forms; SHOW FULL PROCESSLIST
      // is not.
      if (
        ['PROCESSLIST', 'BINLOG', 'RELAYLOG', 'ENGINE', 'WARNINGS', 'ERRORS'].includes(words[1] ?? '') ||
        (words[1] === 'FULL' && !['TABLES', 'COLUMNS', 'FIELDS'].includes(words[2] ?? ''))
      ) {
        c.readsUnknown = true;
        return finish('Show', c, [{ name: '?column?', ...toLineage(OPAQUE) }], false);
      }
      return finish(w0, c, [], false);
    case 'DO': {
      // DO evaluates expressions for their effects, such as `@v := (SELECT ...)`.
      const ast = parseMysqlStatement('SELECT ' + joinTokens(statement.tokens.slice(1)));
      const body = field(ast, 'Query');
      if (!body) return null;
      queryColumns(body, EMPTY_SCOPE, c);
      return finish('Do', c, null, true);
    }
    case 'EXPLAIN':
    case 'DESCRIBE':
    case 'DESC':
    case 'ANALYZE':
    case 'CHECK':
    case 'CHECKSUM':
    case 'OPTIMIZE':
    case 'REPAIR':
    case 'HELP':
      // Rows of server metadata; MariaDB's ANALYZE <statement> returns its plan, not its rows.
      return finish(w0, c, [], false);
    default:
      return finish(w0 || 'Unknown', c, null, true);
  }
}

function finish(
  kind: string,
  c: Collector,
  columns: ColumnLineage[] | null,
  exact: boolean,
  writes: WriteLineage[] = [],
): MysqlStatementLineage {
  return Object.freeze({
    kind,
    columns,
    exact,
    reads: [...c.reads.values()],
    readsUnknown: c.readsUnknown,
    predicates: toLineage(c.predicates),
    ...(c.equalities.length > 0 && { equalities: c.equalities.map(toLineage) }),
    writes,
    effects: [],
    userVariables: c.assigned.map((a) => ({ name: a.name, lineage: toLineage(a.trace) })),
  });
}

function parsedLineage(statement: LexedStatement, c: Collector): MysqlStatementLineage | null {
  const outfile = statement.tokens.some(
    (t, i) =>
      t.type === 'word' &&
      (t.value === 'OUTFILE' || t.value === 'DUMPFILE') &&
      statement.tokens[i - 1]?.value === 'INTO',
  );
  if (outfile) return finish('SelectInto', c, null, true);
  const ast = parseMysqlStatement(parserText(statement.tokens));
  const v = variant(ast);
  if (!v) return null;
  const [kind, body] = v;
  if (kind === 'Query') {
    const columns = queryColumns(body, EMPTY_SCOPE, c);
    const into = field(field(field(body, 'body'), 'Select'), 'into');
    if (into) {
      const names = nameParts(field(into, 'name'));
      names.forEach((name, i) => {
        if (name.startsWith('@'))
          c.assigned.push({ name: name.slice(1).toLowerCase(), trace: columns.columns[i]?.trace ?? OPAQUE });
      });
      return finish('Query', c, null, true);
    }
    return finish('Query', c, columns.columns.map(columnLineage), columns.exact);
  }
  if (kind === 'Delete' || kind === 'Update' || kind === 'Insert') return dmlLineage(kind, body, c);
  return finish(kind, c, null, true);
}

function columnLineage(column: Column): ColumnLineage {
  return { name: column.name, ...toLineage(column.trace) };
}

function dmlLineage(
  kind: 'Delete' | 'Update' | 'Insert',
  body: unknown,
  c: Collector,
): MysqlStatementLineage {
  let relations: Relation[] = [];
  if (kind === 'Delete') {
    const from = variant(field(body, 'from'));
    for (const twj of [...asArray(from?.[1]), ...asArray(field(body, 'using'))])
      relations.push(...fromRelations(twj, EMPTY_SCOPE, c));
  } else if (kind === 'Update') {
    relations = fromRelations(field(body, 'table'), EMPTY_SCOPE, c);
    for (const twj of asArray(field(body, 'from'))) relations.push(...fromRelations(twj, EMPTY_SCOPE, c));
  } else {
    const parts = nameParts(field(field(body, 'table'), 'TableName'));
    relations = [tableRelation(parts, null, EMPTY_SCOPE, c)];
  }
  const scope: Scope = { relations, parent: null, ctes: new Map() };
  c.predicates = union(c.predicates, traceExpr(field(body, 'selection'), scope, c));
  const writes: WriteLineage[] = [];
  if (kind === 'Update') {
    for (const a of asArray(field(body, 'assignments'))) {
      const value = traceExpr(field(a, 'value'), scope, c);
      const target = nameParts(field(field(a, 'target'), 'ColumnName') ?? field(a, 'target'));
      const ref = writeTarget(target, scope);
      if (ref) writes.push({ target: { kind: 'column', column: ref }, ...toLineage(value) });
    }
  }
  if (kind === 'Insert') {
    const target = relations[0];
    const targetScope: Scope = { relations: target ? [target] : [], parent: null, ctes: new Map() };
    const source = field(body, 'source');
    if (source) {
      const values = queryColumns(source, EMPTY_SCOPE, c);
      const named = asArray(field(body, 'columns')).map(
        (col) => (Array.isArray(col) ? nameParts(col).pop() : identName(col))?.toLowerCase() ?? '',
      );
      const columns = named.length > 0 ? named : (target?.columns ?? []).map((col) => col.name.toLowerCase());
      // Values matched to columns by position; where they cannot be (a count that differs, columns the
      // catalog does not list), every column may get any of them.
      const matched = values.exact && values.columns.length === columns.length;
      const anyValue = unionAll(values.columns.map((x) => x.trace));
      columns.forEach((name, i) => {
        const ref = writeTarget([name], targetScope);
        const value = matched ? values.columns[i]!.trace : makeOpaque(anyValue);
        if (ref) writes.push({ target: { kind: 'column', column: ref }, ...toLineage(value) });
      });
      // A table whose columns nobody can name still receives every value.
      if (columns.length === 0) {
        const ref = writeTarget(['*'], targetScope);
        if (ref) writes.push({ target: { kind: 'column', column: ref }, ...toLineage(makeOpaque(anyValue)) });
      }
    }
    // INSERT ... SET col = expr, and ON DUPLICATE KEY UPDATE col = expr: the expressions may read the
    // row's own columns (and VALUES(col), the value the insert gave col), so they see the target table.
    const assignments = [
      ...asArray(field(body, 'assignments')),
      ...asArray(field(field(body, 'on'), 'DuplicateKeyUpdate')),
    ];
    for (const a of assignments) {
      const value = traceExpr(field(a, 'value'), targetScope, c);
      const name = nameParts(field(field(a, 'target'), 'ColumnName') ?? field(a, 'target'));
      const ref = writeTarget(name, targetScope);
      if (ref) writes.push({ target: { kind: 'column', column: ref }, ...toLineage(value) });
    }
  }
  const returning = asArray(field(body, 'returning'));
  if (returning.length > 0) {
    const out = projection(returning, scope, c);
    return finish(kind, c, out.columns.map(columnLineage), out.exact, writes);
  }
  return finish(kind, c, null, true, writes);
}

/**
 * The catalog column a write assigns. A column the catalog does not know (a table created since it
 * loaded, a view it cannot trace) is still a write, to a column no policy masks: a masked value may
 * never go there, so the write is kept with an empty schema rather than dropped.
 */
function writeTarget(
  parts: readonly string[],
  scope: Scope,
): { schema: string; table: string; column: string } | undefined {
  const column = parts[parts.length - 1]?.toLowerCase();
  if (!column) return undefined;
  const qualifier = parts.slice(0, -1).join('.').toLowerCase();
  for (const r of scope.relations) {
    if (qualifier && !r.names.has(qualifier)) continue;
    const found = r.columns?.find((col) => col.name.toLowerCase() === column);
    const source = found ? [...found.trace.columns.values()][0] : undefined;
    if (source) return source;
  }
  const table = qualifier || [...(scope.relations[0]?.names ?? [])][0] || '?';
  return { schema: '', table, column };
}

function setLineage(statement: LexedStatement, c: Collector): MysqlStatementLineage | null {
  const tokens = statement.tokens;
  let depth = 0;
  let start = 1;
  const pieces: [number, number][] = [];
  for (let i = 1; i <= tokens.length; i++) {
    const t = tokens[i];
    if (t?.type === 'punct' && t.value === '(') depth++;
    if (t?.type === 'punct' && t.value === ')') depth--;
    if (t === undefined || (depth === 0 && t.type === 'punct' && t.value === ',')) {
      pieces.push([start, i]);
      start = i + 1;
    }
  }
  const writes: WriteLineage[] = [];
  for (const [from, to] of pieces) {
    const scoped = tokens[from]?.type === 'word' && SET_SCOPES.has(tokens[from]!.value);
    const at = scoped ? from + 1 : from;
    const target = tokens[at];
    const op = tokens[at + 1];
    if (!target || op?.type !== 'punct' || (op.value !== '=' && op.value !== ':=')) continue;
    const text = joinTokens(tokens.slice(at + 2, to));
    const body = field(parseMysqlStatement('SELECT ' + text), 'Query');
    if (target.type === 'variable' && !scoped) {
      if (!body) return null;
      const columns = queryColumns(body, EMPTY_SCOPE, c);
      c.assigned.push({ name: target.value, trace: unionAll(columns.columns.map((col) => col.trace)) });
      continue;
    }
    if (target.type !== 'system-variable' && target.type !== 'word' && target.type !== 'ident') continue;
    // A system variable is read back by functions of the session (NOW() reads @@timestamp,
    // CONNECTION_ID() @@pseudo_thread_id) and by @@name: what it stores is a write, judged as one.
    // A value that is no expression (ON, DEFAULT) names no column; anything else unread stays opaque.
    const value = body
      ? unionAll(queryColumns(body, EMPTY_SCOPE, c).columns.map((col) => col.trace))
      : OPAQUE;
    const name = target.value.toLowerCase().replace(/^(session|local|global)\./, '');
    writes.push({ target: { kind: 'function', name: `@@${name}` }, ...toLineage(value) });
  }
  return finish('Set', c, null, true, writes);
}

/**
 * MariaDB's `SET STATEMENT name = value[, ...] FOR statement`: the statement's lineage, with the
 * settings as writes (what they store, its NOW() or CONNECTION_ID() reads back). Unreadable without FOR.
 */
function setStatementLineage(statement: LexedStatement, env: StatementEnv): MysqlStatementLineage | null {
  const tokens = statement.tokens;
  let depth = 0;
  let at = -1;
  for (let i = 2; i < tokens.length && at < 0; i++) {
    const t = tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    else if (depth === 0 && t.type === 'word' && t.value === 'FOR') at = i;
  }
  if (at < 0) return null;
  const part = (from: readonly MysqlToken[]): LexedStatement => ({
    ...statement,
    tokens: from,
    canonical: joinTokens(from),
  });
  const settings = setLineage(part([tokens[0]!, ...tokens.slice(2, at)]), new Collector(env, 0));
  const inner = statementLineage(part(tokens.slice(at + 1)), env);
  if (settings === null || inner === null) return null;
  const reads = new Map([...settings.reads, ...inner.reads].map((r) => [tableKey(r), r]));
  return Object.freeze({
    ...inner,
    reads: [...reads.values()],
    readsUnknown: settings.readsUnknown || inner.readsUnknown,
    writes: [...settings.writes, ...inner.writes],
    userVariables: [...settings.userVariables, ...inner.userVariables],
  });
}

/** Scope words of `SET [SESSION|GLOBAL|...] name = value`. */
const SET_SCOPES = new Set(['SESSION', 'LOCAL', 'GLOBAL', 'PERSIST', 'PERSIST_ONLY']);

function handlerLineage(
  statement: LexedStatement,
  words: readonly string[],
  c: Collector,
): MysqlStatementLineage {
  const nameToken = statement.tokens[1];
  const name = nameToken
    ? nameToken.type === 'ident'
      ? nameToken.value
      : nameToken.canonical.replaceAll('`', '')
    : '';
  if (!words.includes('READ')) return finish('Handler', c, null, true);
  // HANDLER ... READ returns whole rows of the handler's table.
  const table = c.env.session.handlers.get(name.toLowerCase()) ?? name;
  const relation = tableRelation(table.split('.'), null, EMPTY_SCOPE, c);
  if (relation.columns === null) {
    c.readsUnknown = true;
    return finish('Handler', c, [{ name: '?column?', ...toLineage(OPAQUE) }], false);
  }
  return finish('Handler', c, relation.columns.map(columnLineage), true);
}

function executeLineage(statement: LexedStatement, c: Collector): MysqlStatementLineage | null {
  const token = statement.tokens[1];
  const name = token
    ? (token.type === 'ident' ? token.value : token.canonical.replaceAll('`', '')).toLowerCase()
    : '';
  const prepared = c.env.session.prepared.get(name);
  if (prepared?.text) {
    const inner = mysqlOutputLineage(prepared.text, c.env.catalog, {
      ...c.env.session,
      sqlMode: prepared.mode,
      userVariables: c.env.variables,
      database: c.env.database,
    });
    if (inner.parseError || inner.statements.length !== 1) return null;
    return inner.statements[0]!;
  }
  c.readsUnknown = true;
  return finish('Execute', c, [{ name: '?column?', ...toLineage(OPAQUE) }], false);
}

interface Columns {
  readonly columns: readonly Column[];
  /** False when a `*` over a relation of unknown columns makes the list uncertain. */
  readonly exact: boolean;
}

function queryColumns(query: unknown, parent: Scope, c: Collector): Columns {
  const ctes = new Map(parent.ctes);
  const w = field(query, 'with');
  for (const cte of asArray(field(w, 'cte_tables'))) {
    const alias = field(cte, 'alias');
    const name = identName(field(alias, 'name'))?.toLowerCase();
    if (!name) continue;
    // A recursive CTE refers to itself: its first pass sees an untraceable self.
    if (field(w, 'recursive') === true) ctes.set(name, [{ name: '?column?', trace: OPAQUE }]);
    const cols = queryColumns(field(cte, 'query'), { ...parent, ctes }, c);
    ctes.set(name, renamed(cols.columns, asArray(field(alias, 'columns'))));
  }
  const scope: Scope = { ...parent, ctes };
  const body = field(query, 'body');
  const orderBy = asArray(field(field(field(query, 'order_by'), 'kind'), 'Expressions')).map((o) =>
    field(o, 'expr'),
  );
  // ORDER BY of a plain SELECT sees its FROM; of a UNION, only the result's names.
  const select = field(body, 'Select');
  const out = select ? selectColumns(select, scope, c, orderBy) : setExprColumns(body, scope, c);
  if (!select) for (const o of orderBy) c.predicates = union(c.predicates, traceExpr(o, scope, c));
  c.predicates = union(c.predicates, traceGeneric(field(query, 'limit_clause'), scope, c));
  return out;
}

function renamed(columns: readonly Column[], names: readonly unknown[]): Column[] {
  return columns.map((col, i) => {
    const name = identName(field(names[i], 'name') ?? names[i]);
    return name ? { name, trace: col.trace } : col;
  });
}

function setExprColumns(body: unknown, scope: Scope, c: Collector): Columns {
  const v = variant(body);
  if (!v) return { columns: [{ name: '?column?', trace: OPAQUE }], exact: false };
  const [kind, node] = v;
  switch (kind) {
    case 'Select':
      return selectColumns(node, scope, c);
    case 'Query':
      return queryColumns(node, scope, c);
    case 'SetOperation': {
      const left = setExprColumns(field(node, 'left'), scope, c);
      const right = setExprColumns(field(node, 'right'), scope, c);
      const columns = left.columns.map((col, i) => ({
        name: col.name,
        trace: union(col.trace, right.columns[i]?.trace ?? OPAQUE),
      }));
      // UNION, INTERSECT and EXCEPT without ALL compare whole rows of both sides for equality.
      if (field(node, 'set_quantifier') !== 'All') for (const col of columns) recordEquality(c, col.trace);
      return { columns, exact: left.exact && right.exact && left.columns.length === right.columns.length };
    }
    case 'Values': {
      // A row is a list of expressions, or (newer parser versions) `{content: [...]}`; a shape not
      // known here is untraceable rather than empty.
      const rows = asArray(field(node, 'rows')).map((row) =>
        Array.isArray(row)
          ? row
          : field(row, 'content') === undefined
            ? null
            : asArray(field(row, 'content')),
      );
      if (rows.length === 0 || rows.some((row) => row === null)) return unknownColumns(c);
      const width = rows[0]!.length;
      if (width === 0 || rows.some((row) => row!.length !== width)) return unknownColumns(c);
      const columns: Column[] = [];
      for (let i = 0; i < width; i++)
        columns.push({
          name: `column_${i}`,
          trace: unionAll(rows.map((row) => traceExpr(asArray(row)[i], scope, c))),
        });
      return { columns, exact: true };
    }
    default:
      return unknownColumns(c);
  }
}

function unknownColumns(c: Collector): Columns {
  c.readsUnknown = true;
  return { columns: [{ name: '?column?', trace: OPAQUE }], exact: false };
}

function selectColumns(
  select: unknown,
  parent: Scope,
  c: Collector,
  orderBy: readonly unknown[] = [],
): Columns {
  const relations: Relation[] = [];
  for (const twj of asArray(field(select, 'from'))) relations.push(...fromRelations(twj, parent, c));
  const scope: Scope = { relations, parent, ctes: parent.ctes };
  for (const twj of asArray(field(select, 'from')))
    for (const join of asArray(field(twj, 'joins'))) joinCondition(field(join, 'join_operator'), scope, c);
  c.predicates = union(c.predicates, traceExpr(field(select, 'selection'), scope, c));
  const output = projection(asArray(field(select, 'projection')), scope, c);
  const groupBy = field(select, 'group_by');
  const keys = asArray(asArray(field(groupBy, 'Expressions'))[0]);
  if (groupBy !== undefined && field(groupBy, 'Expressions') === undefined)
    condition(c, traceGeneric(groupBy, scope, c));
  for (const key of keys) {
    // GROUP BY 2 groups by the second output column.
    const position = positionOf(key);
    if (position !== undefined) {
      const column = output.exact ? output.columns[position - 1] : undefined;
      if (column) recordEquality(c, column.trace);
      else condition(c, unionAll(output.columns.map((col) => makeOpaque(col.trace))));
    } else if (isColumnReference(key)) recordEquality(c, traceExpr(key, scope, c));
    else condition(c, traceExpr(key, scope, c));
  }
  // The GROUP BY modifiers (WITH ROLLUP) and anything else in the clause are read as conditions.
  condition(c, traceGeneric(asArray(field(groupBy, 'Expressions')).slice(1), scope, c));
  c.predicates = union(c.predicates, traceExpr(field(select, 'having'), scope, c));
  for (const o of orderBy) c.predicates = union(c.predicates, traceExpr(o, scope, c));
  // SELECT DISTINCT compares whole output rows: every column for equality.
  const distinct = field(select, 'distinct');
  if (distinct === 'Distinct') for (const col of output.columns) recordEquality(c, col.trace);
  else if (distinct !== undefined && distinct !== null && distinct !== 'All')
    condition(c, unionAll(output.columns.map((col) => makeOpaque(col.trace))));
  return output;
}

/** `JOIN ... ON a.x = b.y` compares two columns for equality only; any other join condition is a predicate. */
function joinCondition(operator: unknown, scope: Scope, c: Collector): void {
  const on = field(variant(operator)?.[1], 'On');
  const eq = field(on, 'BinaryOp');
  if (
    eq !== undefined &&
    field(eq, 'op') === 'Eq' &&
    isColumnReference(field(eq, 'left')) &&
    isColumnReference(field(eq, 'right'))
  ) {
    recordEquality(c, union(traceExpr(field(eq, 'left'), scope, c), traceExpr(field(eq, 'right'), scope, c)));
    return;
  }
  c.predicates = union(c.predicates, traceGeneric(operator, scope, c));
}

function isColumnReference(expr: unknown): boolean {
  const kind = variant(expr)?.[0];
  if (kind === 'CompoundIdentifier') return true;
  if (kind !== 'Identifier') return false;
  const name = identName(variant(expr)![1]) ?? '';
  return !name.startsWith('@');
}

/** The output position a GROUP BY key names (`GROUP BY 2`), if it is a plain integer. */
function positionOf(expr: unknown): number | undefined {
  const number = field(field(field(expr, 'Value'), 'value'), 'Number');
  const text = Array.isArray(number) ? number[0] : undefined;
  return typeof text === 'string' && /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
}

/**
 * Values the statement only tests for equality with each other (GROUP BY keys, SELECT DISTINCT and
 * UNION columns, `JOIN ... ON a.x = b.y`, DISTINCT aggregates), as for PostgreSQL
 * (sql/lineage/context.ts): only values passed through unchanged can be compared this way, anything
 * computed from them is a plain condition.
 */
function recordEquality(c: Collector, group: Trace): void {
  const use = equalityUse(group);
  if (use === 'condition') condition(c, group);
  else if (use === 'group') c.equalities.push(group);
}

function projection(items: readonly unknown[], scope: Scope, c: Collector): Columns {
  const columns: Column[] = [];
  let exact = true;
  for (const item of items) {
    const v = variant(item);
    if (!v) continue;
    const [kind, node] = v;
    if (kind === 'Wildcard' || kind === 'QualifiedWildcard') {
      const qualifier =
        kind === 'QualifiedWildcard'
          ? nameParts(field(asArray(node)[0], 'ObjectName') ?? asArray(node)[0])
              .pop()
              ?.toLowerCase()
          : undefined;
      const matching = qualifier ? scope.relations.filter((r) => r.names.has(qualifier)) : scope.relations;
      if (matching.length === 0 && qualifier) {
        exact = false;
        columns.push({ name: '?column?', trace: OPAQUE });
      }
      for (const r of matching) {
        if (r.columns === null) {
          exact = false;
          columns.push({ name: '?column?', trace: OPAQUE });
        } else columns.push(...r.columns);
      }
    } else if (kind === 'UnnamedExpr') {
      columns.push({ name: exprName(node), trace: traceExpr(node, scope, c) });
    } else if (kind === 'ExprWithAlias') {
      columns.push({
        name: identName(field(node, 'alias')) ?? '?column?',
        trace: traceExpr(field(node, 'expr'), scope, c),
      });
    } else {
      exact = false;
      columns.push({ name: '?column?', trace: traceGeneric(node, scope, c) });
    }
  }
  return { columns, exact };
}

function exprName(expr: unknown): string {
  const v = variant(expr);
  if (v?.[0] === 'Identifier') return identName(v[1]) ?? '?column?';
  if (v?.[0] === 'CompoundIdentifier') return identName(asArray(v[1]).at(-1)) ?? '?column?';
  return '?column?';
}

function fromRelations(twj: unknown, scope: Scope, c: Collector): Relation[] {
  const out: Relation[] = [];
  const add = (factor: unknown) => {
    const v = variant(factor);
    if (!v) return;
    const [kind, node] = v;
    const alias = field(node, 'alias');
    const aliasName = identName(field(alias, 'name'))?.toLowerCase() ?? null;
    if (kind === 'Table' && asArray(field(node, 'args')).length === 0 && !field(node, 'args')) {
      const relation = tableRelation(nameParts(field(node, 'name')), aliasName, scope, c);
      out.push(withColumnNames(relation, asArray(field(alias, 'columns'))));
    } else if (kind === 'Derived') {
      const cols = queryColumns(field(node, 'subquery'), scope, c);
      out.push({
        names: new Set(aliasName ? [aliasName] : []),
        columns: renamed(cols.columns, asArray(field(alias, 'columns'))),
      });
    } else if (kind === 'NestedJoin') {
      out.push(...fromRelations(field(node, 'table_with_joins'), scope, c));
    } else {
      // JSON_TABLE and other table functions: their columns come from their arguments, untraceably.
      const args = traceGeneric(node, scope, c);
      c.readsUnknown = true;
      out.push({ names: new Set(aliasName ? [aliasName] : []), columns: null });
      c.predicates = union(c.predicates, args);
    }
  };
  add(field(twj, 'relation'));
  for (const join of asArray(field(twj, 'joins'))) add(field(join, 'relation'));
  return out;
}

function withColumnNames(relation: Relation, names: readonly unknown[]): Relation {
  if (names.length === 0 || relation.columns === null) return relation;
  return { ...relation, columns: renamed(relation.columns, names) };
}

/** A named relation: a CTE, a catalog view (expanded) or table, or an unknown one. */
function tableRelation(parts: readonly string[], alias: string | null, scope: Scope, c: Collector): Relation {
  const name = parts[parts.length - 1] ?? '';
  const names = new Set<string>(alias ? [alias] : [name.toLowerCase(), parts.join('.').toLowerCase()]);
  if (parts.length === 1) {
    const cte = findCte(scope, name.toLowerCase());
    if (cte) return { names, columns: cte };
  }
  const catalog = c.env.catalog;
  const schemas =
    parts.length > 1 ? [parts[0]!] : c.env.database !== null ? [c.env.database] : catalog.searchPath;
  for (const schema of schemas) {
    const view = lookup(catalog.views, schema, name);
    if (view) {
      c.reads.set(tableKey({ schema: view.schema, table: view.name }), {
        schema: view.schema,
        table: view.name,
      });
      return { names, columns: viewColumns(view, c) };
    }
    const table = lookup(catalog.tables, schema, name) as CatalogTable | undefined;
    if (table) {
      const ref = { schema: table.schema, table: table.name };
      c.reads.set(tableKey(ref), ref);
      return {
        names,
        columns: table.columns.map((col) => ({
          name: col.name,
          trace: ofColumn({ ...ref, column: col.name }),
        })),
      };
    }
  }
  const ref = { schema: parts.length > 1 ? parts[0]! : (schemas[0] ?? ''), table: name };
  c.reads.set(tableKey(ref), ref);
  c.readsUnknown = true;
  return { names, columns: null };
}

function findCte(scope: Scope, name: string): readonly Column[] | undefined {
  return scope.ctes.get(name);
}

/** MySQL matches table names case-insensitively on most installations: exact first, then by lower case. */
function lookup<T extends { readonly schema: string; readonly name: string }>(
  map: ReadonlyMap<string, T>,
  schema: string,
  name: string,
): T | undefined {
  const exact = map.get(qualifiedName(schema, name));
  if (exact) return exact;
  const s = schema.toLowerCase();
  const n = name.toLowerCase();
  for (const entry of map.values())
    if (entry.schema.toLowerCase() === s && entry.name.toLowerCase() === n) return entry;
  return undefined;
}

function viewColumns(
  view: {
    readonly schema: string;
    readonly name: string;
    readonly columns?: readonly string[];
    readonly definition: string;
  },
  c: Collector,
): readonly Column[] | null {
  if (c.depth >= MAX_VIEW_DEPTH) {
    c.readsUnknown = true;
    return null;
  }
  const lexed = lexMysql(view.definition, EVERY_SQL_MODE[0]!);
  const ast =
    lexed.error === null && lexed.statements.length === 1
      ? parseMysqlStatement(lexed.statements[0]!.canonical)
      : null;
  const query = field(ast, 'Query');
  if (!query) {
    c.readsUnknown = true;
    return null;
  }
  const inner = new Collector(c.env, c.depth + 1);
  const cols = queryColumns(query, EMPTY_SCOPE, inner);
  for (const [key, ref] of inner.reads) c.reads.set(key, ref);
  c.readsUnknown ||= inner.readsUnknown || !cols.exact;
  const names = view.columns ?? [];
  return cols.columns.map((col, i) => ({ name: names[i] ?? col.name, trace: col.trace }));
}

function resolveColumn(parts: readonly string[], scope: Scope | null): Trace {
  const column = parts[parts.length - 1]!.toLowerCase();
  const qualifier = parts.length > 1 ? parts[parts.length - 2]!.toLowerCase() : null;
  const whole = parts.length > 2 ? parts.slice(0, -1).join('.').toLowerCase() : null;
  for (let s = scope; s !== null; s = s.parent) {
    const relations = qualifier
      ? s.relations.filter((r) => r.names.has(qualifier) || (whole !== null && r.names.has(whole)))
      : s.relations;
    let found: Trace | null = null;
    let unknown = false;
    for (const r of relations) {
      if (r.columns === null) {
        unknown = true;
        continue;
      }
      for (const col of r.columns)
        if (col.name.toLowerCase() === column) found = found ? union(found, col.trace) : col.trace;
    }
    if (found) return unknown ? makeOpaque(found) : found;
    if (unknown) return OPAQUE;
    if (qualifier && relations.length > 0) return OPAQUE;
  }
  // A select-list alias (ORDER BY, HAVING) or a name nobody knows: untraceable.
  return OPAQUE;
}

function traceExpr(expr: unknown, scope: Scope, c: Collector): Trace {
  const v = variant(expr);
  if (!v) return CLEAN;
  const [kind, body] = v;
  switch (kind) {
    case 'Identifier': {
      const name = identName(body) ?? '';
      if (name.startsWith('@@')) return CLEAN;
      if (name.startsWith('@')) return variableTrace(name.slice(1).toLowerCase(), c);
      return resolveColumn([name], scope);
    }
    case 'CompoundIdentifier':
      return resolveColumn(
        asArray(body).map((p) => identName(p) ?? ''),
        scope,
      );
    case 'Value':
    case 'TypedString':
      return CLEAN;
    case 'Nested':
      return traceExpr(body, scope, c);
    case 'Collate':
      return traceExpr(field(body, 'expr'), scope, c);
    case 'Convert':
    case 'Cast': {
      // A conversion may fail or change on the value (DOUBLE out of range, JSON): a condition on it.
      const value = traceExpr(field(body, 'expr'), scope, c);
      condition(c, value);
      return transform(value);
    }
    case 'Case': {
      // Which branch runs is chosen by the operand and conditions: conditions on what they read.
      let trace = traceGeneric(field(body, 'operand'), scope, c);
      condition(c, trace);
      for (const when of asArray(field(body, 'conditions'))) {
        const test = traceGeneric(field(when, 'condition'), scope, c);
        condition(c, test);
        trace = union(trace, union(test, traceGeneric(field(when, 'result'), scope, c)));
      }
      return transform(union(trace, traceGeneric(field(body, 'else_result'), scope, c)));
    }
    case 'Like':
    case 'ILike':
    case 'RLike': {
      // A pattern built from a value may be malformed: an error oracle on it.
      const pattern = traceGeneric(field(body, 'pattern'), scope, c);
      condition(c, pattern);
      return transform(union(traceGeneric(field(body, 'expr'), scope, c), pattern));
    }
    case 'Subquery': {
      const cols = queryColumns(body, scope, c);
      return unionAll(cols.columns.map((col) => col.trace));
    }
    case 'Exists':
    case 'InSubquery': {
      const t = traceGeneric(body, scope, c);
      c.predicates = union(c.predicates, t);
      return transform(t);
    }
    case 'BinaryOp': {
      if (field(body, 'op') === 'Assignment') {
        const value = traceExpr(field(body, 'right'), scope, c);
        const target = identName(field(field(body, 'left'), 'Identifier'));
        if (target?.startsWith('@')) c.assigned.push({ name: target.slice(1).toLowerCase(), trace: value });
        return value;
      }
      const operands = union(
        traceExpr(field(body, 'left'), scope, c),
        traceExpr(field(body, 'right'), scope, c),
      );
      // Comparisons and concatenation are total; arithmetic can overflow, and AND, OR and XOR choose
      // whether to evaluate their other side by this one.
      if (!TOTAL_OPERATORS.has(String(field(body, 'op')))) condition(c, operands);
      return transform(operands);
    }
    case 'Function':
      return functionTrace(body, scope, c);
    default:
      return transform(traceGeneric(body, scope, c));
  }
}

/** Binary operators total in both operands: comparisons and string concatenation. */
const TOTAL_OPERATORS = new Set(['Eq', 'NotEq', 'Lt', 'Gt', 'LtEq', 'GtEq', 'Spaceship', 'StringConcat']);

/**
 * A use of a value that can fail, wait, branch or change the number of rows on it: recorded with the
 * predicates, so masking refuses it over masked columns (see MYSQL_TOTAL_FUNCTIONS).
 */
function condition(c: Collector, trace: Trace): void {
  c.predicates = union(c.predicates, trace);
}

function variableTrace(name: string, c: Collector): Trace {
  const lineage = c.env.variables.get(name);
  // Not assigned by any statement the proxy saw: code it cannot see (a trigger, a stored routine)
  // may have set it from any column.
  if (!lineage) {
    c.readsUnknown = true;
    return OPAQUE;
  }
  // A variable whose value could not be traced may hold anything the session read.
  if (lineage.opaque) c.readsUnknown = true;
  return fromLineage(lineage);
}

function functionTrace(body: unknown, scope: Scope, c: Collector): Trace {
  const name = functionName(body) ?? '';
  const qualified = nameParts(field(body, 'name')).length > 1;
  const args = traceGeneric({ args: field(body, 'args') }, scope, c);
  // COUNT(DISTINCT x), GROUP_CONCAT(DISTINCT x)...: the argument is compared for equality.
  if (field(field(field(body, 'args'), 'List'), 'duplicate_treatment') === 'Distinct')
    recordEquality(c, args);
  if (!MYSQL_COUNTING_FUNCTIONS.has(name) && !MYSQL_TOTAL_FUNCTIONS.has(name)) condition(c, args);
  const over = field(body, 'over');
  if (over) c.predicates = union(c.predicates, traceGeneric(over, scope, c));
  if (MYSQL_COUNTING_FUNCTIONS.has(name)) return transform(CLEAN);
  if (qualified || !MYSQL_PURE_FUNCTIONS.has(name) || c.env.catalog.userRoutines.has(name)) {
    c.readsUnknown ||= !MYSQL_PURE_FUNCTIONS.has(name);
    return makeOpaque(transform(args));
  }
  return transform(args);
}

/** The union of every expression inside a node whose shape lineage does not need to know. */
function traceGeneric(node: unknown, scope: Scope, c: Collector): Trace {
  if (Array.isArray(node)) return unionAll(node.map((item) => traceGeneric(item, scope, c)));
  if (!isObject(node)) return CLEAN;
  const v = variant(node);
  if (v && EXPR_KINDS.has(v[0])) return traceExpr(node, scope, c);
  let out = CLEAN;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'span' || key === 'data_type' || key === 'alias' || key === 'name') continue;
    out = union(out, traceGeneric(value, scope, c));
  }
  return out;
}

const EXPR_KINDS = new Set([
  'Identifier',
  'CompoundIdentifier',
  'Value',
  'Nested',
  'Collate',
  'Subquery',
  'Exists',
  'InSubquery',
  'BinaryOp',
  'Function',
  'UnaryOp',
  'Cast',
  'Convert',
  'Case',
  'InList',
  'Between',
  'Like',
  'ILike',
  'RLike',
  'IsNull',
  'IsNotNull',
  'Extract',
  'Substring',
  'Trim',
  'Position',
  'Interval',
  'Tuple',
  'Array',
  'JsonAccess',
  'MatchAgainst',
]);
