/**
 * libpg-query serialises each parse tree recursively inside its WebAssembly module. A statement
 * nested some 18,000 JSON levels deep (`SELECT 1+1+...` with 9,000 terms, 2,500 nested
 * subqueries) overflows the stack there: parseSync throws a RangeError and leaks, and after a few
 * dozen such texts the module is corrupt and every later parse in the process fails. So texts that
 * might nest that deep are never handed to the parser; they are refused as unanalysable instead.
 *
 * The check bounds the depth from the text with a small lexer that agrees with PostgreSQL's on
 * what is code (quotes, dollar quotes, nested comments, standard_conforming_strings on, as in
 * libpg-query). Each open bracket may add a few levels (a subquery adds six); within a bracket,
 * each operator or operator keyword since the last comma may add one (`a + b + c` nests, a list
 * does not). The bound is far above the real depth of ordinary SQL: a bulk INSERT of any size,
 * an IN list of any length and a few thousand ORed conditions all pass.
 */
export function mayNestTooDeeply(sql: string): boolean {
  return sql.length > ALWAYS_SHALLOW_CHARS && nestingBound(sql) > MAX_NESTING_BOUND;
}

/** Shorter texts cannot reach the failing depth: every level costs at least two characters. */
const ALWAYS_SHALLOW_CHARS = 4096;
/** The parser failed from a bound of about 27,000 (measured under --liftoff-only); keep well below. */
const MAX_NESTING_BOUND = 10_000;
const BRACKET_WEIGHT = 8;
const OPERATOR_WEIGHT = 3;

/** Keywords that act as operators and can chain without brackets. */
const OPERATOR_KEYWORDS = new Set([
  'and',
  'or',
  'not',
  'is',
  'isnull',
  'notnull',
  'like',
  'ilike',
  'similar',
  'between',
  'in',
  'at',
  'collate',
  'overlaps',
  'union',
  'intersect',
  'except',
  'case',
  'when',
  'then',
  'else',
  'escape',
]);

const OPERATOR_CHARS = new Set('+-*/<>=~!@#%^&|`?:');

/**
 * Chains of these nest across commas (`SELECT a, b UNION SELECT c, d UNION ...`, `a JOIN b ON ...
 * JOIN c ...`), so a comma does not end their run.
 */
const CHAINING_KEYWORDS = new Set(['union', 'intersect', 'except', 'join']);

export function nestingBound(sql: string): number {
  // Per open bracket: the weight since the last comma, and the weight of chains commas do not end.
  const runs: number[] = [0];
  const chains: number[] = [0];
  let sum = 0;
  let max = 0;
  let i = 0;
  const n = sql.length;
  const raise = (weight: number, into: number[]): void => {
    into[into.length - 1]! += weight;
    sum += weight;
    if (sum > max) max = sum;
  };
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && next === '*') {
      i = skipBlockComment(sql, i);
    } else if (c === "'") {
      i = skipQuoted(sql, i, "'", false);
    } else if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
    } else if ((c === 'e' || c === 'E') && next === "'") {
      i = skipQuoted(sql, i + 1, "'", true);
    } else if (c === '$' && !isDigit(next)) {
      i = skipDollarQuoted(sql, i);
    } else if (c === '(' || c === '[') {
      runs.push(0);
      chains.push(0);
      sum += BRACKET_WEIGHT;
      if (sum > max) max = sum;
      i++;
    } else if (c === ')' || c === ']') {
      if (runs.length > 1) sum -= runs.pop()! + chains.pop()! + BRACKET_WEIGHT;
      i++;
    } else if (c === ',' || c === ';') {
      sum -= runs[runs.length - 1]!;
      runs[runs.length - 1] = 0;
      if (c === ';') {
        sum -= chains[chains.length - 1]!;
        chains[chains.length - 1] = 0;
      }
      i++;
    } else if (OPERATOR_CHARS.has(c)) {
      while (i < n && OPERATOR_CHARS.has(sql[i]!) && !startsComment(sql, i)) i++;
      raise(OPERATOR_WEIGHT, runs);
    } else if (isWordStart(c)) {
      const start = i;
      while (i < n && isWordPart(sql[i]!)) i++;
      const word = sql.slice(start, i).toLowerCase();
      if (CHAINING_KEYWORDS.has(word)) raise(OPERATOR_WEIGHT, chains);
      else if (OPERATOR_KEYWORDS.has(word)) raise(OPERATOR_WEIGHT, runs);
    } else i++;
  }
  return max;
}

function startsComment(sql: string, i: number): boolean {
  return (sql[i] === '-' && sql[i + 1] === '-') || (sql[i] === '/' && sql[i + 1] === '*');
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isWordStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c > '\u007f';
}

function isWordPart(c: string): boolean {
  return isWordStart(c) || isDigit(c) || c === '$';
}

/** PostgreSQL block comments nest. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return i;
}

/** A quoted string or identifier from its opening quote; doubled quotes and, in E'' strings, backslashes escape. */
function skipQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return i;
}

/** `$tag$ ... $tag$`; a `$` that does not open a valid tag is an ordinary character. */
function skipDollarQuoted(sql: string, start: number): number {
  let i = start + 1;
  while (i < sql.length && sql[i] !== '$' && isWordPart(sql[i]!)) i++;
  if (sql[i] !== '$') return start + 1;
  const tag = sql.slice(start, i + 1);
  const end = sql.indexOf(tag, i + 1);
  return end < 0 ? sql.length : end + tag.length;
}
