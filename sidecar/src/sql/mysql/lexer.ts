import { type MysqlSqlMode, modeOf, parseSqlMode } from './sql-mode.ts';

export type MysqlTokenType =
  /** Unquoted identifier or keyword; `value` is upper-cased. */
  | 'word'
  /** Backtick-quoted identifier, or double-quoted under ANSI_QUOTES; `value` is the name. */
  | 'ident'
  /** String literal, with any charset introducer or N prefix; `value` is the decoded text. */
  | 'string'
  | 'number'
  /** X'..' or 0x..; `value` is the hex digits. */
  | 'hex'
  /** B'..' or 0b... */
  | 'bit'
  /** `@name`, `@'name'`, `@"name"`, `` @`name` ``; `value` is the lower-cased name. */
  | 'variable'
  /** `@@name`, `@@session.name`...; `value` is the lower-cased name with its scope, as written. */
  | 'system-variable'
  /** `?` */
  | 'param'
  /** `\N`, which the server reads as NULL. */
  | 'null'
  | 'punct';

export interface MysqlToken {
  readonly type: MysqlTokenType;
  readonly value: string;
  /** The token as the parser is given it (comments removed, quotes and escapes made canonical). */
  readonly canonical: string;
  /** Offsets in the source text (UTF-16), introducer included. */
  readonly start: number;
  readonly end: number;
  /** Whether anything (blank, comment) separated it from the token before. */
  readonly spaced: boolean;
}

export interface LexedStatement {
  readonly tokens: readonly MysqlToken[];
  /** The statement as the server runs it: executable comments unwrapped, other comments removed. */
  readonly canonical: string;
  readonly start: number;
  readonly end: number;
  /** The sql_mode the statement is read under. */
  readonly mode: MysqlSqlMode;
}

export interface LexResult {
  /** Statements that hold at least one token, in order. */
  readonly statements: readonly LexedStatement[];
  /** Why the text cannot be read safely (unterminated literal or comment, unknowable sql_mode...), or null. */
  readonly error: string | null;
  /** The session's sql_mode after the text runs: unchanged, a new one, or null when it cannot be told. */
  readonly modeAfter: MysqlSqlMode | null;
  /**
   * Whether the text holds comments that some servers run and others skip: `/*!NNNNN` (skipped by
   * servers older than the version), `/*M!` and `/*M!NNNNNN` (skipped by MySQL).
   */
  readonly conditional: boolean;
}

/**
 * How to read conditional comments: as code (what a server new enough, or MariaDB, runs), or as
 * comments (what an older server, or MySQL, runs). Fail-closed analysis reads both.
 */
export type ConditionalComments = 'code' | 'comment';

interface LexOptions {
  readonly conditional: ConditionalComments;
  seen: boolean;
}

/** A statement's effect on sql_mode: a new mode, null for a value that cannot be told, undefined for none. */
export type SqlModeChange = MysqlSqlMode | null | undefined;

class LexError extends Error {}

/** Blanks as MySQL's lexer counts them (ASCII space and controls; NBSP and other Unicode spaces are not). */
function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

function isIdentChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) ||
    (code >= 65 && code <= 90) ||
    (code >= 97 && code <= 122) ||
    code === 95 ||
    code === 36 ||
    code >= 0x80
  );
}

const OPERATORS = ['<=>', '->>', '<=', '>=', '<>', '!=', ':=', '||', '&&', '<<', '>>', '->'];

const ESCAPES: Record<string, string> = {
  '0': '\0',
  b: '\b',
  n: '\n',
  r: '\r',
  t: '\t',
  Z: '\x1a',
  '%': '\\%',
  _: '\\_',
};

/**
 * Splits MySQL/MariaDB text into statements of tokens the way the server reads it: `#` and `-- `
 * comments (`--` only before a blank or control character), non-nesting `/* *\/` comments, executable
 * comments `/*! *\/` (always code), `/*!NNNNN *\/`, `/*M! *\/` and `/*M!NNNNNN *\/` (code on some servers,
 * comments on others: read as `conditional` says), optimizer hints `/*+ *\/` (dropped),
 * quotes with doubled quotes and backslash escapes unless NO_BACKSLASH_ESCAPES, `"` as identifier
 * quote under ANSI_QUOTES, and `SET sql_mode` taking effect for the statements after it.
 *
 * `DELIMITER` is a command of the mysql client, never sent to the server; text that holds it is
 * split at `;` like any other and its DELIMITER lines fail to parse.
 */
export function lexMysql(
  sql: string,
  mode: MysqlSqlMode,
  conditional: ConditionalComments = 'code',
): LexResult {
  const options: LexOptions = { conditional, seen: false };
  const statements: LexedStatement[] = [];
  let current: MysqlSqlMode | null = mode;
  let pos = 0;
  let inExecutable = false;
  try {
    while (pos < sql.length) {
      if (current === null) {
        if (hasCode(sql, pos))
          return {
            statements,
            error: 'sql_mode was set to a value that cannot be told, and later statements depend on it',
            modeAfter: null,
            conditional: options.seen,
          };
        break;
      }
      const lexed = lexStatement(sql, pos, current, inExecutable, options);
      pos = lexed.end;
      inExecutable = lexed.inExecutable;
      if (lexed.tokens.length > 0) {
        statements.push(statementOf(lexed.tokens, current));
        const change = sqlModeSetBy(lexed.tokens, current);
        if (change !== undefined) current = change;
      }
    }
    if (inExecutable) throw new LexError('an executable comment is not closed');
  } catch (error) {
    if (error instanceof LexError)
      return { statements, error: error.message, modeAfter: null, conditional: options.seen };
    throw error;
  }
  return { statements, error: null, modeAfter: current, conditional: options.seen };
}

function statementOf(tokens: readonly MysqlToken[], mode: MysqlSqlMode): LexedStatement {
  return {
    tokens,
    canonical: joinTokens(tokens),
    start: tokens[0]!.start,
    end: tokens[tokens.length - 1]!.end,
    mode,
  };
}

/** Canonical text of tokens: one blank where the source had any separation, none elsewhere. */
export function joinTokens(tokens: readonly Pick<MysqlToken, 'canonical' | 'spaced'>[]): string {
  const parts: string[] = [];
  let last = '';
  for (const token of tokens) {
    const text = token.canonical;
    // Tokens that were apart must stay apart: `- -1` must not become a `--` comment, nor `/ *` a `/*`.
    // (The last part is looked at, not the text so far: that would flatten a growing string every time.)
    if (
      parts.length > 0 &&
      (token.spaced ||
        (last.endsWith('-') && text.startsWith('-')) ||
        (last.endsWith('/') && text.startsWith('*')))
    )
      parts.push(' ');
    parts.push(text);
    last = text;
  }
  return parts.join('');
}

/** Whether anything but blanks, comments and semicolons follows (a cheap pre-check; comments may hide code). */
function hasCode(sql: string, pos: number): boolean {
  return /[^\s;]/.test(sql.slice(pos));
}

interface StatementScan {
  readonly tokens: MysqlToken[];
  readonly end: number;
  readonly inExecutable: boolean;
}

function lexStatement(
  sql: string,
  from: number,
  mode: MysqlSqlMode,
  executable: boolean,
  options: LexOptions,
): StatementScan {
  const tokens: MysqlToken[] = [];
  let inExecutable = executable;
  let pos = from;
  let spaced = true;
  const push = (type: MysqlTokenType, value: string, canonical: string, start: number, end: number) => {
    tokens.push({ type, value, canonical, start, end, spaced });
    spaced = false;
    pos = end;
  };
  while (pos < sql.length) {
    const c = sql[pos]!;
    const code = c.charCodeAt(0);
    if (isSpace(code)) {
      pos++;
      spaced = true;
      continue;
    }
    if (c === ';') return { tokens, end: pos + 1, inExecutable };
    if (c === '#') {
      pos = lineEnd(sql, pos);
      spaced = true;
      continue;
    }
    if (c === '-' && sql[pos + 1] === '-' && (pos + 2 >= sql.length || sql.charCodeAt(pos + 2) <= 32)) {
      pos = lineEnd(sql, pos);
      spaced = true;
      continue;
    }
    if (c === '/' && sql[pos + 1] === '*') {
      const opened = openComment(sql, pos, inExecutable, options);
      pos = opened.pos;
      inExecutable = opened.inExecutable;
      spaced = true;
      continue;
    }
    if (c === '*' && sql[pos + 1] === '/' && inExecutable) {
      inExecutable = false;
      pos += 2;
      spaced = true;
      continue;
    }
    if (c === "'" || (c === '"' && !mode.ansiQuotes)) {
      const end = stringEnd(sql, pos, c, mode);
      const value = decodeString(sql.slice(pos + 1, end - 1), c, mode);
      push('string', value, quoteString(value), pos, end);
      continue;
    }
    if (c === '`' || (c === '"' && mode.ansiQuotes)) {
      const end = quotedEnd(sql, pos, c);
      const name = sql.slice(pos + 1, end - 1).replaceAll(c + c, c);
      push('ident', name, quoteIdent(name), pos, end);
      continue;
    }
    if (c === '@' && !followsAccountName(tokens, pos)) {
      lexVariable(sql, pos, mode, push);
      continue;
    }
    if (c === '\\' && sql[pos + 1] === 'N') {
      push('null', 'NULL', 'NULL', pos, pos + 2);
      continue;
    }
    if (c === '?') {
      push('param', '?', '?', pos, pos + 1);
      continue;
    }
    if (isIdentChar(code) || (c === '.' && /[0-9]/.test(sql[pos + 1] ?? '') && !followsName(tokens, pos))) {
      lexWordOrNumber(sql, pos, mode, push);
      continue;
    }
    const op = '<>!:|&-'.includes(c) ? OPERATORS.find((o) => sql.startsWith(o, pos)) : undefined;
    if (op) push('punct', op, op, pos, pos + op.length);
    else push('punct', c, c, pos, pos + 1);
  }
  return { tokens, end: pos, inExecutable };
}

/** `t.5` names column 5 of t; `t .5` too, but that is rare enough to read as a number. */
function followsName(tokens: readonly MysqlToken[], pos: number): boolean {
  const last = tokens[tokens.length - 1];
  return last !== undefined && (last.type === 'word' || last.type === 'ident') && last.end === pos;
}

/** `'user'@'host'`, `` `user`@host ``: the `@` of an account name joins two names, it opens no variable. */
function followsAccountName(tokens: readonly MysqlToken[], pos: number): boolean {
  const last = tokens[tokens.length - 1];
  return last !== undefined && last.end === pos && (last.type === 'string' || last.type === 'ident');
}

function lineEnd(sql: string, pos: number): number {
  const end = sql.indexOf('\n', pos);
  return end < 0 ? sql.length : end + 1;
}

/** After `/*`: skips a comment, or enters an executable one (its version number skipped). */
function openComment(
  sql: string,
  pos: number,
  inExecutable: boolean,
  options: LexOptions,
): { pos: number; inExecutable: boolean } {
  const executable = sql[pos + 2] === '!' ? 3 : sql.startsWith('M!', pos + 2) ? 4 : 0;
  if (executable > 0) {
    if (inExecutable) throw new LexError('an executable comment opens inside another');
    let p = pos + executable;
    let digits = 0;
    while (digits < 6 && /[0-9]/.test(sql[p] ?? '')) {
      p++;
      digits++;
    }
    // Servers read five or six digits as a version; other counts are read differently by different servers.
    if (digits !== 0 && digits !== 5 && digits !== 6)
      throw new LexError('an executable comment has a version number servers read differently');
    const conditional = digits > 0 || executable === 4;
    if (conditional) options.seen = true;
    if (!conditional || options.conditional === 'code') return { pos: p, inExecutable: true };
  }
  // MySQL does not nest comments: inside an executable comment the first `*/` would close both.
  if (inExecutable) throw new LexError('a comment opens inside an executable comment');
  const end = sql.indexOf('*/', pos + 2);
  if (end < 0) throw new LexError('a comment is not closed');
  return { pos: end + 2, inExecutable };
}

function stringEnd(sql: string, start: number, quote: string, mode: MysqlSqlMode): number {
  let p = start + 1;
  while (p < sql.length) {
    const ch = sql[p]!;
    if (ch === '\\' && !mode.noBackslashEscapes) {
      p += 2;
      continue;
    }
    if (ch === quote) {
      if (sql[p + 1] === quote) {
        p += 2;
        continue;
      }
      return p + 1;
    }
    p++;
  }
  throw new LexError('a string literal is not closed');
}

function decodeString(body: string, quote: string, mode: MysqlSqlMode): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch === '\\' && !mode.noBackslashEscapes && i + 1 < body.length) {
      const next = body[++i]!;
      out += ESCAPES[next] ?? next;
    } else if (ch === quote && body[i + 1] === quote) {
      out += quote;
      i++;
    } else out += ch;
  }
  return out;
}

function quotedEnd(sql: string, start: number, quote: string): number {
  let p = start + 1;
  while (p < sql.length) {
    if (sql[p] === quote) {
      if (sql[p + 1] === quote) {
        p += 2;
        continue;
      }
      return p + 1;
    }
    p++;
  }
  throw new LexError('a quoted identifier is not closed');
}

/** The parser reads strings with MySQL's default escaping. */
function quoteString(value: string): string {
  return "'" + value.replaceAll('\\', '\\\\').replaceAll("'", "''") + "'";
}

function quoteIdent(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`';
}

type Push = (type: MysqlTokenType, value: string, canonical: string, start: number, end: number) => void;

function lexVariable(sql: string, pos: number, mode: MysqlSqlMode, push: Push): void {
  if (sql[pos + 1] === '@') {
    let p = pos + 2;
    while (p < sql.length && (isIdentChar(sql.charCodeAt(p)) || sql[p] === '.')) p++;
    if (p === pos + 2) throw new LexError('a system variable has no name');
    const name = sql.slice(pos + 2, p).toLowerCase();
    push('system-variable', name, '@@' + name, pos, p);
    return;
  }
  const q = sql[pos + 1];
  if (q === "'" || q === '"' || q === '`') {
    const end = q === '`' ? quotedEnd(sql, pos + 1, q) : stringEnd(sql, pos + 1, q, mode);
    const name = (
      q === '`' ? sql.slice(pos + 2, end - 1) : decodeString(sql.slice(pos + 2, end - 1), q, mode)
    )
      .replaceAll(q + q, q)
      .toLowerCase();
    push('variable', name, variableCanonical(name), pos, end);
    return;
  }
  let p = pos + 1;
  while (p < sql.length && (isIdentChar(sql.charCodeAt(p)) || sql[p] === '.')) p++;
  const name = sql.slice(pos + 1, p).toLowerCase();
  push('variable', name, variableCanonical(name), pos, p);
}

/** The parser knows only plain `@name`; other names are rare enough to stand for one that cannot clash. */
function variableCanonical(name: string): string {
  return /^[a-z0-9_$]+$/.test(name) ? '@' + name : '@gatehouse_quoted_variable';
}

const NUMBER = /(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;
const HEX_NUMBER = /^0x[0-9a-fA-F]+$/;
const BIT_NUMBER = /^0b[01]+$/;

function lexWordOrNumber(sql: string, pos: number, mode: MysqlSqlMode, push: Push): void {
  let p = pos;
  while (p < sql.length && isIdentChar(sql.charCodeAt(p))) p++;
  const word = sql.slice(pos, p);
  // X'..', B'..', N'..' and charset introducers (_utf8mb4'..') prefix a literal.
  const next = sql[p];
  if (next === "'" && /^[xX]$/.test(word)) {
    const end = stringEnd(sql, p, "'", mode);
    const digits = sql.slice(p + 1, end - 1);
    push('hex', digits, `X'${digits}'`, pos, end);
    return;
  }
  if (next === "'" && /^[bB]$/.test(word)) {
    const end = stringEnd(sql, p, "'", mode);
    const digits = sql.slice(p + 1, end - 1);
    push('bit', digits, `B'${digits}'`, pos, end);
    return;
  }
  if ((next === "'" || (next === '"' && !mode.ansiQuotes)) && /^(?:[nN]|_[A-Za-z0-9]+)$/.test(word)) {
    const end = stringEnd(sql, p, next, mode);
    const value = decodeString(sql.slice(p + 1, end - 1), next, mode);
    push('string', value, quoteString(value), pos, end);
    return;
  }
  if (HEX_NUMBER.test(word)) {
    push('hex', word.slice(2), word, pos, p);
    return;
  }
  if (BIT_NUMBER.test(word)) {
    push('bit', word.slice(2), word, pos, p);
    return;
  }
  NUMBER.lastIndex = pos;
  const number = NUMBER.exec(sql);
  if (number) {
    const end = pos + number[0].length;
    // Identifiers may begin with digits (`1abc`); a number is one only when no name character follows.
    if (end >= p || !isIdentChar(sql.charCodeAt(end))) {
      push('number', number[0], number[0], pos, end);
      return;
    }
  }
  if (word === '') throw new LexError('an unexpected character');
  push('word', word.toUpperCase(), isPlainWord(word) ? word : quoteIdent(word), pos, p);
}

function isPlainWord(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(word);
}

const SESSION_SQL_MODE = new Set(['sql_mode', 'session.sql_mode', 'local.sql_mode']);
const OTHER_SCOPES = new Set(['GLOBAL', 'PERSIST', 'PERSIST_ONLY']);

/**
 * How a statement changes the session's sql_mode: `SET [SESSION|LOCAL] sql_mode = v`,
 * `SET @@[session.|local.]sql_mode = v`, among other assignments too. A value that is not one
 * literal (DEFAULT, an expression, a variable) cannot be told from the text: null. MariaDB's
 * `SET STATEMENT sql_mode=... FOR` changes it for one statement read under the old one: null too.
 */
export function sqlModeSetBy(tokens: readonly MysqlToken[], current: MysqlSqlMode): SqlModeChange {
  if (tokens[0]?.type !== 'word' || tokens[0].value !== 'SET') return undefined;
  let change: SqlModeChange;
  let depth = 0;
  let otherScope = false;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    if (depth !== 0) continue;
    if (t.type === 'word' && OTHER_SCOPES.has(t.value)) otherScope = true;
    if (t.type === 'word' && (t.value === 'SESSION' || t.value === 'LOCAL')) otherScope = false;
    const named =
      (t.type === 'word' && t.value === 'SQL_MODE') ||
      (t.type === 'ident' && t.value.toLowerCase() === 'sql_mode') ||
      (t.type === 'system-variable' && SESSION_SQL_MODE.has(t.value));
    const afterDot = tokens[i - 1]?.type === 'punct' && tokens[i - 1]!.value === '.';
    const assigned =
      tokens[i + 1]?.type === 'punct' && (tokens[i + 1]!.value === '=' || tokens[i + 1]!.value === ':=');
    if (!named || afterDot || !assigned) continue;
    if (tokens[1]?.type === 'word' && tokens[1].value === 'STATEMENT') return null;
    const before = tokens[i - 1];
    if (before?.type === 'word' && OTHER_SCOPES.has(before.value)) continue;
    // `SET GLOBAL a = 1, sql_mode = ...`: which scope the server gives it is not worth guessing.
    if (otherScope && t.type !== 'system-variable') return null;
    const value = tokens[i + 2];
    const end = tokens[i + 3];
    const single = end === undefined || (end.type === 'punct' && end.value === ',');
    if (value && single && (value.type === 'string' || value.type === 'ident'))
      change = parseSqlMode(value.value);
    else if (value && single && value.type === 'word' && value.value !== 'DEFAULT')
      change = parseSqlMode(value.value);
    else {
      const added = valueEnd(tokens, i + 2);
      const appended = added && concatenatedModes(tokens.slice(i + 2, added), change ?? current);
      if (!appended) return null;
      change = appended;
    }
  }
  return change;
}

/** Index after the value starting at `from`: the next top-level comma or the end. */
function valueEnd(tokens: readonly MysqlToken[], from: number): number {
  let depth = 0;
  let i = from;
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && t.type === 'punct' && t.value === ',') break;
  }
  return i;
}

const OWN_MODE = new Set(['sql_mode', 'session.sql_mode', 'local.sql_mode']);

/**
 * `CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')`, nested too (as Rails sends it): the current modes
 * plus the literal ones. Anything else (REPLACE, variables, other functions) is undefined.
 */
function concatenatedModes(value: readonly MysqlToken[], current: MysqlSqlMode): MysqlSqlMode | undefined {
  let ansiQuotes = current.ansiQuotes;
  let noBackslashEscapes = current.noBackslashEscapes;
  for (const t of value) {
    if (t.type === 'word' && t.value === 'CONCAT') continue;
    if (t.type === 'punct' && (t.value === '(' || t.value === ')' || t.value === ',')) continue;
    if (t.type === 'system-variable' && OWN_MODE.has(t.value)) continue;
    if (t.type !== 'string') return undefined;
    const added = parseSqlMode(t.value);
    ansiQuotes ||= added.ansiQuotes;
    noBackslashEscapes ||= added.noBackslashEscapes;
  }
  return modeOf(ansiQuotes, noBackslashEscapes);
}
