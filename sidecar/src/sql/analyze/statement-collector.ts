import { parseTree } from '../parse-tree.ts';
import { mayNestTooDeeply } from '../parser-nesting.ts';
import { assembleFacts, type StatementEntry } from './assemble-facts.ts';
import {
  type AstNode,
  isObject,
  list,
  names,
  nodeOf,
  rangeVarName,
  str,
  stringConstant,
  unwrap,
} from './ast.ts';
import { whereIsEffective } from './effective-where.ts';
import {
  ADMIN_FUNCTIONS,
  DYNAMIC_SQL_FUNCTIONS,
  DYNAMIC_SQL_PREFIXES,
  FILE_FUNCTIONS,
  FILE_VIEWS,
  HARMLESS_SETTINGS,
  IDENTITY_SETTINGS,
  isAdminSetting,
  SQL_TEXT_ARGUMENT,
  WRITE_FUNCTIONS,
} from './function-catalog.ts';
import { visitPlpgsql } from './plpgsql-body.ts';
import {
  cteNames,
  EMPTY_SCOPE,
  isCte,
  type RangeItem,
  type RangeScope,
  rangeItems,
  rangeVarItem,
  resolveColumn,
} from './range-scope.ts';
import { EVERY_CLASS, isStatementType, statementType } from './statement-catalog.ts';
import type {
  GuardrailRuleKind,
  PreparedStatement,
  StatementClass,
  StatementFacts,
  StatementKind,
} from './statement-facts.ts';

/** Texts nested deeper than this (EXECUTE of a string in a DO block in an EXECUTE...) are not analysed. */
const MAX_DEPTH = 8;

interface Context {
  readonly topLevel: number;
  readonly via: readonly string[];
  readonly depth: number;
  /** The statement's own text, for the PL/pgSQL parser; only for top-level statements of a text. */
  readonly source?: () => string;
}

interface Draft {
  kind: StatementKind;
  command: string;
  readonly topLevel: number;
  readonly via: readonly string[];
  readonly classes: Set<StatementClass>;
  readonly tablesRead: Set<string>;
  readonly tablesWritten: Set<string>;
  readonly objects: Set<string>;
  readonly columnsRead: Set<string>;
  readonly columnsWritten: Set<string>;
  readonly functions: Set<string>;
  readonly operators: Set<string>;
  readonly types: Set<string>;
  executes?: string;
  where?: 'effective' | 'ineffective' | 'absent';
  readonly findings: { kind: GuardrailRuleKind; detail: string; tables?: readonly string[] }[];
}

type Handler = (
  this: StatementCollector,
  draft: Draft,
  node: AstNode,
  ctx: Context,
  scope: RangeScope,
) => void;

/** Statement kinds whose children are query parts (nested SELECTs fold in, RangeVars are reads). */
const QUERY_KINDS = new Set<StatementKind>(['select', 'insert', 'update', 'delete', 'merge']);

/** Object types a DROP of which names tables, so rules restricted to tables can match it. */
const TABLE_OBJECT_TYPES = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);

/**
 * pg_dump's way of setting a setting only where the server has it:
 * `SELECT set_config(name, 'value', false) FROM pg_settings WHERE name = 'setting'`. Each row the
 * query returns has `name` equal to the literal, so each call sets that setting and no other. Only
 * this exact shape proves it: one un-aliased pg_settings (not a CTE), a WHERE of `name = 'literal'`
 * alone, every output a set_config of that `name` to a constant, nothing else (no joins, grouping,
 * set operations or subqueries that could bring other rows). Returns each such call with the
 * setting it sets; nothing when any part differs.
 *
 * What the proof assumes: that `pg_settings` is the system view or at least a relation whose `name`
 * compares as text; shadowing it with a column type whose `=` is not equality takes a new type or
 * operator, which is DDL judged on its own. The value is a constant, so even then the call could
 * only store that constant.
 */
function provenSettingCalls(select: AstNode, scope: RangeScope): Map<AstNode, string> {
  const proven = new Map<AstNode, string>();
  const from = list(select['fromClause']);
  const relation = from.length === 1 ? nodeOf(from[0], 'RangeVar') : undefined;
  if (!relation || relation['alias'] !== undefined || isCte(relation, scope)) return proven;
  if (str(relation['relname']) !== 'pg_settings') return proven;
  const schema = str(relation['schemaname']);
  if (schema !== undefined && schema !== 'pg_catalog') return proven;
  if (relation['catalogname'] !== undefined) return proven;
  for (const key of [
    'withClause',
    'larg',
    'rarg',
    'groupClause',
    'havingClause',
    'windowClause',
    'distinctClause',
    'intoClause',
    'valuesLists',
    'lockingClause',
  ])
    if (select[key] !== undefined) return proven;
  const setting = equalityWithLiteral(select['whereClause']);
  if (setting === undefined) return proven;
  const calls: AstNode[] = [];
  for (const target of list(select['targetList'])) {
    const call = nodeOf(nodeOf(target, 'ResTarget')?.['val'], 'FuncCall');
    if (!call || !isSettingNameCall(call)) return proven;
    calls.push(call);
  }
  for (const call of calls) proven.set(call, setting);
  return proven;
}

/** `set_config(name, 'constant', false|true)`, possibly `pg_catalog.`-qualified, of pg_settings' `name`. */
function isSettingNameCall(call: AstNode): boolean {
  const parts = names(call['funcname']) ?? [];
  const qualified = parts[0] === 'pg_catalog' ? parts.slice(1) : parts;
  if (qualified.length !== 1 || qualified[0] !== 'set_config') return false;
  for (const key of ['agg_order', 'agg_filter', 'over', 'agg_star', 'agg_distinct', 'func_variadic'])
    if (call[key] !== undefined && call[key] !== false) return false;
  const args = list(call['args']);
  return args.length === 3 && isSettingsNameColumn(args[0]) && stringConstant(args[1]) !== undefined;
}

function isSettingsNameColumn(value: unknown): boolean {
  const fields = names(nodeOf(value, 'ColumnRef')?.['fields']);
  return (
    fields !== undefined &&
    fields.at(-1) === 'name' &&
    (fields.length === 1 || (fields.length === 2 && fields[0] === 'pg_settings'))
  );
}

/** The literal of a WHERE that is exactly `name = 'literal'` (either side), else undefined. */
function equalityWithLiteral(where: unknown): string | undefined {
  const expr = nodeOf(where, 'A_Expr');
  if (expr?.['kind'] !== 'AEXPR_OP') return undefined;
  const operator = names(expr['name']) ?? [];
  const plain = operator.length === 1 || (operator.length === 2 && operator[0] === 'pg_catalog');
  if (!plain || operator.at(-1) !== '=') return undefined;
  const [left, right] = [expr['lexpr'], expr['rexpr']];
  const literal = isSettingsNameColumn(left)
    ? stringConstant(right)
    : isSettingsNameColumn(right)
      ? stringConstant(left)
      : undefined;
  return literal?.toLowerCase();
}

/** Turns parse trees into statement entries; one collector per analysed text. */
export class StatementCollector {
  readonly entries: StatementEntry[] = [];
  readonly prepared: PreparedStatement[] = [];
  readonly #preparedHere = new Map<string, StatementFacts>();
  readonly unresolvedExecutes: string[] = [];
  readonly deallocated: string[] = [];
  readonly cursors: { name: string; query: number }[] = [];
  /** set_config calls whose setting name a pg_settings row proves, see provenSettingCalls. */
  readonly #provenSettings = new Map<AstNode, string>();

  /** Analyses every statement of `sql` at top level; returns how many there are, or why there are none. */
  topLevel(sql: string): number | ParseFailure {
    const stmts = parseStatements(sql);
    if (typeof stmts === 'string') return stmts;
    stmts.forEach((raw, index) => {
      this.statementValue(raw.stmt, { topLevel: index, via: [], depth: 0, source: sourceOf(sql, raw) });
    });
    return stmts.length;
  }

  finish(meta: { parsed: boolean; statementCount: number }): StatementFacts {
    return assembleFacts(this.entries, {
      ...meta,
      prepared: this.prepared,
      unresolvedExecutes: [...new Set(this.unresolvedExecutes)],
      deallocated: this.deallocated,
      cursors: this.cursors,
    });
  }

  statementValue(value: unknown, ctx: Context, scope: RangeScope = EMPTY_SCOPE): void {
    const wrapped = unwrap(value);
    if (wrapped) this.statement(wrapped.type, wrapped.node, ctx, scope);
  }

  /** Analyses one statement node (and what it contains); pushes its entry after its nested ones. */
  statement(type: string, node: AstNode, ctx: Context, scope: RangeScope): void {
    const known = statementType(type, node);
    const draft: Draft = {
      kind: known?.kind ?? 'unknown',
      command: known?.command ?? type.replace(/Stmt$/, '').toUpperCase(),
      topLevel: ctx.topLevel,
      via: ctx.via,
      classes: new Set(known ? known.classes : EVERY_CLASS),
      tablesRead: new Set(),
      tablesWritten: new Set(),
      objects: new Set(),
      columnsRead: new Set(),
      columnsWritten: new Set(),
      functions: new Set(),
      operators: new Set(),
      types: new Set(),
      findings: [],
    };
    if (!known) {
      addFinding(draft, 'unknown-statement', 'Gatehouse does not know this type of statement');
    } else {
      const handler = HANDLERS[type];
      for (const name of namedObjects(type, node)) draft.objects.add(name);
      if (handler) handler.call(this, draft, node, ctx, scope);
      else this.walk(node, draft, ctx, scope, QUERY_KINDS.has(draft.kind));
      this.#kindFindings(draft, type, node);
    }
    this.#push(draft);
  }

  #push(draft: Draft): void {
    const frozen = (set: Set<string>): readonly string[] => (set.size === 0 ? NONE : Object.freeze([...set]));
    this.entries.push(
      Object.freeze({
        kind: draft.kind,
        command: draft.command,
        summary: summarize(draft),
        topLevel: draft.topLevel,
        via: Object.freeze([...draft.via]),
        classes: Object.freeze(EVERY_CLASS.filter((c) => draft.classes.has(c))),
        tablesRead: frozen(draft.tablesRead),
        tablesWritten: frozen(draft.tablesWritten),
        objects: frozen(draft.objects),
        columnsRead: frozen(draft.columnsRead),
        columnsWritten: frozen(draft.columnsWritten),
        functions: frozen(draft.functions),
        ...(draft.operators.size > 0 && { operators: frozen(draft.operators) }),
        ...(draft.types.size > 0 && { types: frozen(draft.types) }),
        ...(draft.executes !== undefined && { executes: draft.executes }),
        ...(draft.where !== undefined && { where: draft.where }),
        findings: Object.freeze(draft.findings.map((f) => Object.freeze(f))),
      }),
    );
  }

  /** Findings that follow from the statement type alone. */
  #kindFindings(draft: Draft, type: string, node: AstNode): void {
    const objects = [...draft.objects];
    if (draft.kind === 'drop') {
      const tables =
        type === 'DropStmt' && TABLE_OBJECT_TYPES.has(str(node['removeType']) ?? '') ? objects : undefined;
      addFinding(draft, 'drop', 'it drops objects and what they hold', tables);
    } else if (draft.kind === 'alter') {
      const tables = alteredTables(type, node, objects);
      addFinding(draft, 'alter', 'it changes the schema or the server configuration', tables);
      if (type === 'AlterTableStmt' && droppedPart(node))
        addFinding(draft, 'drop', `its ${droppedPart(node)} drops data`, tables);
      if (type === 'AlterRoleStmt') addFinding(draft, 'grant', 'role attributes are privileges');
    } else if (draft.kind === 'grant') {
      const tables =
        type === 'GrantStmt' && node['objtype'] === 'OBJECT_TABLE' && node['targtype'] === 'ACL_TARGET_OBJECT'
          ? objects
          : undefined;
      addFinding(draft, 'grant', 'it changes privileges', tables);
    } else if (type === 'CreateRoleStmt') {
      addFinding(draft, 'grant', 'a new role is a new set of privileges');
    }
  }

  /**
   * Visits the children of a node. In query mode nested SELECTs are part of this statement and
   * RangeVars are tables read; otherwise nested statements are statements of their own and
   * RangeVars are the objects acted on.
   */
  walk(value: unknown, draft: Draft, ctx: Context, scope: RangeScope, query: boolean): void {
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, draft, ctx, scope, query);
      return;
    }
    if (!isObject(value)) return;
    const wrapped = unwrap(value);
    if (wrapped) {
      this.#node(wrapped.type, wrapped.node, draft, ctx, scope, query);
      return;
    }
    if (typeof value['relname'] === 'string') {
      this.#rangeVar(value, draft, scope, query);
      return;
    }
    this.#fields(value, draft, ctx, scope, query);
  }

  #fields(node: AstNode, draft: Draft, ctx: Context, scope: RangeScope, query: boolean, skip?: Set<string>) {
    for (const key in node) {
      if (skip?.has(key)) continue;
      const child = node[key];
      // Fields that hold a statement or a call without its type wrapper.
      if (key === 'setstmt' && isObject(child))
        this.statement('VariableSetStmt', child, nested(ctx, draft), scope);
      else if (key === 'funccall' && isObject(child)) this.#funcCall(child, draft, ctx, scope, query);
      else this.walk(child, draft, ctx, scope, query);
    }
  }

  #node(type: string, node: AstNode, draft: Draft, ctx: Context, scope: RangeScope, query: boolean): void {
    switch (type) {
      case 'String':
      case 'Integer':
      case 'Float':
      case 'Boolean':
      case 'BitString':
      case 'A_Const':
      case 'ParamRef':
        return;
      case 'RangeVar':
        this.#rangeVar(node, draft, scope, query);
        return;
      case 'FuncCall':
        this.#funcCall(node, draft, ctx, scope, query);
        return;
      case 'ColumnRef':
        this.#columnRef(node, draft, scope);
        return;
      case 'A_Expr':
        for (const op of operatorsOf(node)) draft.operators.add(op);
        break;
      case 'SortBy':
      case 'SubLink':
        addOperator(draft, node[type === 'SortBy' ? 'useOp' : 'operName']);
        break;
      case 'CaseExpr':
        // CASE x WHEN y compares with `=`.
        if (node['arg'] !== undefined) draft.operators.add('=');
        break;
      case 'TypeCast': {
        // A cast to a domain checks its constraints; a user-defined cast runs its function.
        const type = isObject(node['typeName']) ? names(node['typeName']['names']) : undefined;
        if (type && type.length > 0) draft.types.add(operatorName(type));
        break;
      }
      case 'DefElem':
        this.#defElem(node, draft);
        this.walk(node['arg'], draft, ctx, scope, query);
        return;
      case 'SelectStmt':
        if (query) {
          this.select(node, draft, ctx, scope);
          return;
        }
        break;
    }
    if (isStatementType(type)) {
      this.statement(type, node, nested(ctx, draft), scope);
      return;
    }
    this.#fields(node, draft, ctx, scope, query);
  }

  #rangeVar(node: AstNode, draft: Draft, scope: RangeScope, query: boolean): void {
    if (isCte(node, scope)) return;
    const name = rangeVarName(node);
    if (query) {
      draft.tablesRead.add(name);
      draft.classes.add('read');
    } else draft.objects.add(name);
    if (FILE_VIEWS.has(str(node['relname']) ?? '')) {
      addFinding(draft, 'file-access', `it reads ${name}, which shows server configuration files`);
      draft.classes.add('admin');
    }
  }

  #columnRef(node: AstNode, draft: Draft, scope: RangeScope): void {
    const column = resolveColumn(node['fields'], scope);
    if (column.item?.table !== undefined && !column.item.opaque)
      draft.columnsRead.add(`${column.item.table}.${column.column}`);
  }

  #defElem(node: AstNode, draft: Draft): void {
    const name = str(node['defname']);
    if (name === 'program') {
      addFinding(draft, 'copy-program', 'its program option runs a command on the database server');
      addFinding(draft, 'file-access', 'its program option runs a command on the database server');
      draft.classes.add('admin');
    } else if (name === 'filename') {
      addFinding(draft, 'file-access', 'its filename option reads a file on the database server');
      draft.classes.add('admin');
    } else if (name === 'security' && nodeOf(node['arg'], 'Boolean')?.['boolval'] === true) {
      addFinding(draft, 'identity-change', "SECURITY DEFINER runs code with its owner's privileges");
      draft.classes.add('admin');
    }
  }

  #funcCall(node: AstNode, draft: Draft, ctx: Context, scope: RangeScope, query: boolean): void {
    const parts = names(node['funcname']) ?? [];
    const qualified = parts[0] === 'pg_catalog' ? parts.slice(1) : parts;
    const name = qualified.join('.');
    const base = qualified.at(-1) ?? '';
    const args = list(node['args']);
    draft.functions.add(name);
    if (FILE_FUNCTIONS.has(base)) {
      addFinding(draft, 'file-access', `it calls ${base}(), which reaches files on the database server`);
      draft.classes.add('admin');
    }
    if (isDynamicSqlFunction(base, args.length)) {
      addFinding(draft, 'dynamic-sql', `it calls ${base}(), which runs SQL given as text`);
      const argument = SQL_TEXT_ARGUMENT[base];
      const text = argument === undefined ? undefined : stringConstant(args[argument]);
      if (text === undefined) draft.classes.add('admin');
      else this.text(text, draft, ctx, `${base}()`);
    }
    if (base === 'set_config') this.#setConfig(args[0], draft, this.#provenSettings.get(node));
    if (ADMIN_FUNCTIONS.has(base)) draft.classes.add('admin');
    if (WRITE_FUNCTIONS.has(base)) draft.classes.add('write');
    this.#fields(node, draft, ctx, scope, query, FUNCNAME);
  }

  #setConfig(nameArgument: unknown, draft: Draft, proven: string | undefined): void {
    const setting = stringConstant(nameArgument)?.trim().toLowerCase();
    if (setting === undefined && proven !== undefined && HARMLESS_SETTINGS.has(proven)) return;
    if (setting === undefined) {
      addFinding(draft, 'identity-change', 'it calls set_config() on a setting named at run time');
      draft.classes.add('admin');
    } else if (IDENTITY_SETTINGS.has(setting)) {
      addFinding(
        draft,
        'identity-change',
        `it calls set_config() on ${setting}, which changes the session's identity`,
      );
      draft.classes.add('admin');
    } else if (isAdminSetting(setting)) draft.classes.add('admin');
  }

  /** Folds a SELECT (with its CTEs, set operations and subqueries) into `draft`. */
  select(node: AstNode, draft: Draft, ctx: Context, scope: RangeScope): void {
    const withScope = this.withClause(node['withClause'], draft, ctx, scope);
    if (isObject(node['larg'])) this.select(node['larg'], draft, ctx, withScope);
    if (isObject(node['rarg'])) this.select(node['rarg'], draft, ctx, withScope);
    const level: RangeScope = { ...withScope, items: rangeItems(node['fromClause'], withScope) };
    if (Array.isArray(node['lockingClause'])) draft.classes.add('write');
    for (const [call, setting] of provenSettingCalls(node, withScope))
      this.#provenSettings.set(call, setting);
    this.#fields(node, draft, ctx, level, true, SELECT_HANDLED);
  }

  /** Walks the CTEs of a WITH clause (DML in them become statements) and returns the scope naming them. */
  withClause(withClause: unknown, draft: Draft, ctx: Context, scope: RangeScope): RangeScope {
    if (!isObject(withClause)) return scope;
    const all = cteNames(withClause);
    const recursive = withClause['recursive'] === true;
    const visible = new Set<string>(recursive ? all : []);
    for (const cte of list(withClause['ctes'])) {
      const node = nodeOf(cte, 'CommonTableExpr');
      if (!node) continue;
      this.walk(node['ctequery'], draft, ctx, { parent: scope, items: [], ctes: new Set(visible) }, true);
      const name = str(node['ctename']);
      if (name) visible.add(name);
    }
    return { parent: scope, items: [], ctes: new Set(all) };
  }

  /** Analyses SQL text found inside a statement (a function body, an EXECUTE string) as nested statements. */
  text(sql: string, draft: Draft, ctx: Context, label: string): void {
    if (ctx.depth >= MAX_DEPTH) {
      opaque(draft, `SQL text nested too deeply (in ${label})`);
      return;
    }
    const stmts = parseStatements(sql);
    if (typeof stmts === 'string') {
      opaque(draft, `${PARSE_FAILURES[stmts]} (in ${label})`);
      return;
    }
    const via = [...ctx.via, label];
    for (const raw of stmts) {
      this.statementValue(raw.stmt, {
        topLevel: ctx.topLevel,
        via,
        depth: ctx.depth + 1,
        source: sourceOf(sql, raw),
      });
    }
  }

  /** Folds an expression (`SELECT <expr>`) found in procedural code into `draft`. */
  expression(sql: string, draft: Draft, ctx: Context, label: string): void {
    const stmts = parseStatements(`SELECT ${sql}`);
    const select =
      typeof stmts !== 'string' && stmts.length === 1 ? nodeOf(stmts[0]!.stmt, 'SelectStmt') : undefined;
    if (!select) opaque(draft, `an expression that does not parse (in ${label})`);
    else this.select(select, draft, { ...ctx, depth: ctx.depth + 1 }, EMPTY_SCOPE);
  }

  /** Visits a PL/pgSQL body: its SQL becomes nested statements, EXECUTE of built strings is opaque. */
  plpgsql(draft: Draft, ctx: Context, label: string): void {
    const source = ctx.source?.();
    if (source === undefined || ctx.depth >= MAX_DEPTH) {
      opaque(draft, `a ${label} body`);
      return;
    }
    // The body is a dollar-quoted string to the SQL lexer; bound its nesting as code.
    if (mayNestTooDeeply(source.replaceAll('$', ' '))) {
      opaque(draft, `a ${label} body nested too deeply`);
      return;
    }
    const inner: Context = { ...ctx, source: undefined };
    const parsed = visitPlpgsql(source, {
      statement: (sql) => this.text(sql, draft, inner, label),
      expression: (sql) => this.expression(sql, draft, inner, label),
      dynamic: (expression) => {
        const constant = constantText(expression);
        if (constant === undefined) opaque(draft, 'EXECUTE of a string built at run time');
        else this.text(constant, draft, { ...inner, via: [...inner.via, label] }, 'EXECUTE');
      },
    });
    if (!parsed) opaque(draft, 'a PL/pgSQL body that does not parse');
  }

  addPrepared(name: string, facts: StatementFacts): void {
    this.prepared.push({ name, facts });
    this.#preparedHere.set(name, facts);
  }

  preparedHere(name: string): StatementFacts | undefined {
    return this.#preparedHere.get(name);
  }

  /** Appends the statements of separately analysed facts as nested statements. */
  merge(facts: StatementFacts, ctx: Context, via: string): void {
    for (const s of facts.statements) {
      this.entries.push({
        ...s,
        topLevel: ctx.topLevel,
        via: Object.freeze([...ctx.via, via, ...s.via]),
        findings: s.findings.map(({ statement: _index, ...finding }) => finding),
      });
    }
  }
}

const NONE: readonly string[] = Object.freeze([]);
const PARSE_FAILURES: Record<ParseFailure, string> = {
  syntax: 'SQL text that does not parse',
  nesting: 'SQL text nested too deeply',
  parser: 'SQL text the parser failed on',
};
const FUNCNAME = new Set(['funcname']);
const SELECT_HANDLED = new Set(['withClause', 'larg', 'rarg', 'intoClause', 'lockingClause']);

function nested(ctx: Context, draft: Draft): Context {
  return { topLevel: ctx.topLevel, via: [...ctx.via, draft.command], depth: ctx.depth };
}

function addFinding(draft: Draft, kind: GuardrailRuleKind, detail: string, tables?: readonly string[]): void {
  draft.findings.push(
    tables === undefined ? { kind, detail } : { kind, detail, tables: Object.freeze([...tables]) },
  );
}

/** Code Gatehouse cannot see into: a dynamic-sql finding, and every privilege it might use. */
/** The operators an A_Expr applies: BETWEEN is `>=` and `<=`, IN `=` or `<>`, LIKE `~~`... as named. */
function operatorsOf(node: AstNode): string[] {
  const written = names(node['name']);
  if (!written || written.length === 0) return [];
  const kind = str(node['kind']) ?? '';
  if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) return ['>=', '<='];
  if (kind === 'AEXPR_DISTINCT' || kind === 'AEXPR_NOT_DISTINCT' || kind === 'AEXPR_NULLIF') return ['='];
  return [operatorName(written)];
}

function addOperator(draft: Draft, name: unknown): void {
  const written = names(name);
  if (written && written.length > 0) draft.operators.add(operatorName(written));
}

function operatorName(parts: readonly string[]): string {
  return (parts[0] === 'pg_catalog' ? parts.slice(1) : parts).join('.');
}

function opaque(draft: Draft, what: string): void {
  addFinding(draft, 'dynamic-sql', `it runs ${what}, which Gatehouse cannot analyse`);
  draft.classes.add('admin');
}

function isDynamicSqlFunction(name: string, argumentCount: number): boolean {
  // ts_rewrite(query, 'SELECT ...') runs its second argument; the three-argument form does not.
  if (name === 'ts_rewrite') return argumentCount === 2;
  return DYNAMIC_SQL_FUNCTIONS.has(name) || DYNAMIC_SQL_PREFIXES.some((prefix) => name.startsWith(prefix));
}

function alteredTables(
  type: string,
  node: AstNode,
  objects: readonly string[],
): readonly string[] | undefined {
  if (type === 'AlterTableStmt' && node['objtype'] === 'OBJECT_TABLE') return objects;
  if (
    type === 'RenameStmt' &&
    (node['renameType'] === 'OBJECT_TABLE' || node['renameType'] === 'OBJECT_COLUMN')
  )
    return objects;
  return undefined;
}

function droppedPart(node: AstNode): string | undefined {
  for (const cmd of list(node['cmds'])) {
    const subtype = nodeOf(cmd, 'AlterTableCmd')?.['subtype'];
    if (subtype === 'AT_DropColumn') return 'DROP COLUMN';
    if (subtype === 'AT_DropConstraint') return 'DROP CONSTRAINT';
  }
  return undefined;
}

/** The string an EXECUTE expression evaluates to when it is a single literal. */
function constantText(expression: string): string | undefined {
  const stmts = parseStatements(`SELECT ${expression}`);
  const select =
    typeof stmts !== 'string' && stmts.length === 1 ? nodeOf(stmts[0]!.stmt, 'SelectStmt') : undefined;
  const targets = list(select?.['targetList']);
  if (!select || targets.length !== 1 || select['fromClause'] !== undefined) return undefined;
  return stringConstant(nodeOf(targets[0], 'ResTarget')?.['val']);
}

interface RawStatement {
  readonly stmt?: unknown;
  readonly stmt_location?: number;
  readonly stmt_len?: number;
}

/** Why a text gave no statements: a syntax error, nesting too deep to parse safely, or a parser that failed otherwise. */
export type ParseFailure = 'syntax' | 'nesting' | 'parser';

/** The statements of `sql`, or why there are none: PostgreSQL's parser rejects it, or it may nest too deeply to parse safely. */
export function parseStatements(sql: string): readonly RawStatement[] | ParseFailure {
  return parseTree(sql) as readonly RawStatement[] | ParseFailure;
}

/** The text of one statement; locations are byte offsets into the UTF-8 text. */
function sourceOf(sql: string, raw: RawStatement): () => string {
  return () => {
    const start = raw.stmt_location ?? 0;
    if (!/[^\x00-\x7f]/.test(sql))
      return raw.stmt_len ? sql.slice(start, start + raw.stmt_len) : sql.slice(start);
    const bytes = Buffer.from(sql, 'utf8');
    return bytes.toString('utf8', start, raw.stmt_len ? start + raw.stmt_len : bytes.length);
  };
}

function targetItem(relation: unknown, scope: RangeScope): RangeItem | undefined {
  return isObject(relation) ? rangeVarItem(relation, scope) : undefined;
}

function whereStatus(predicate: unknown, effective: boolean): 'effective' | 'ineffective' | 'absent' {
  return effective ? 'effective' : predicate === undefined ? 'absent' : 'ineffective';
}

function isTemporary(relation: unknown): boolean {
  return isObject(relation) && relation['relpersistence'] === 't';
}

/** EXPLAIN's ANALYZE option is on unless spelled as one of PostgreSQL's false booleans. */
function explainAnalyzes(options: unknown): boolean {
  for (const option of list(options)) {
    const def = nodeOf(option, 'DefElem');
    if (def?.['defname'] !== 'analyze') continue;
    const arg = unwrap(def['arg']);
    if (!arg) return true;
    if (arg.type === 'Integer') return arg.node['ival'] !== undefined && arg.node['ival'] !== 0;
    if (arg.type === 'Boolean') return arg.node['boolval'] === true;
    const text = String(arg.node['sval'] ?? '').toLowerCase();
    return !/^(f|fa|fal|fals|false|n|no|of|off|0)$/.test(text);
  }
  return false;
}

const HANDLERS: Record<string, Handler> = {
  SelectStmt(draft, node, ctx, scope) {
    const into = isObject(node['intoClause']) ? node['intoClause'] : undefined;
    if (into && isObject(into['rel'])) {
      draft.command = 'SELECT INTO';
      draft.tablesWritten.add(rangeVarName(into['rel']));
      draft.classes.add(isTemporary(into['rel']) ? 'read' : 'ddl');
    }
    this.select(node, draft, ctx, scope);
  },

  InsertStmt(draft, node, ctx, scope) {
    const withScope = this.withClause(node['withClause'], draft, ctx, scope);
    const item = targetItem(node['relation'], withScope);
    const table = item?.table ?? '';
    draft.tablesWritten.add(table);
    for (const col of list(node['cols'])) {
      const name = str(nodeOf(col, 'ResTarget')?.['name']);
      if (name) draft.columnsWritten.add(`${table}.${name}`);
    }
    this.walk(node['selectStmt'], draft, ctx, withScope, true);
    const level: RangeScope = { ...withScope, parent: withScope, items: item ? [item] : [] };
    const conflict = isObject(node['onConflictClause']) ? node['onConflictClause'] : undefined;
    for (const target of list(conflict?.['targetList'])) {
      const name = str(nodeOf(target, 'ResTarget')?.['name']);
      if (name) draft.columnsWritten.add(`${table}.${name}`);
    }
    this.walk(conflict, draft, ctx, level, true);
    this.walk(node['returningList'], draft, ctx, level, true);
    this.walk(node['returningClause'], draft, ctx, level, true);
  },

  UpdateStmt(draft, node, ctx, scope) {
    const withScope = this.withClause(node['withClause'], draft, ctx, scope);
    const item = targetItem(node['relation'], withScope);
    if (!item) return;
    draft.tablesWritten.add(item.table ?? '');
    this.walk(node['fromClause'], draft, ctx, withScope, true);
    const level: RangeScope = {
      parent: withScope,
      items: [item, ...rangeItems(node['fromClause'], withScope)],
      ctes: new Set(),
    };
    for (const target of list(node['targetList'])) {
      const res = nodeOf(target, 'ResTarget');
      const name = str(res?.['name']);
      if (name) draft.columnsWritten.add(`${item.table}.${name}`);
      this.walk(res?.['val'], draft, ctx, level, true);
      this.walk(res?.['indirection'], draft, ctx, level, true);
    }
    const where = node['whereClause'];
    const effective = whereIsEffective(where, item, level);
    draft.where = whereStatus(where, effective);
    if (!effective) addFinding(draft, 'update-without-where', whereProblem(where), [item.table ?? '']);
    this.walk(where, draft, ctx, level, true);
    this.walk(node['returningList'], draft, ctx, level, true);
    this.walk(node['returningClause'], draft, ctx, level, true);
  },

  DeleteStmt(draft, node, ctx, scope) {
    const withScope = this.withClause(node['withClause'], draft, ctx, scope);
    const item = targetItem(node['relation'], withScope);
    if (!item) return;
    draft.tablesWritten.add(item.table ?? '');
    this.walk(node['usingClause'], draft, ctx, withScope, true);
    const level: RangeScope = {
      parent: withScope,
      items: [item, ...rangeItems(node['usingClause'], withScope)],
      ctes: new Set(),
    };
    const where = node['whereClause'];
    const effective = whereIsEffective(where, item, level);
    draft.where = whereStatus(where, effective);
    if (!effective) addFinding(draft, 'delete-without-where', whereProblem(where), [item.table ?? '']);
    this.walk(where, draft, ctx, level, true);
    this.walk(node['returningList'], draft, ctx, level, true);
    this.walk(node['returningClause'], draft, ctx, level, true);
  },

  MergeStmt(draft, node, ctx, scope) {
    const withScope = this.withClause(node['withClause'], draft, ctx, scope);
    const item = targetItem(node['relation'], withScope);
    if (!item) return;
    const table = item.table ?? '';
    draft.tablesWritten.add(table);
    this.walk(node['sourceRelation'], draft, ctx, withScope, true);
    const level: RangeScope = {
      parent: withScope,
      items: [item, ...rangeItems([node['sourceRelation']], withScope)],
      ctes: new Set(),
    };
    const joinRestricts = whereIsEffective(node['joinCondition'], item, level);
    let allEffective = true;
    let changes = false;
    for (const clause of list(node['mergeWhenClauses'])) {
      const when = nodeOf(clause, 'MergeWhenClause');
      if (!when) continue;
      const command = when['commandType'];
      if (command === 'CMD_UPDATE' || command === 'CMD_DELETE') {
        changes = true;
        const effective =
          (when['matchKind'] === 'MERGE_WHEN_MATCHED' && joinRestricts) ||
          whereIsEffective(when['condition'], item, level);
        if (!effective) {
          allEffective = false;
          const verb = command === 'CMD_DELETE' ? 'DELETE' : 'UPDATE';
          addFinding(
            draft,
            command === 'CMD_DELETE' ? 'delete-without-where' : 'update-without-where',
            `its THEN ${verb} has no join or WHEN condition that restricts the rows`,
            [table],
          );
        }
        for (const target of list(when['targetList'])) {
          const name = str(nodeOf(target, 'ResTarget')?.['name']);
          if (name) draft.columnsWritten.add(`${table}.${name}`);
        }
      }
      this.walk(when['condition'], draft, ctx, level, true);
      this.walk(when['targetList'], draft, ctx, level, true);
      this.walk(when['values'], draft, ctx, level, true);
    }
    if (changes) draft.where = allEffective ? 'effective' : 'ineffective';
    this.walk(node['joinCondition'], draft, ctx, level, true);
    this.walk(node['returningList'], draft, ctx, level, true);
    this.walk(node['returningClause'], draft, ctx, level, true);
  },

  TruncateStmt(draft, node) {
    const tables: string[] = [];
    for (const relation of list(node['relations'])) {
      const rv = nodeOf(relation, 'RangeVar');
      if (rv) tables.push(rangeVarName(rv));
    }
    for (const t of tables) draft.tablesWritten.add(t);
    const cascade = node['behavior'] === 'DROP_CASCADE';
    addFinding(
      draft,
      'truncate',
      cascade ? 'it removes every row, here and in referencing tables' : 'it removes every row',
      cascade ? undefined : tables,
    );
  },

  CopyStmt(draft, node, ctx, scope) {
    const from = node['is_from'] === true;
    draft.command = from ? 'COPY FROM' : 'COPY TO';
    draft.classes.clear();
    draft.classes.add(from ? 'write' : 'read');
    if (isObject(node['relation'])) {
      const item = rangeVarItem(node['relation'], scope);
      (from ? draft.tablesWritten : draft.tablesRead).add(item.table ?? '');
      for (const name of list(node['attlist'])) {
        const column = str(nodeOf(name, 'String')?.['sval']);
        if (column) (from ? draft.columnsWritten : draft.columnsRead).add(`${item.table}.${column}`);
      }
      this.walk(node['whereClause'], draft, ctx, { parent: scope, items: [item], ctes: new Set() }, true);
    }
    this.statementValue(node['query'], nested(ctx, draft), scope);
    const filename = str(node['filename']);
    if (node['is_program'] === true) {
      const detail = 'PROGRAM runs a shell command on the database server';
      addFinding(draft, 'copy-program', detail);
      addFinding(draft, 'file-access', detail);
      draft.classes.add('admin');
    } else if (filename !== undefined) {
      addFinding(
        draft,
        'file-access',
        "it reads or writes a file on the database server, not the client's STDIN/STDOUT",
      );
      draft.classes.add('admin');
    }
    this.walk(node['options'], draft, ctx, scope, false);
  },

  ExplainStmt(draft, node, ctx, scope) {
    // Plain EXPLAIN plans without running the statement, so it is not analysed as run. But planning
    // calls functions (IMMUTABLE ones with constant arguments are folded, STABLE ones estimated) and
    // expands views: the functions, operators and relations read are kept for the code they reach.
    if (!explainAnalyzes(node['options'])) {
      const plan = new StatementCollector();
      plan.statementValue(node['query'], { topLevel: 0, via: [], depth: ctx.depth }, scope);
      for (const entry of plan.entries) {
        for (const name of entry.functions) draft.functions.add(name);
        for (const name of entry.operators ?? []) draft.operators.add(name);
        for (const name of entry.tablesRead) draft.tablesRead.add(name);
      }
      return;
    }
    draft.command = 'EXPLAIN ANALYZE';
    this.statementValue(node['query'], nested(ctx, draft), scope);
  },

  VariableSetStmt(draft, node) {
    const name = (str(node['name']) ?? '').trim().toLowerCase();
    // RESET ROLE and RESET SESSION AUTHORIZATION go back to the identity Gatehouse logged in with,
    // which the session has anyway (every change away from it is refused): poolers send them.
    const reset = String(node['kind']).startsWith('VAR_RESET');
    if (IDENTITY_SETTINGS.has(name) && !reset) {
      const spelled = name === 'role' ? 'ROLE' : 'SESSION AUTHORIZATION';
      draft.command = `${draft.command} ${spelled}`;
      addFinding(draft, 'identity-change', "it changes the session's identity");
      draft.classes.add('admin');
    } else if (isAdminSetting(name)) draft.classes.add('admin');
  },

  DiscardStmt(_draft, node) {
    // DISCARD ALL resets the session to how Gatehouse opened it (drivers' pools send it on return);
    // it forgets prepared statements.
    if ((node['target'] ?? 'DISCARD_ALL') !== 'DISCARD_ALL') return;
    this.deallocated.push('*');
  },

  PrepareStmt(draft, node, ctx, scope) {
    const name = str(node['name']) ?? '';
    const body = new StatementCollector();
    body.statementValue(node['query'], { topLevel: 0, via: [], depth: ctx.depth }, scope);
    const facts = body.finish({ parsed: true, statementCount: 1 });
    this.addPrepared(name, facts);
    this.merge(facts, ctx, 'PREPARE');
    draft.objects.add(name);
  },

  ExecuteStmt(draft, node, ctx, scope) {
    const name = str(node['name']) ?? '';
    draft.executes = name;
    draft.objects.add(name);
    this.walk(node['params'], draft, ctx, scope, true);
    const known = this.preparedHere(name);
    if (known) this.merge(known, ctx, 'EXECUTE');
    else {
      this.unresolvedExecutes.push(name);
      addFinding(
        draft,
        'unknown-statement',
        `it runs prepared statement ${name}, which Gatehouse has not seen prepared`,
      );
    }
  },

  DeallocateStmt(draft, node) {
    this.deallocated.push(node['isall'] === true ? '*' : (str(node['name']) ?? ''));
    draft.objects.add(str(node['name']) ?? 'ALL');
  },

  DeclareCursorStmt(draft, node, ctx, scope) {
    const before = this.entries.length;
    this.statementValue(node['query'], nested(ctx, draft), scope);
    const name = str(node['portalname']) ?? '';
    draft.objects.add(name);
    if (this.entries.length > before) this.cursors.push({ name, query: this.entries.length - 1 });
  },

  DoStmt(draft, node, ctx) {
    let language = 'plpgsql';
    for (const arg of list(node['args'])) {
      const def = nodeOf(arg, 'DefElem');
      if (def?.['defname'] === 'language')
        language = (str(nodeOf(def['arg'], 'String')?.['sval']) ?? '').toLowerCase();
    }
    addFinding(draft, 'dynamic-sql', 'it runs procedural code on the database server');
    if (language === 'plpgsql') this.plpgsql(draft, ctx, 'DO');
    else opaque(draft, `code in language ${language}`);
  },

  CallStmt(draft, node, ctx, scope) {
    // The procedure is one of `functions`: the guardrails judge its body from the catalog (code-reach.ts).
    this.walk(node, draft, ctx, scope, true);
  },

  CreateFunctionStmt(draft, node, ctx, scope) {
    const nameParts = names(node['funcname']) ?? [];
    draft.objects.add(nameParts.join('.'));
    let language = 'sql';
    let body: string | undefined;
    for (const option of list(node['options'])) {
      const def = nodeOf(option, 'DefElem');
      if (def?.['defname'] === 'language')
        language = (str(nodeOf(def['arg'], 'String')?.['sval']) ?? '').toLowerCase();
      if (def?.['defname'] === 'as')
        body = str(nodeOf(list(nodeOf(def['arg'], 'List')?.['items'])[0], 'String')?.['sval']);
    }
    if (node['sql_body'] !== undefined) this.walk(node['sql_body'], draft, ctx, scope, false);
    else if (language === 'sql') {
      if (body !== undefined) this.text(body, draft, ctx, draft.command);
    } else if (language === 'plpgsql') this.plpgsql(draft, ctx, draft.command);
    else if (language === 'c' || language === 'internal') {
      addFinding(draft, 'file-access', `language ${language} binds server code by file or symbol name`);
      draft.classes.add('admin');
    } else opaque(draft, `code in language ${language}`);
    this.walk(node['parameters'], draft, ctx, scope, false);
    this.walk(node['returnType'], draft, ctx, scope, false);
    for (const option of list(node['options'])) {
      const def = nodeOf(option, 'DefElem');
      if (def?.['defname'] !== 'as') this.walk(option, draft, ctx, scope, false);
    }
  },

  CreateTrigStmt(draft, node, ctx, scope) {
    const fn = names(node['funcname']);
    if (fn) draft.functions.add((fn[0] === 'pg_catalog' ? fn.slice(1) : fn).join('.'));
    this.walk(node, draft, ctx, scope, false);
  },

  ViewStmt(draft, node, ctx, scope) {
    if (isTemporary(node['view'])) setTemporary(draft);
    this.walk(node, draft, ctx, scope, false);
  },

  CreateTableAsStmt(draft, node, ctx, scope) {
    const into = isObject(node['into']) ? node['into'] : undefined;
    if (into && isObject(into['rel'])) {
      draft.tablesWritten.add(rangeVarName(into['rel']));
      if (isTemporary(into['rel'])) setTemporary(draft);
    }
    this.walk(node, draft, ctx, scope, false);
  },

  CreateStmt(draft, node, ctx, scope) {
    if (isTemporary(node['relation'])) setTemporary(draft);
    this.walk(node, draft, ctx, scope, false);
  },

  CreateSeqStmt(draft, node, ctx, scope) {
    if (isTemporary(node['sequence'])) setTemporary(draft);
    this.walk(node, draft, ctx, scope, false);
  },

  LoadStmt(draft) {
    addFinding(draft, 'file-access', 'it loads a shared library from the database server');
  },

  CreateTableSpaceStmt(draft, node, ctx, scope) {
    addFinding(draft, 'file-access', 'it writes to a directory on the database server');
    this.walk(node, draft, ctx, scope, false);
  },
};

/** Names of the objects a DROP, or a role or database statement, acts on (RangeVars are found by walking). */
function namedObjects(type: string, node: AstNode): string[] {
  if (type === 'DropStmt')
    return list(node['objects'])
      .map(objectName)
      .filter((n) => n !== '');
  const single = str(node['dbname']) ?? str(node['tablespacename']) ?? str(node['subname']);
  if (single !== undefined) return [single];
  const roles = [...list(node['roles']), node['role']].map(
    (r) => str(nodeOf(r, 'RoleSpec')?.['rolename']) ?? str(isObject(r) ? r['rolename'] : undefined),
  );
  return roles.filter((r): r is string => r !== undefined);
}

function objectName(value: unknown): string {
  const wrapped = unwrap(value);
  if (!wrapped) return '';
  switch (wrapped.type) {
    case 'List':
      return (names(wrapped.node['items']) ?? []).join('.');
    case 'String':
      return str(wrapped.node['sval']) ?? '';
    case 'TypeName':
      return (names(wrapped.node['names']) ?? []).join('.');
    case 'ObjectWithArgs':
      return (names(wrapped.node['objname']) ?? []).join('.');
    default:
      return '';
  }
}

function summarize(draft: Draft): string {
  const written = [...draft.tablesWritten].join(', ');
  switch (draft.kind) {
    case 'delete':
      return `DELETE FROM ${written}`;
    case 'update':
      return `UPDATE ${written}`;
    case 'insert':
      return `INSERT INTO ${written}`;
    case 'merge':
      return `MERGE INTO ${written}`;
    case 'truncate':
      return `TRUNCATE ${written}`;
    case 'copy': {
      const table = [...draft.tablesRead, ...draft.tablesWritten][0];
      return table === undefined ? draft.command : `COPY ${table} ${draft.command.slice(5)}`;
    }
  }
  return draft.objects.size > 0 ? `${draft.command} ${[...draft.objects].join(', ')}` : draft.command;
}

function setTemporary(draft: Draft): void {
  draft.classes.delete('ddl');
  draft.classes.add('read');
}

function whereProblem(where: unknown): string {
  return where === undefined ? 'it has no WHERE clause' : 'its WHERE clause does not restrict the rows';
}
