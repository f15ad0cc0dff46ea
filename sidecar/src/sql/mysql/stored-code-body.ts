import type { MysqlToken } from './lexer.ts';

/** Kinds of stored code a CREATE statement makes. */
export type StoredCodeKind = 'PROCEDURE' | 'FUNCTION' | 'TRIGGER' | 'EVENT';

/**
 * Where the body of `CREATE ... PROCEDURE|FUNCTION|TRIGGER|EVENT` starts, by token index; undefined
 * when the statement is not such a CREATE, or its header is not one this reader knows (the caller
 * then treats the body as code it cannot see into).
 */
export function storedCodeBody(
  tokens: readonly MysqlToken[],
):
  | { readonly kind: StoredCodeKind; readonly start: number; readonly parameters: readonly string[] }
  | undefined {
  const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
  const punct = (i: number, value: string) => tokens[i]?.type === 'punct' && tokens[i]!.value === value;
  if (word(0) !== 'CREATE') return undefined;
  let i = 1;
  let kind: StoredCodeKind | undefined;
  // OR REPLACE, DEFINER = user, AGGREGATE, IF NOT EXISTS... until the kind of object.
  for (; i < tokens.length && i < 24; i++) {
    const w = word(i);
    if (w === 'PROCEDURE' || w === 'FUNCTION' || w === 'TRIGGER' || w === 'EVENT') {
      kind = w;
      break;
    }
    if (w === 'TABLE' || w === 'VIEW' || w === 'INDEX' || w === 'DATABASE' || w === 'SCHEMA' || w === 'USER')
      return undefined;
  }
  if (!kind) return undefined;
  i++;
  if (word(i) === 'IF' && word(i + 1) === 'NOT' && word(i + 2) === 'EXISTS') i += 3;
  // The name: `a`, `db`.`a`.
  i = skipName(tokens, i);
  if (kind === 'PROCEDURE' || kind === 'FUNCTION') {
    if (kind === 'FUNCTION' && word(i) === 'SONAME') return undefined;
    if (!punct(i, '(')) return undefined;
    const open = i;
    i = afterParens(tokens, i);
    const parameters = parameterNames(tokens.slice(open + 1, i - 1));
    if (kind === 'FUNCTION') {
      if (word(i) !== 'RETURNS') return undefined;
      i = skipType(tokens, i + 1);
    }
    i = skipCharacteristics(tokens, i);
    return i < tokens.length ? { kind, start: i, parameters } : undefined;
  }
  if (kind === 'TRIGGER') {
    const each = tokens.findIndex((t, j) => j > i && t.type === 'word' && t.value === 'EACH');
    if (each < 0 || word(each + 1) !== 'ROW') return undefined;
    i = each + 2;
    if (word(i) === 'FOLLOWS' || word(i) === 'PRECEDES') i = skipName(tokens, i + 1);
    return i < tokens.length ? { kind, start: i, parameters: [] } : undefined;
  }
  let depth = 0;
  for (; i < tokens.length; i++) {
    if (punct(i, '(')) depth++;
    else if (punct(i, ')')) depth--;
    else if (depth === 0 && word(i) === 'DO')
      return i + 1 < tokens.length ? { kind, start: i + 1, parameters: [] } : undefined;
  }
  return undefined;
}

function skipName(tokens: readonly MysqlToken[], from: number): number {
  let i = from;
  for (;;) {
    const t = tokens[i];
    if (!t || (t.type !== 'word' && t.type !== 'ident')) return i;
    const dot = tokens[i + 1];
    if (dot?.type === 'punct' && dot.value === '.' && !dot.spaced) i += 2;
    else return i + 1;
  }
}

function afterParens(tokens: readonly MysqlToken[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')' && --depth === 0) return i + 1;
  }
  return tokens.length;
}

const TYPE_MODIFIERS = new Set(['UNSIGNED', 'SIGNED', 'ZEROFILL', 'BINARY', 'ASCII', 'UNICODE', 'BYTE']);

/** A RETURNS type: `INT`, `DECIMAL(10,2) UNSIGNED`, `VARCHAR(20) CHARSET utf8mb4 COLLATE x`, `DOUBLE PRECISION`. */
function skipType(tokens: readonly MysqlToken[], from: number): number {
  const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
  let i = from + 1;
  if (word(from) === 'DOUBLE' && word(i) === 'PRECISION') i++;
  if (word(from) === 'CHARACTER' && word(i) === 'VARYING') i++;
  if (tokens[i]?.type === 'punct' && tokens[i]!.value === '(') i = afterParens(tokens, i);
  for (;;) {
    const w = word(i);
    if (TYPE_MODIFIERS.has(w)) i++;
    else if (w === 'CHARSET' || w === 'COLLATE') i += 2;
    else if (w === 'CHARACTER' && word(i + 1) === 'SET') i += 3;
    else return i;
  }
}

/** COMMENT 'x', LANGUAGE SQL, [NOT] DETERMINISTIC, CONTAINS SQL, NO SQL, READS/MODIFIES SQL DATA, SQL SECURITY x. */
function skipCharacteristics(tokens: readonly MysqlToken[], from: number): number {
  const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
  let i = from;
  for (;;) {
    const w = word(i);
    if (w === 'COMMENT') i += 2;
    else if (w === 'LANGUAGE') i += 2;
    else if (w === 'DETERMINISTIC') i++;
    else if (w === 'NOT' && word(i + 1) === 'DETERMINISTIC') i += 2;
    else if (w === 'CONTAINS' || (w === 'NO' && word(i + 1) === 'SQL')) i += 2;
    else if ((w === 'READS' || w === 'MODIFIES') && word(i + 1) === 'SQL') i += 3;
    else if (w === 'SQL' && word(i + 1) === 'SECURITY') i += 3;
    else return i;
  }
}

/** Splits tokens at `separator` outside parentheses. */
export function splitTopLevel(tokens: readonly MysqlToken[], separator: string): MysqlToken[][] {
  const parts: MysqlToken[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && t.type === 'punct' && t.value === separator) parts.push([]);
    else parts[parts.length - 1]!.push(t);
  }
  return parts;
}

/** The parameter names of a routine's parameter list tokens (`IN a INT, OUT b TEXT`). */
export function parameterNames(tokens: readonly MysqlToken[]): string[] {
  return splitTopLevel(tokens, ',')
    .map((part) => {
      const first = part[0]?.type === 'word' && ['IN', 'OUT', 'INOUT'].includes(part[0].value) ? 1 : 0;
      const name = part[first];
      return name && (name.type === 'word' || name.type === 'ident') ? name.value.toLowerCase() : undefined;
    })
    .filter((n): n is string => n !== undefined);
}
