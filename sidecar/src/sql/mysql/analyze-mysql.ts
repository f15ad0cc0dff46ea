import { assembleFacts, type StatementEntry } from '../analyze/assemble-facts.ts';
import type { PreparedStatement, StatementFacts } from '../analyze/statement-facts.ts';
import { Lru } from '../lru.ts';
import { type LexedStatement, type LexResult, lexMysql } from './lexer.ts';
import { analyzeMysqlRoutineBody } from './routine-body.ts';
import { EVERY_SQL_MODE, type MysqlSqlMode, sqlModeKey } from './sql-mode.ts';
import { analyzeLexed, type RuleContext, unknownEntry } from './statement-rules.ts';
import { storedCodeBody } from './stored-code-body.ts';

/** A MySQL PREPARE in the text: what EXECUTE of the name runs, and its text for lineage. */
export interface MysqlPreparedStatement extends PreparedStatement {
  /** The prepared text; null when it is built at run time (PREPARE ... FROM @var). */
  readonly text: string | null;
  readonly mode: MysqlSqlMode;
}

/** Text whose values the proxy must scrub before the client sees them. */
export type MysqlSideChannel =
  /** SHOW WARNINGS / SHOW ERRORS / GET DIAGNOSTICS: messages quote values of rows and literals. */
  | 'diagnostics'
  /** SHOW PROCESSLIST: other sessions' statement texts, literals included. */
  | 'processlist'
  /** EXTRACTVALUE, UPDATEXML, GTID_SUBSET...: their error messages quote the values they were given. */
  | 'error-text';

/** StatementFacts of MySQL text, with what the session must remember after it runs. */
export interface MysqlStatementFacts extends StatementFacts {
  readonly prepared: readonly MysqlPreparedStatement[];
  readonly sideChannels: readonly MysqlSideChannel[];
  /** The session's sql_mode after the text: undefined when unchanged, null when it cannot be told. */
  readonly sqlModeAfter: MysqlSqlMode | null | undefined;
  /** User variables the text assigns (`SET @v`, `@v :=`, `SELECT ... INTO @v`), lower-cased. */
  readonly userVariables: readonly string[];
  /** HANDLER ... OPEN: handler names (lower-cased) and the table each reads. */
  readonly handlers: readonly { readonly name: string; readonly table: string }[];
  /** The session's default database after the text (USE); undefined when unchanged. */
  readonly databaseAfter: string | undefined;
}

export interface MysqlAnalyzeOptions {
  /** The session's sql_mode when the text arrives; null when it cannot be told (the text must read the same under every mode). */
  readonly sqlMode: MysqlSqlMode | null;
}

/*
 * Memory bound as in analyze-statement.ts: texts longer than MAX_CACHED_CHARS are analysed every
 * time; the cache holds at most 2 x CACHE_ENTRIES texts and their facts.
 */
const CACHE_ENTRIES = 512;
const MAX_CACHED_CHARS = 4096;
const cache = new Lru<string, MysqlStatementFacts>(CACHE_ENTRIES);

/**
 * What MySQL or MariaDB text (a COM_QUERY, a COM_STMT_PREPARE, or PREPARE's string) does: every
 * statement in it, nested ones included, in the StatementFacts shape the guardrails decide on.
 * Text that cannot be read safely (unterminated literals or comments, a grammar the parser rejects,
 * an sql_mode that cannot be told) gives `unknown` statements that need every class, so it fails
 * closed. Cached by (sql_mode, text) and frozen. `loadMysqlParser()` must have finished first.
 */
export function analyzeMysql(sql: string, options: MysqlAnalyzeOptions): MysqlStatementFacts {
  const key = (options.sqlMode ? sqlModeKey(options.sqlMode) : '??') + sql;
  const cached = cache.get(key);
  if (cached) return cached;
  const facts = options.sqlMode ? analyzeUnder(sql, options.sqlMode) : analyzeUnderAnyMode(sql);
  if (sql.length <= MAX_CACHED_CHARS) cache.set(key, facts);
  return facts;
}

/** Text read under an unknown sql_mode means what it says only if every mode reads it the same way. */
function analyzeUnderAnyMode(sql: string): MysqlStatementFacts {
  const readings = EVERY_SQL_MODE.map((mode) => lexMysql(sql, mode));
  const first = JSON.stringify(canonicalOf(readings[0]!));
  if (readings.some((r) => JSON.stringify(canonicalOf(r)) !== first))
    return unknownFacts(
      "the text reads differently under different sql_modes, and the session's is not known",
    );
  return analyzeUnder(sql, EVERY_SQL_MODE[0]!);
}

function canonicalOf(lexed: LexResult): unknown {
  return [lexed.error, lexed.statements.map((s) => s.canonical)];
}

function unknownFacts(detail: string): MysqlStatementFacts {
  return finish([unknownEntry(detail)], 1, false, {
    prepared: [],
    unresolvedExecutes: [],
    deallocated: [],
    sideChannels: [],
    sqlModeAfter: null,
    userVariables: [],
    handlers: [],
    databaseAfter: undefined,
  });
}

interface Extra {
  prepared: MysqlPreparedStatement[];
  unresolvedExecutes: string[];
  deallocated: string[];
  sideChannels: MysqlSideChannel[];
  sqlModeAfter: MysqlSqlMode | null | undefined;
  userVariables: string[];
  handlers: { name: string; table: string }[];
  databaseAfter: string | undefined;
}

/**
 * Conditional comments (`/*!NNNNN`, `/*M!`) run on some servers and not on others, and either
 * reading may be the dangerous one (`DELETE FROM t /*!99999 WHERE id = 1 *\/` deletes every row
 * on a server older than the version): when the readings differ, the statements of both are judged.
 */
function analyzeUnder(sql: string, mode: MysqlSqlMode): MysqlStatementFacts {
  const code = lexMysql(sql, mode, 'code');
  const asCode = analyzeReading(sql, code, mode);
  if (!code.conditional) return finish(asCode.entries, asCode.topLevel, asCode.parsed, asCode.extra);
  const skipped = lexMysql(sql, mode, 'comment');
  if (JSON.stringify(canonicalOf(skipped)) === JSON.stringify(canonicalOf(code)))
    return finish(asCode.entries, asCode.topLevel, asCode.parsed, asCode.extra);
  const asComment = analyzeReading(sql, skipped, mode);
  const entries = [
    ...asCode.entries,
    ...asComment.entries.map((e) => ({ ...e, via: ['conditional comments skipped', ...e.via] })),
  ];
  const extra: Extra = {
    prepared: [...asCode.extra.prepared, ...asComment.extra.prepared],
    unresolvedExecutes: [...asCode.extra.unresolvedExecutes, ...asComment.extra.unresolvedExecutes],
    deallocated: [...asCode.extra.deallocated, ...asComment.extra.deallocated],
    sideChannels: [...asCode.extra.sideChannels, ...asComment.extra.sideChannels],
    sqlModeAfter: sameMode(asCode.extra.sqlModeAfter, asComment.extra.sqlModeAfter)
      ? asCode.extra.sqlModeAfter
      : null,
    userVariables: [...new Set([...asCode.extra.userVariables, ...asComment.extra.userVariables])],
    handlers: [...asCode.extra.handlers, ...asComment.extra.handlers],
    databaseAfter:
      asCode.extra.databaseAfter === asComment.extra.databaseAfter ? asCode.extra.databaseAfter : undefined,
  };
  return finish(
    entries,
    Math.max(asCode.topLevel, asComment.topLevel),
    asCode.parsed && asComment.parsed,
    extra,
  );
}

function sameMode(a: MysqlSqlMode | null | undefined, b: MysqlSqlMode | null | undefined): boolean {
  return a === b || (a != null && b != null && sqlModeKey(a) === sqlModeKey(b));
}

interface Reading {
  readonly entries: StatementEntry[];
  readonly topLevel: number;
  readonly parsed: boolean;
  readonly extra: Extra;
}

function analyzeReading(sql: string, lexed: LexResult, mode: MysqlSqlMode): Reading {
  const extra = emptyExtra();
  const entries: StatementEntry[] = [];
  const prepared = new Map<string, readonly StatementEntry[]>();
  const constants = new Map<string, string>();
  let topLevel = 0;
  const statements = compoundCreates(lexed.statements);
  for (const statement of statements) {
    const ctx: RuleContext = {
      source: sql,
      analyzeBody: (text, options) =>
        analyzeMysqlRoutineBody(text, statement.mode, analyzeMysql, options).statements.map(entryOf),
      analyzeText: (text) => {
        const inner = analyzeMysql(text, { sqlMode: statement.mode });
        return inner.parsed ? inner.statements.map(entryOf) : 'unknown';
      },
      prepared,
      constants,
    };
    const analysed = analyzeLexed(statement, ctx);
    for (const e of analysed.entries) entries.push({ ...e, topLevel });
    topLevel++;
    if (analysed.prepare) {
      prepared.set(analysed.prepare.name, analysed.prepare.entries);
      extra.prepared.push({
        name: analysed.prepare.name,
        text: analysed.prepare.text,
        mode: statement.mode,
        facts: finish(analysed.prepare.entries, 1, true, { ...emptyExtra() }),
      });
    }
    if (analysed.executes !== undefined && !prepared.has(analysed.executes))
      extra.unresolvedExecutes.push(analysed.executes);
    if (analysed.deallocates !== undefined) {
      extra.deallocated.push(analysed.deallocates);
      prepared.delete(analysed.deallocates);
    }
    if (analysed.sideChannel) extra.sideChannels.push(analysed.sideChannel);
    if (analysed.handler) extra.handlers.push(analysed.handler);
    if (analysed.database !== undefined) extra.databaseAfter = analysed.database;
    for (const v of analysed.userVariables) if (!extra.userVariables.includes(v)) extra.userVariables.push(v);
    for (const v of assignedInQuery(statement.tokens))
      if (!extra.userVariables.includes(v)) extra.userVariables.push(v);
    for (const [name, value] of analysed.constants) {
      if (value === null) constants.delete(name);
      else constants.set(name, value);
    }
  }
  if (lexed.error !== null) {
    entries.push({ ...unknownEntry(`the text cannot be read safely: ${lexed.error}`), topLevel });
    topLevel++;
  }
  if (lexed.modeAfter === null) extra.sqlModeAfter = null;
  else if (lexed.modeAfter !== mode) extra.sqlModeAfter = lexed.modeAfter;
  return { entries, topLevel, parsed: !entries.some((e) => e.kind === 'unknown'), extra };
}

/**
 * `CREATE PROCEDURE p() BEGIN ...; ...; END`: the lexer splits at every `;`, the server reads one
 * compound statement. A CREATE of stored code whose body starts a block (BEGIN, or a label) takes the
 * rest of the text as its body: what follows its END, if anything, is judged as part of the body, so
 * it is judged still (though not as a statement of its own).
 */
function compoundCreates(statements: readonly LexedStatement[]): readonly LexedStatement[] {
  const at = statements.findIndex((s) => {
    const body = storedCodeBody(s.tokens);
    if (!body) return false;
    const first = s.tokens[body.start];
    const second = s.tokens[body.start + 1];
    return (
      (first?.type === 'word' && first.value === 'BEGIN') ||
      (second?.type === 'punct' && second.value === ':')
    );
  });
  if (at < 0 || at === statements.length - 1) return statements;
  const rest = statements.slice(at);
  const merged: LexedStatement = {
    ...rest[0]!,
    tokens: rest.flatMap((s) => s.tokens),
    canonical: rest.map((s) => s.canonical).join(';\n'),
    end: rest[rest.length - 1]!.end,
  };
  return [...statements.slice(0, at), merged];
}

/** `@v := expr` and `INTO @v` in any statement. */
function assignedInQuery(tokens: LexResult['statements'][number]['tokens']): string[] {
  const out: string[] = [];
  tokens.forEach((t, i) => {
    if (t.type !== 'variable') return;
    const next = tokens[i + 1];
    const previous = tokens[i - 1];
    if (
      (next?.type === 'punct' && next.value === ':=') ||
      (previous?.type === 'word' && previous.value === 'INTO')
    )
      out.push(t.value);
    else if (
      previous?.type === 'punct' &&
      previous.value === ',' &&
      out.length > 0 &&
      tokens.some((x) => x.type === 'word' && x.value === 'INTO')
    )
      out.push(t.value);
  });
  return out;
}

function emptyExtra(): Extra {
  return {
    prepared: [],
    unresolvedExecutes: [],
    deallocated: [],
    sideChannels: [],
    sqlModeAfter: undefined,
    userVariables: [],
    handlers: [],
    databaseAfter: undefined,
  };
}

function entryOf(statement: StatementFacts['statements'][number]): StatementEntry {
  return { ...statement, findings: statement.findings.map(({ statement: _index, ...finding }) => finding) };
}

function finish(
  entries: readonly StatementEntry[],
  statementCount: number,
  parsed: boolean,
  extra: Extra,
): MysqlStatementFacts {
  const facts = assembleFacts(entries, {
    parsed,
    statementCount,
    prepared: extra.prepared,
    unresolvedExecutes: [...new Set(extra.unresolvedExecutes)],
    deallocated: extra.deallocated,
    cursors: [],
  });
  return Object.freeze({
    ...facts,
    prepared: facts.prepared as readonly MysqlPreparedStatement[],
    sideChannels: Object.freeze([...new Set(extra.sideChannels)]),
    sqlModeAfter: extra.sqlModeAfter,
    userVariables: Object.freeze([...extra.userVariables]),
    handlers: Object.freeze(extra.handlers.map((h) => Object.freeze({ ...h }))),
    databaseAfter: extra.databaseAfter,
  });
}
