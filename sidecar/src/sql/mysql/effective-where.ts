import { asArray, field, identName, isObject, variant } from './ast.ts';

/** The table a DELETE or UPDATE changes, by every name the statement may call it. */
export interface WhereTarget {
  /** Lower-cased: the alias, else the table name and `db.table`. */
  readonly names: ReadonlySet<string>;
}

/**
 * Whether a WHERE (or join condition) restricts the rows of `target`, judged from the text alone
 * and conservatively, by the rule of sql/analyze/effective-where.ts in MySQL's terms:
 *
 * - `a AND b` restricts when either does, `a OR b` when both do (NOT pushed inwards, flipping polarity).
 * - A comparison restricts when one side is a value of target columns (a column, under CAST, COLLATE,
 *   BINARY, LOWER/UPPER/TRIM, `+ -`) and the other mentions no column that could be the target's:
 *   `= <=> < > <= >=`, LIKE/RLIKE/REGEXP (not `'%'`), IN (list), BETWEEN, and in negative polarity `<> !=`.
 * - `col IS NULL`, and the constants false, 0 and NULL restrict; a bare column (`WHERE id`) does not (it
 *   matches every non-zero row), nor does LIKE with a pattern that is not a literal (`CONCAT('%')`).
 * - EXISTS (subquery) restricts when the subquery's WHERE restricts the target; `col IN (subquery)`
 *   when the subquery does not mention the target.
 * - Nothing else: `1`, `true`, `1=1`, `'a'='a'`, `id=id`, `x OR 1`, `NOT 0`, `IS NOT NULL`, functions,
 *   user variables, parameters.
 *
 * LIMIT and ORDER BY never make a WHERE effective: `DELETE ... ORDER BY id LIMIT 1` without WHERE is
 * still a DELETE without WHERE (LIMIT 1 with the same ORDER BY runs again and again).
 */
export function restrictsTarget(predicate: unknown, target: WhereTarget): boolean {
  if (predicate === undefined || predicate === null) return false;
  // sqlparser-ts binds XOR tighter than `=` (MySQL: looser), so `id = 2 XOR 1` would pass for `id = 3`.
  if (hasXor(predicate)) return false;
  return restricts(predicate, false, target);
}

const POSITIVE = new Set(['Eq', 'Spaceship', 'Lt', 'Gt', 'LtEq', 'GtEq', 'Regexp', 'RLike']);
const NEGATIVE = new Set(['NotEq']);
const TRANSPARENT_FUNCTIONS = new Set([
  'lower',
  'upper',
  'lcase',
  'ucase',
  'trim',
  'ltrim',
  'rtrim',
  'binary',
]);
const TRANSPARENT_OPERATORS = new Set(['Plus', 'Minus']);

function restricts(expr: unknown, negated: boolean, target: WhereTarget): boolean {
  const v = variant(expr);
  if (!v) return false;
  const [kind, body] = v;
  switch (kind) {
    case 'Nested':
      return restricts(body, negated, target);
    case 'UnaryOp': {
      const op = field(body, 'op');
      if (op === 'Not' || op === 'BangNot') return restricts(field(body, 'expr'), !negated, target);
      return false;
    }
    case 'BinaryOp': {
      const op = field(body, 'op');
      const left = field(body, 'left');
      const right = field(body, 'right');
      if (op === 'And' || op === 'Or') {
        const all = (op === 'And') === negated;
        return all
          ? restricts(left, negated, target) && restricts(right, negated, target)
          : restricts(left, negated, target) || restricts(right, negated, target);
      }
      if (op === 'Xor') return false;
      const comparisons = negated ? NEGATIVE : POSITIVE;
      if (typeof op !== 'string' || !comparisons.has(op)) return false;
      return comparesTarget(left, right, target);
    }
    // A bare column (`WHERE id`) matches every row where it is not zero or NULL: for most columns, all.
    case 'Value':
      return isFalseConstant(field(body, 'value'), negated);
    case 'IsNull':
      return !negated && isTargetValue(body, target);
    case 'IsNotNull':
      return negated && isTargetValue(body, target);
    case 'IsTrue':
    case 'IsFalse':
    case 'IsNotTrue':
    case 'IsNotFalse':
      return restricts(body, kind === 'IsFalse' || kind === 'IsNotTrue' ? !negated : negated, target);
    case 'InList': {
      if (field(body, 'negated') === true ? !negated : negated) return false;
      return (
        isTargetValue(field(body, 'expr'), target) &&
        asArray(field(body, 'list')).every((item) => !mentionsTarget(item, target))
      );
    }
    case 'InSubquery': {
      if (field(body, 'negated') === true ? !negated : negated) return false;
      return isTargetValue(field(body, 'expr'), target) && !mentionsTarget(field(body, 'subquery'), target);
    }
    case 'Between': {
      if (field(body, 'negated') === true ? !negated : negated) return false;
      return (
        isTargetValue(field(body, 'expr'), target) &&
        !mentionsTarget(field(body, 'low'), target) &&
        !mentionsTarget(field(body, 'high'), target)
      );
    }
    case 'Like':
    case 'ILike':
    case 'RLike':
    case 'SimilarTo': {
      if (field(body, 'negated') === true ? !negated : negated) return false;
      // Only a literal pattern (or a parameter) can be seen not to match everything: not CONCAT('%').
      const pattern = field(body, 'pattern');
      if (!isLiteralPattern(pattern) || matchesEverything(pattern)) return false;
      return isTargetValue(field(body, 'expr'), target);
    }
    case 'Exists': {
      if (field(body, 'negated') === true ? !negated : negated) return false;
      const select = field(field(field(body, 'subquery'), 'body'), 'Select');
      return restricts(field(select, 'selection'), false, target);
    }
    default:
      return false;
  }
}

function hasXor(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasXor);
  if (!isObject(node)) return false;
  if (node['op'] === 'Xor') return true;
  return Object.values(node).some(hasXor);
}

function comparesTarget(left: unknown, right: unknown, target: WhereTarget): boolean {
  return (
    (isTargetValue(left, target) && !mentionsTarget(right, target)) ||
    (isTargetValue(right, target) && !mentionsTarget(left, target))
  );
}

function isFalseConstant(value: unknown, negated: boolean): boolean {
  const v = variant(value);
  if (!v) return false;
  const [kind, body] = v;
  if (kind === 'Null') return true;
  if (kind === 'Boolean') return body === negated;
  if (kind === 'Number') {
    const text = asArray(body)[0];
    const zero = typeof text === 'string' && Number(text) === 0;
    return zero !== negated;
  }
  return false;
}

function isLiteralPattern(pattern: unknown): boolean {
  const v = variant(pattern);
  return v?.[0] === 'Value' && variant(field(v[1], 'value'))?.[0] !== 'Null';
}

function matchesEverything(pattern: unknown): boolean {
  const value = field(field(pattern, 'Value'), 'value');
  const text = field(value, 'SingleQuotedString') ?? field(value, 'DoubleQuotedString');
  return typeof text === 'string' && /^%+$/.test(text);
}

/** A value computed from the target's columns alone (and constants). */
function isTargetValue(expr: unknown, target: WhereTarget): boolean {
  const v = variant(expr);
  if (!v) return false;
  const [kind, body] = v;
  switch (kind) {
    case 'Identifier':
      return isColumnName(identName(body));
    case 'CompoundIdentifier': {
      const parts = asArray(body).map(identName);
      return parts.length >= 2 && qualifierIsTarget(parts.slice(0, -1), target);
    }
    case 'Nested':
      return isTargetValue(body, target);
    case 'Cast':
    case 'Convert':
      return isTargetValue(field(body, 'expr'), target);
    case 'Collate':
      return isTargetValue(field(body, 'expr'), target);
    case 'BinaryOp': {
      if (!TRANSPARENT_OPERATORS.has(String(field(body, 'op')))) return false;
      const left = field(body, 'left');
      const right = field(body, 'right');
      return (
        (isTargetValue(left, target) && !mentionsTarget(right, target) && !isSameValue(left, right)) ||
        (isTargetValue(right, target) && !mentionsTarget(left, target))
      );
    }
    case 'Function': {
      const name = functionName(body);
      const args = asArray(
        field(field(body, 'args'), 'List') ? field(field(field(body, 'args'), 'List'), 'args') : [],
      );
      return (
        name !== undefined &&
        TRANSPARENT_FUNCTIONS.has(name) &&
        args.length === 1 &&
        isTargetValue(
          field(args[0], 'Unnamed') ? field(field(args[0], 'Unnamed'), 'Expr') : undefined,
          target,
        )
      );
    }
    default:
      return false;
  }
}

function isSameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(stripSpans(a)) === JSON.stringify(stripSpans(b));
}

function stripSpans(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripSpans);
  if (!isObject(node)) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) if (key !== 'span') out[key] = stripSpans(value);
  return out;
}

function isColumnName(name: string | undefined): boolean {
  return name !== undefined && !name.startsWith('@');
}

function qualifierIsTarget(qualifier: readonly (string | undefined)[], target: WhereTarget): boolean {
  const last = qualifier[qualifier.length - 1];
  const whole = qualifier.join('.');
  return (
    last !== undefined && (target.names.has(last.toLowerCase()) || target.names.has(whole.toLowerCase()))
  );
}

export function functionName(body: unknown): string | undefined {
  const parts = asArray(field(body, 'name'));
  const last = parts[parts.length - 1];
  const name = identName(field(last, 'Identifier') ?? last);
  return name?.toLowerCase();
}

/**
 * Whether an expression may read a column of the target: any unqualified column (it may bind to the
 * target, inside subqueries too), or one qualified by a name of the target.
 */
function mentionsTarget(node: unknown, target: WhereTarget): boolean {
  if (Array.isArray(node)) return node.some((item) => mentionsTarget(item, target));
  if (!isObject(node)) return false;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'span' || key === 'alias' || key === 'data_type') continue;
    if (key === 'Identifier' && isObject(value) && typeof value['value'] === 'string') {
      if (isColumnName(value['value'])) return true;
      continue;
    }
    if (key === 'CompoundIdentifier') {
      const parts = asArray(value).map(identName);
      if (qualifierIsTarget(parts.slice(0, -1), target)) return true;
      continue;
    }
    if (key === 'Function' && isObject(value)) {
      if (mentionsTarget(value['args'], target) || mentionsTarget(value['over'], target)) return true;
      continue;
    }
    if (mentionsTarget(value, target)) return true;
  }
  return false;
}
