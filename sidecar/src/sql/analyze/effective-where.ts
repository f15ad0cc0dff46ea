import { type AstNode, isObject, list, names, nodeOf, stringConstant, unwrap } from './ast.ts';
import { type RangeItem, type RangeScope, rangeItems, resolveColumn } from './range-scope.ts';

/**
 * Whether a WHERE clause (or MERGE join condition) restricts the rows of `target`, judged from the
 * text alone, conservatively: it is effective only if we can see that it ties the rows to something.
 *
 * The rule. A predicate P restricts when R(P) holds:
 * - `a AND b`: any conjunct restricts. `a OR b`: every disjunct restricts or is constant false/NULL.
 *   `NOT` is pushed inwards (De Morgan), flipping the polarity of what it reaches.
 * - A comparison `S op O` restricts when S is a value of target columns (a column of the target,
 *   possibly under casts, COLLATE, subscripts, `+ - ||`, JSON `-> ->>`, lower/upper/trim/date_trunc
 *   with otherwise constant arguments), O mentions none of those columns (nor possibly: an
 *   unqualified name that could bind to them, a column of the same table under another alias, any
 *   column of a subquery, function or renamed alias), and op is a known comparison: `= < > <= >=`,
 *   LIKE/ILIKE/SIMILAR/regex (not with a match-everything pattern such as `'%'`), containment and
 *   text-search operators, IN (list), `op ANY (...)`, BETWEEN, IS NOT DISTINCT FROM; or, in negative
 *   polarity, `<>`, NOT LIKE, NOT IN (list), NOT BETWEEN, IS DISTINCT FROM.
 * - `col IS NULL`, a bare boolean column, `IS TRUE/IS FALSE...` of something that restricts,
 *   `WHERE CURRENT OF cursor`, and the constants false and NULL (they match no row) restrict.
 * - `EXISTS (subquery)` restricts when the subquery's WHERE restricts the target (a correlated
 *   subquery); `S IN (subquery)` when S is a value of target columns and the subquery's output
 *   does not mention them.
 * - Nothing else does: constants true, function calls, CASE, parameters, `IS NOT NULL`, ALL,
 *   `<> ANY`, NOT EXISTS and NOT IN (subquery) (an empty subquery makes those true for every row).
 *
 * So `true`, `1=1`, `'a'='a'`, `id = id`, `c.id = customers.id`, `x OR true`, `NOT false`,
 * `1 IN (1)`, `EXISTS (SELECT 1)`, `coalesce(true, x)`, `id - id = 0`, `email LIKE '%'` are not
 * effective; `id = 42`, `id = 3 OR false`, `id = ANY('{1}'::int[])`, `id IN (1, 2) AND 1 = 1`,
 * `o.customer_id = c.id` are. Predicates that are true for every row only because of the data
 * (`id > 0`) cannot be told from the text.
 */
export function whereIsEffective(predicate: unknown, target: RangeItem, scope: RangeScope): boolean {
  if (predicate === undefined) return false;
  return restricts(predicate, false, { target, scope });
}

interface Context {
  readonly target: RangeItem;
  readonly scope: RangeScope;
}

const POSITIVE_OPERATORS = new Set([
  '=',
  '<',
  '>',
  '<=',
  '>=',
  '~~',
  '~~*',
  '~',
  '~*',
  '@>',
  '<@',
  '&&',
  '?',
  '?|',
  '?&',
  '@@',
  '^@',
]);
const NEGATIVE_OPERATORS = new Set(['<>', '!=', '!~~', '!~~*', '!~', '!~*']);
const PATTERN_OPERATORS = new Set(['~~', '~~*', '~', '~*']);
const NEGATED: Record<string, string> = {
  '=': '<>',
  '<>': '=',
  '!=': '=',
  '~~': '!~~',
  '!~~': '~~',
  '~~*': '!~~*',
  '!~~*': '~~*',
  '~': '!~',
  '!~': '~',
  '~*': '!~*',
  '!~*': '~*',
};

/** Functions that keep a comparison about their column argument (not `coalesce`, `abs`, `length`...). */
const TRANSPARENT_FUNCTIONS = new Set(['lower', 'upper', 'btrim', 'ltrim', 'rtrim', 'date_trunc']);
const TRANSPARENT_OPERATORS = new Set(['+', '-', '||', '->', '->>', '#>', '#>>']);

function restricts(value: unknown, negated: boolean, ctx: Context): boolean {
  const wrapped = unwrap(value);
  if (!wrapped) return false;
  const { type, node } = wrapped;
  switch (type) {
    case 'BoolExpr': {
      const args = list(node['args']);
      if (node['boolop'] === 'NOT_EXPR') return restricts(args[0], !negated, ctx);
      const conjunction = (node['boolop'] === 'AND_EXPR') !== negated;
      return conjunction
        ? args.some((arg) => restricts(arg, negated, ctx))
        : args.every((arg) => restricts(arg, negated, ctx) || matchesNothing(arg, negated));
    }
    case 'A_Const':
      return matchesNothing(value, negated);
    case 'A_Expr':
      return comparisonRestricts(node, negated, ctx);
    case 'NullTest': {
      const isNull = (node['nulltesttype'] === 'IS_NULL') !== negated;
      return isNull && targetColumns(node['arg'], ctx) !== undefined;
    }
    case 'BooleanTest': {
      const test = String(node['booltesttype']);
      if (test === 'IS_TRUE' || test === 'IS_NOT_FALSE') return restricts(node['arg'], negated, ctx);
      if (test === 'IS_FALSE' || test === 'IS_NOT_TRUE') return restricts(node['arg'], !negated, ctx);
      return targetColumns(node['arg'], ctx) !== undefined && (test === 'IS_UNKNOWN') !== negated;
    }
    case 'ColumnRef':
    case 'TypeCast':
      if (type === 'TypeCast' && unwrap(node['arg'])?.type !== 'ColumnRef')
        return restricts(node['arg'], negated, ctx);
      return targetColumns(value, ctx) !== undefined;
    case 'CurrentOfExpr':
      return true;
    case 'SubLink':
      return subLinkRestricts(node, negated, ctx);
    default:
      return false;
  }
}

/** The constants false and NULL in the given polarity: they let no row through. */
function matchesNothing(value: unknown, negated: boolean): boolean {
  const constant = nodeOf(value, 'A_Const');
  if (!constant) return false;
  if (constant['isnull'] === true) return true;
  const boolval = constant['boolval'];
  if (!isObject(boolval)) return false;
  return (boolval['boolval'] === true) === negated;
}

function comparisonRestricts(node: AstNode, negated: boolean, ctx: Context): boolean {
  const kind = String(node['kind']);
  const operator = names(node['name'])?.at(-1) ?? '';
  const left = node['lexpr'];
  const right = node['rexpr'];
  if (left === undefined || right === undefined) return false;
  switch (kind) {
    case 'AEXPR_OP':
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE':
    case 'AEXPR_SIMILAR':
    case 'AEXPR_IN': {
      const effective = negated ? NEGATED[operator] : operator;
      if (effective === undefined) return false;
      if (!POSITIVE_OPERATORS.has(effective) && !NEGATIVE_OPERATORS.has(effective)) return false;
      if (PATTERN_OPERATORS.has(effective) && matchesEverything(right)) return false;
      return comparesTarget(left, right, ctx);
    }
    case 'AEXPR_OP_ANY':
    case 'AEXPR_OP_ALL': {
      // Only `x = ANY (...)` in effect (or NOT of `x <> ALL (...)`): ALL, and `<> ANY`, hold for
      // every row when the array is empty or has two different elements.
      const any = (kind === 'AEXPR_OP_ANY') !== negated;
      const effective = negated ? NEGATED[operator] : operator;
      if (!any || effective === undefined || !POSITIVE_OPERATORS.has(effective)) return false;
      return targetColumns(left, ctx) !== undefined && comparesTarget(left, right, ctx);
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT':
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN':
    case 'AEXPR_BETWEEN_SYM':
    case 'AEXPR_NOT_BETWEEN_SYM':
      return comparesTarget(left, right, ctx);
    default:
      return false;
  }
}

/** `'%'`, `''` as a regex, `'.*'`...: patterns every non-NULL string matches. */
function matchesEverything(pattern: unknown): boolean {
  // SIMILAR TO wraps its pattern in similar_to_escape().
  const call = nodeOf(pattern, 'FuncCall');
  const text = stringConstant(call ? list(call['args'])[0] : pattern);
  if (text === undefined) return false;
  return /^%+$/.test(text) || /^\^?(\.\*|%)*\$?$/.test(text);
}

/** One side is a value of target columns and the other does not mention them. */
function comparesTarget(left: unknown, right: unknown, ctx: Context): boolean {
  return oneWay(left, right, ctx) || oneWay(right, left, ctx);
}

function oneWay(subject: unknown, other: unknown, ctx: Context): boolean {
  const columns = targetColumns(subject, ctx);
  return columns !== undefined && !mentions(other, columns, ctx);
}

/**
 * The target columns `value` is a value of, or undefined when it is not one (a constant, a
 * function that could ignore its argument, an expression using one column twice...).
 */
function targetColumns(value: unknown, ctx: Context): Set<string> | undefined {
  const wrapped = unwrap(value);
  if (!wrapped) return undefined;
  const { type, node } = wrapped;
  switch (type) {
    case 'ColumnRef': {
      const column = resolveColumn(node['fields'], ctx.scope);
      return column.item === ctx.target && column.column !== '*' ? new Set([column.column]) : undefined;
    }
    case 'TypeCast':
    case 'CollateClause':
      return targetColumns(node['arg'], ctx);
    case 'A_Indirection':
      return hasColumns(node['indirection'], ctx) ? undefined : targetColumns(node['arg'], ctx);
    case 'A_Expr': {
      const operator = names(node['name'])?.at(-1) ?? '';
      if (node['kind'] !== 'AEXPR_OP' || !TRANSPARENT_OPERATORS.has(operator)) return undefined;
      return onlyOneColumnArgument([node['lexpr'], node['rexpr']], ctx);
    }
    case 'FuncCall': {
      const name = names(node['funcname'])?.at(-1) ?? '';
      if (!TRANSPARENT_FUNCTIONS.has(name) || node['agg_star'] || node['over']) return undefined;
      return onlyOneColumnArgument(list(node['args']), ctx);
    }
    case 'RowExpr': {
      const columns = new Set<string>();
      for (const arg of list(node['args'])) {
        const inner = targetColumns(arg, ctx);
        if (!inner) return undefined;
        for (const c of inner) columns.add(c);
      }
      return columns.size > 0 ? columns : undefined;
    }
    default:
      return undefined;
  }
}

function onlyOneColumnArgument(args: readonly unknown[], ctx: Context): Set<string> | undefined {
  let columns: Set<string> | undefined;
  for (const arg of args) {
    if (arg === undefined) continue;
    if (!hasColumns(arg, ctx)) continue;
    if (columns) return undefined;
    columns = targetColumns(arg, ctx);
    if (!columns) return undefined;
  }
  return columns;
}

function hasColumns(value: unknown, ctx: Context): boolean {
  let found = false;
  visitColumns(value, ctx.scope, () => {
    found = true;
  });
  return found;
}

/** Whether `value` mentions, or may mention, one of the target's `columns`. */
function mentions(value: unknown, columns: ReadonlySet<string>, ctx: Context): boolean {
  let found = false;
  const targetRelname = ctx.target.relname;
  visitColumns(value, ctx.scope, (column) => {
    if (column.relname === '*' || column.column === '*') found = true;
    else if (columns.has(column.column) && (column.relname === '?' || column.relname === targetRelname))
      found = true;
  });
  return found;
}

/** Calls `visit` for every column reference in `value`, subqueries included, resolved in scope. */
function visitColumns(
  value: unknown,
  scope: RangeScope,
  visit: (column: ReturnType<typeof resolveColumn>) => void,
): void {
  if (Array.isArray(value)) {
    for (const item of value) visitColumns(item, scope, visit);
    return;
  }
  if (!isObject(value)) return;
  const wrapped = unwrap(value);
  if (wrapped?.type === 'ColumnRef') {
    visit(resolveColumn(wrapped.node['fields'], scope));
    return;
  }
  if (wrapped?.type === 'SelectStmt') {
    visitSelectColumns(wrapped.node, scope, visit);
    return;
  }
  for (const key in value) visitColumns(value[key], scope, visit);
}

function visitSelectColumns(
  select: AstNode,
  scope: RangeScope,
  visit: (column: ReturnType<typeof resolveColumn>) => void,
): void {
  if (isObject(select['larg'])) visitSelectColumns(select['larg'], scope, visit);
  if (isObject(select['rarg'])) visitSelectColumns(select['rarg'], scope, visit);
  const inner = subqueryScope(select, scope);
  for (const key in select) {
    if (key === 'larg' || key === 'rarg') continue;
    visitColumns(select[key], inner, visit);
  }
}

function subqueryScope(select: AstNode, scope: RangeScope): RangeScope {
  return { parent: scope, items: rangeItems(select['fromClause'], scope), ctes: new Set() };
}

function subLinkRestricts(node: AstNode, negated: boolean, ctx: Context): boolean {
  if (negated) return false;
  const select = nodeOf(node['subselect'], 'SelectStmt');
  if (!select) return false;
  switch (node['subLinkType']) {
    case 'EXISTS_SUBLINK': {
      // Correlated: the subquery's WHERE restricts the outer target's rows.
      const inner = subqueryScope(select, ctx.scope);
      return restricts(select['whereClause'], false, { target: ctx.target, scope: inner });
    }
    case 'ANY_SUBLINK': {
      const operator = names(node['operName'])?.at(-1) ?? '=';
      if (!POSITIVE_OPERATORS.has(operator)) return false;
      const columns = targetColumns(node['testexpr'], ctx);
      if (!columns) return false;
      return !outputMentions(select, columns, ctx);
    }
    default:
      return false;
  }
}

/** Whether a subquery's output columns mention, or may mention, the target's `columns`. */
function outputMentions(select: AstNode, columns: ReadonlySet<string>, ctx: Context): boolean {
  if (isObject(select['larg']) && outputMentions(select['larg'], columns, ctx)) return true;
  if (isObject(select['rarg']) && outputMentions(select['rarg'], columns, ctx)) return true;
  const inner = { target: ctx.target, scope: subqueryScope(select, ctx.scope) };
  if (select['valuesLists'] !== undefined && mentions(select['valuesLists'], columns, inner)) return true;
  return mentions(select['targetList'], columns, inner);
}
