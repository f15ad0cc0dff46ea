import type { A_Expr, FuncCall, Node, TypeName } from 'libpg-query';

/**
 * Which uses of a value cannot reveal it other than through the output column it reaches.
 *
 * A value a session sees masked may pass to an output column (which is then masked) only through
 * operations that are total in it: for every value they return exactly one result, never raise an
 * error, never branch, never change how many rows there are and never wait. Everything else is a
 * *condition* on the value: a failing cast is an error oracle (`ssn::int`), a CASE an error or timing
 * oracle (`CASE WHEN ascii(ssn) > 50 THEN 1/0 END`), a count argument a cardinality oracle
 * (`generate_series(1, ascii(substr(ssn, 3, 1)))`). Lineage records conditions beside WHERE, JOIN and
 * ORDER BY, and masking refuses them. The lists below are allowlists: a function or operator not named
 * here, or a position not named for it, is a condition.
 */

type Positions = 'all' | readonly number[] | ((index: number) => boolean);

const EVERY: Positions = 'all';

/** Built-ins total in the arguments at the given positions (0-based), by name. */
const TOTAL_ARGUMENTS: ReadonlyMap<string, Positions> = new Map<string, Positions>([
  ...words(
    `ascii bit_length btrim char_length character_length concat concat_ws initcap length lower upper ltrim
     rtrim md5 octet_length quote_ident quote_literal quote_nullable replace reverse translate sha224 sha256
     sha384 sha512 starts_with strpos position textlen casefold to_json to_jsonb row_to_json
     json_build_array jsonb_build_array array_to_json json_typeof jsonb_typeof jsonb_pretty json_strip_nulls
     jsonb_strip_nulls pg_typeof num_nulls num_nonnulls string_to_array array_to_string array_append
     array_prepend array_cat cardinality min max array_agg string_agg json_agg jsonb_agg json_agg_strict
     jsonb_agg_strict bool_and bool_or every any_value first_value last_value`,
  ).map((name) => [name, EVERY] as const),
  ...words(
    `left right substr substring repeat encode convert_to regexp_match regexp_substr regexp_count
     regexp_instr regexp_like lag lead nth_value to_char json_extract_path jsonb_extract_path
     json_extract_path_text jsonb_extract_path_text`,
  ).map((name) => [name, [0]] as const),
  ['split_part', [0, 1]],
  ['lpad', [0, 2]],
  ['rpad', [0, 2]],
  ['regexp_replace', [0, 2]],
  ['date_part', [1]],
  ['date_trunc', [1]],
  ['extract', [1]],
  // The format string may fail; the values it formats may not (%s, %I and %L accept anything).
  ['format', (index) => index > 0],
  // Keys must not be NULL; values may be anything.
  ['json_build_object', (index) => index % 2 === 1],
  ['jsonb_build_object', (index) => index % 2 === 1],
]);

/** Operators total in both operands: comparisons, concatenation, JSON access and containment. */
const TOTAL_OPERATORS: ReadonlySet<string> = new Set(
  `= <> < > <= >= || -> ->> #> #>> @> <@ ? ?| ?&`.split(/\s+/),
);

/** Pattern operators: total in the text they match, not in the pattern (a bad pattern is an error). */
const PATTERN_OPERATORS: ReadonlySet<string> = new Set(`~~ !~~ ~~* !~~* ~ !~ ~* !~*`.split(/\s+/));

/** Cast targets that accept every value of every type: its text form. */
const TEXT_TYPES: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'char', 'name']);

/**
 * Whether argument `index` of a call may carry a masked value. count() without DISTINCT looks at
 * nothing but NULL-ness and is handled by the caller (its result is the true count).
 */
export function totalArgument(call: FuncCall, name: string | undefined, index: number): boolean {
  if (call.agg_distinct || name === undefined) return false;
  const positions = TOTAL_ARGUMENTS.get(name);
  if (positions === undefined) return false;
  if (positions === 'all') return true;
  if (typeof positions === 'function') return positions(index);
  return positions.includes(index);
}

/** Which operands of an operator expression may carry a masked value. */
export function totalOperands(expr: A_Expr): { left: boolean; right: boolean } {
  switch (expr.kind) {
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT':
    case 'AEXPR_IN':
    case 'AEXPR_NULLIF':
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN':
    case 'AEXPR_BETWEEN_SYM':
    case 'AEXPR_NOT_BETWEEN_SYM':
      return { left: true, right: true };
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE':
    case 'AEXPR_SIMILAR':
      return { left: true, right: false };
    case 'AEXPR_OP':
    case 'AEXPR_OP_ANY':
    case 'AEXPR_OP_ALL': {
      const name = operatorName(expr);
      if (name !== undefined && TOTAL_OPERATORS.has(name)) return { left: true, right: true };
      if (name !== undefined && PATTERN_OPERATORS.has(name)) return { left: true, right: false };
      return { left: false, right: false };
    }
    default:
      return { left: false, right: false };
  }
}

/** Whether a cast to this type accepts every value: casts to text types do, any other may fail. */
export function totalCast(type: TypeName | undefined): boolean {
  if (!type || (type.arrayBounds?.length ?? 0) > 0) return false;
  const names = (type.names ?? []).map((node) => ('String' in node ? node.String.sval : undefined));
  const name = names[names.length - 1];
  const schema = names.length > 1 ? names[0] : undefined;
  return name !== undefined && TEXT_TYPES.has(name) && (schema === undefined || schema === 'pg_catalog');
}

/**
 * Whether evaluating the expression may fail, wait or have an effect, whatever its inputs: a
 * short-circuiting construct (AND, OR, COALESCE) that chooses whether to evaluate such a part by a
 * masked value is an oracle on that value. Conservative: anything not known to be total may fail.
 */
export function mayFail(node: Node | undefined): boolean {
  if (!node) return false;
  if ('A_Const' in node || 'ParamRef' in node || 'ColumnRef' in node || 'SQLValueFunction' in node)
    return false;
  if ('TypeCast' in node) return !totalCast(node.TypeCast.typeName) || mayFail(node.TypeCast.arg);
  if ('CollateClause' in node) return mayFail(node.CollateClause.arg);
  if ('NullTest' in node) return mayFail(node.NullTest.arg as Node | undefined);
  if ('BooleanTest' in node) return mayFail(node.BooleanTest.arg as Node | undefined);
  if ('BoolExpr' in node) return (node.BoolExpr.args ?? []).some(mayFail);
  if ('CoalesceExpr' in node) return (node.CoalesceExpr.args ?? []).some(mayFail);
  if ('MinMaxExpr' in node) return (node.MinMaxExpr.args ?? []).some(mayFail);
  if ('A_Expr' in node) {
    const { left, right } = totalOperands(node.A_Expr);
    const { lexpr, rexpr } = node.A_Expr;
    return !left || !right || mayFail(lexpr) || mayFail(rexpr);
  }
  if ('FuncCall' in node) {
    const call = node.FuncCall;
    const names = (call.funcname ?? []).map((part) => ('String' in part ? part.String.sval : undefined));
    const schema = names.length > 1 ? names[names.length - 2] : undefined;
    if (schema !== undefined && schema !== 'pg_catalog') return true;
    const name = names[names.length - 1];
    const args = call.args ?? [];
    // Even constant arguments count: `CASE WHEN ... THEN 1/0` fails only where it is evaluated.
    if (name === undefined || !TOTAL_ARGUMENTS.has(name)) return true;
    return args.some((arg, index) => !totalArgument(call, name, index) || mayFail(arg));
  }
  return true;
}

function operatorName(expr: A_Expr): string | undefined {
  const names = expr.name ?? [];
  const last = names[names.length - 1];
  return last && 'String' in last ? last.String.sval : undefined;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}
