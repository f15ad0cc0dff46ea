import { fingerprintSync, loadModule, normalizeSync, parseSync, scanSync } from 'libpg-query';
import { Lru } from './lru.ts';
import { mayNestTooDeeply } from './parser-nesting.ts';

/** What the audit log may say about one SQL statement. */
export interface QueryText {
  /**
   * The statement with every literal replaced by a `$n` placeholder and comments removed; null when
   * the text could not be parsed (the raw text is never returned).
   */
  readonly statement: string | null;
  /** libpg_query's fingerprint: equal for statements that differ only in their literal values. */
  readonly fingerprint: string | null;
}

const UNPARSEABLE: QueryText = Object.freeze({ statement: null, fingerprint: null });
const UNPARSEABLE_QUERY: readonly QueryText[] = Object.freeze([UNPARSEABLE]);
const NO_STATEMENTS: readonly QueryText[] = Object.freeze([]);
/** An empty Parse (only whitespace, comments or semicolons): PostgreSQL accepts it and runs nothing. */
const EMPTY_STATEMENT: QueryText = Object.freeze({ statement: '', fingerprint: null });

/*
 * Memory bound: texts longer than MAX_CACHED_CHARS are described but never cached (a bulk INSERT
 * is unlikely to repeat), so each cache holds at most 2 x CACHE_ENTRIES x (key + value) of 4096
 * UTF-16 chars: 16 MiB in the worst case, far less for ordinary traffic.
 */
const CACHE_ENTRIES = 512;
const MAX_CACHED_CHARS = 4096;

/** Raw Query text -> its statements. Hits when a client repeats a text exactly (ORMs, health checks). */
const queries = new Lru<string, readonly QueryText[]>(CACHE_ENTRIES);
/** Raw Parse text -> description. Extended-protocol texts carry $n parameters, so they repeat. */
const parses = new Lru<string, QueryText>(CACHE_ENTRIES);
/**
 * Normalized text -> description. Texts that differ only in literals (pgbench's `aid = 12345`)
 * miss the caches above but normalize to the same text, which saves the fingerprint and the scrub.
 * Two texts with the same normalization differ only in constants, which fingerprints ignore, so the
 * fingerprint computed for the first is right for all.
 */
const normalized = new Lru<string, QueryText>(CACHE_ENTRIES);

interface TokenKinds {
  readonly literals: ReadonlySet<number>;
  readonly comments: ReadonlySet<number>;
  readonly param: number;
}
let tokenKinds: TokenKinds | undefined;

/**
 * Loads libpg-query's WebAssembly module. Call once at startup, before any describe call: the
 * synchronous parser functions cannot load it themselves.
 */
export async function loadSqlParser(): Promise<void> {
  if (tokenKinds) return;
  await loadModule();
  tokenKinds = learnTokenKinds();
}

/**
 * Token numbers are generated from PostgreSQL's grammar and change between major versions, and the
 * scanner names some of them UNKNOWN, so learn them from a sample instead of hard-coding them.
 */
function learnTokenKinds(): TokenKinds {
  const sample = "'s' 1 1.5 B'1' X'1' U&'u' $1 /* c */ -- c";
  const tokens = scanSync(sample).tokens;
  if (tokens.length !== 9)
    throw new Error(`libpg-query scanned ${tokens.length} tokens from its calibration sample`);
  const type = (index: number): number => tokens[index]!.tokenType;
  return {
    literals: new Set([type(0), type(1), type(2), type(3), type(4), type(5)]),
    param: type(6),
    comments: new Set([type(7), type(8)]),
  };
}

function requireLoaded(): TokenKinds {
  if (!tokenKinds) throw new Error('loadSqlParser() must finish before SQL text is described');
  return tokenKinds;
}

/**
 * Describes the text of one simple-protocol Query message: one entry per statement it holds (none
 * for an empty query). Text that does not parse gives a single entry of nulls, as PostgreSQL
 * rejects the whole message then.
 */
export function describeQuery(sql: string): readonly QueryText[] {
  requireLoaded();
  const cached = queries.get(sql);
  if (cached) return cached;
  const described = describeStatements(sql);
  if (sql.length <= MAX_CACHED_CHARS) queries.set(sql, described);
  return described;
}

/** Describes the text of one extended-protocol Parse message, which holds at most one statement. */
export function describeStatement(sql: string): QueryText {
  requireLoaded();
  const cached = parses.get(sql);
  if (cached) return cached;
  const described = describeOne(sql);
  if (sql.length <= MAX_CACHED_CHARS) parses.set(sql, described);
  return described;
}

function describeStatements(sql: string): readonly QueryText[] {
  // Text nested deeper than the parser's stack would overflow it and corrupt the module for good.
  if (mayNestTooDeeply(sql)) return UNPARSEABLE_QUERY;
  if (!maySplit(sql)) return listOf(describeOne(sql));
  // The parser, not a semicolon search, finds the boundaries: quotes, dollar quotes, comments and
  // BEGIN ATOMIC bodies all hold semicolons that do not end a statement.
  let stmts: readonly { stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = parseSync(sql).stmts ?? [];
  } catch {
    return UNPARSEABLE_QUERY;
  }
  if (stmts.length <= 1) return listOf(describeOne(sql));
  // Statement locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  const described: QueryText[] = [];
  for (const stmt of stmts) {
    const start = stmt.stmt_location ?? 0;
    const end = stmt.stmt_len ? start + stmt.stmt_len : bytes.length;
    const one = describeOne(bytes.toString('utf8', start, end));
    if (one === UNPARSEABLE) return UNPARSEABLE_QUERY;
    if (one !== EMPTY_STATEMENT) described.push(one);
  }
  return Object.freeze(described);
}

function listOf(one: QueryText): readonly QueryText[] {
  if (one === UNPARSEABLE) return UNPARSEABLE_QUERY;
  if (one === EMPTY_STATEMENT) return NO_STATEMENTS;
  return Object.freeze([one]);
}

/**
 * Cheap pre-check that keeps the common single statement (`SELECT ... WHERE aid = 12345;`) away from
 * the parser: only a semicolon before the trailing run of semicolons and blanks can separate two
 * statements. A loop rather than a regex, so a long run of blanks cannot make it quadratic.
 */
function maySplit(sql: string): boolean {
  const semicolon = sql.indexOf(';');
  return semicolon !== -1 && semicolon < endOfContent(sql);
}

function endOfContent(text: string): number {
  let end = text.length;
  while (end > 0 && isBlankOrSemicolon(text.charCodeAt(end - 1))) end--;
  return end;
}

function isBlankOrSemicolon(code: number): boolean {
  return code === 59 || code === 32 || (code >= 9 && code <= 13);
}

function describeOne(text: string): QueryText {
  if (endOfContent(text) === 0) return EMPTY_STATEMENT;
  if (mayNestTooDeeply(text)) return UNPARSEABLE;
  let normal: string;
  try {
    normal = normalizeSync(text);
  } catch {
    return UNPARSEABLE;
  }
  const known = normalized.get(normal);
  if (known) return known;
  // normalizeSync returns some parser errors as its result instead of throwing, and those messages
  // quote the offending literal, so success is judged by the fingerprint: 16 hex digits or an error.
  let fingerprint: string;
  try {
    fingerprint = fingerprintSync(text);
  } catch {
    return UNPARSEABLE;
  }
  if (!FINGERPRINT.test(fingerprint)) return UNPARSEABLE;
  const statement = scrub(normal);
  const described =
    statement === null
      ? UNPARSEABLE
      : statement === ''
        ? EMPTY_STATEMENT
        : Object.freeze({ statement, fingerprint });
  if (normal.length <= MAX_CACHED_CHARS) normalized.set(normal, described);
  return described;
}

const FINGERPRINT = /^[0-9a-f]{16}$/;

/**
 * Anything in the text that could still be a literal or a comment: a quote, a `$` that does not
 * start a `$n` parameter (a dollar quote), a comment opener, or a digit that starts a token (digits
 * inside identifiers and parameters follow a letter, digit, `_`, `$` or non-ASCII character).
 */
const MAY_HOLD_LITERAL = /'|\$(?!\d)|--|\/\*|(?<![\w$\u0080-\uffff])\d/;

/**
 * libpg_query normalizes like pg_stat_statements, which leaves the literals of most utility
 * statements (`COPY t FROM '/path'`, `DEFAULT 'x'`, `COMMENT ON ... IS '...'`, `CREATE VIEW ... WHERE
 * a = 'x'`) and all comments in place. The scanner finds what is left: literals become further
 * `$n` placeholders and comments are dropped, since comments are free text that can carry values.
 * Returns null when the text cannot be scanned, so it is never returned raw.
 */
function scrub(normal: string): string | null {
  const text = normal.slice(0, endOfContent(normal)).trim();
  if (!MAY_HOLD_LITERAL.test(text)) return text;
  const kinds = requireLoaded();
  let tokens: readonly { start: number; end: number; tokenType: number; text: string }[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return null;
  }
  let next = 1;
  for (const token of tokens) {
    if (token.tokenType === kinds.param) next = Math.max(next, Number(token.text.slice(1)) + 1);
  }
  // Token offsets are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(text, 'utf8');
  let out = '';
  let at = 0;
  for (const token of tokens) {
    if (kinds.literals.has(token.tokenType)) {
      out += bytes.toString('utf8', at, token.start) + '$' + next++;
      at = token.end;
    } else if (kinds.comments.has(token.tokenType)) {
      out += bytes.toString('utf8', at, token.start) + ' ';
      at = token.end;
    }
  }
  out += bytes.toString('utf8', at);
  return out.slice(0, endOfContent(out)).trim();
}
