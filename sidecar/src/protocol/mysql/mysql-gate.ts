import type { Identity } from '../../identity/identity.ts';
import { decide } from '../../policy/guardrails/decide.ts';
import type { CodeSource, PolicySource } from '../../policy/sources.ts';
import { type GateDecision, withStoredCode } from '../../policy/statement-gate.ts';
import type { StatementFacts, StatementKind } from '../../sql/analyze/statement-facts.ts';
import { changesStoredCode } from '../../sql/code-reach.ts';
import { Lru } from '../../sql/lru.ts';
import { analyzeMysql, type MysqlStatementFacts } from '../../sql/mysql/analyze-mysql.ts';
import { lexMysql } from '../../sql/mysql/lexer.ts';
import { mysqlOutputLineage } from '../../sql/mysql/lineage-mysql.ts';
import { normalizeMysql } from '../../sql/mysql/normalize-mysql.ts';
import { applyMysqlSessionEffects, resolveMysqlExecutes } from '../../sql/mysql/session.ts';
import { initialMysqlSession, type MysqlSessionState } from '../../sql/mysql/session-state.ts';
import { EVERY_SQL_MODE, type MysqlSqlMode, parseSqlMode, sqlModeKey } from '../../sql/mysql/sql-mode.ts';
import { changesReading } from '../../sql/mysql/statement-rules.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { MysqlGate } from './session.ts';

const UNREADABLE: QueryText = Object.freeze({ statement: null, fingerprint: null });

/** Kinds whose facts do not depend on the values of the literals in them (unlike UPDATE/DELETE's WHERE 1=1). */
const SHAPE_SAFE_KINDS: ReadonlySet<StatementKind> = new Set(['select', 'insert']);
const SHAPES = new Lru<string, MysqlStatementFacts>(2048);

/**
 * analyzeMysql, cached also by the text's shape: its tokens with every literal value erased (the audit
 * normalisation, read under the same sql_mode). Texts that differ only in literals (an application's
 * `WHERE id=42`) then cost one analysis. Only facts that no literal value can change are shared: plain
 * SELECT and INSERT statements with no finding at all and no effect on the session (no PREPARE, user
 * variable, sql_mode, HANDLER). Everything else is analysed for its own text.
 */
function analyzeByShape(sql: string, mode: MysqlSqlMode | null, shape: string | null | undefined) {
  if (!mode || !shape) return analyzeMysql(sql, { sqlMode: mode });
  const key = sqlModeKey(mode) + shape;
  const cached = SHAPES.get(key);
  if (cached) return cached;
  const facts = analyzeMysql(sql, { sqlMode: mode });
  if (literalIndependent(facts)) SHAPES.set(key, facts);
  return facts;
}

function literalIndependent(facts: MysqlStatementFacts): boolean {
  return (
    facts.parsed &&
    facts.findings.length === 0 &&
    facts.statements.every((s) => SHAPE_SAFE_KINDS.has(s.kind)) &&
    facts.prepared.length === 0 &&
    facts.unresolvedExecutes.length === 0 &&
    facts.deallocated.length === 0 &&
    facts.cursors.length === 0 &&
    facts.sideChannels.length === 0 &&
    facts.sqlModeAfter === undefined &&
    facts.userVariables.length === 0 &&
    facts.handlers.length === 0
  );
}

/**
 * One session's guardrail checkpoint for MySQL, as StatementGate is for PostgreSQL: the same decide()
 * over facts from the MySQL analyser. It follows what the session's statements change in how later
 * ones read: sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES) and SQL PREPAREd statements. Only allowed
 * text changes that state, since refused text never reaches the server.
 */
export function createMysqlGate(options: {
  policy: PolicySource;
  identity: Identity;
  database: string;
  /** `@@SESSION.sql_mode` when the session started; '' or unknown text reads as the server default. */
  sqlMode: string | null;
  /** The server's stored code: calls, triggers and views are judged by what their code does. */
  code: CodeSource;
}): MysqlGate {
  const { policy, identity, database } = options;
  /** DDL the session ran that the catalog may not show yet (see StatementGate). */
  let pending: StatementFacts[] = [];
  let state: MysqlSessionState = initialMysqlSession(
    options.sqlMode === null ? null : parseSqlMode(options.sqlMode),
  );
  return {
    localInfiles(sql) {
      // Read under the session's sql_mode; when it cannot be told, no upload is allowed (fail closed).
      if (!state.sqlMode) return [];
      const lexed = lexMysql(sql, state.sqlMode);
      if (lexed.error) return [];
      const files: string[] = [];
      for (const { tokens } of lexed.statements) {
        const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : undefined);
        if (word(0) !== 'LOAD' || (word(1) !== 'DATA' && word(1) !== 'XML')) continue;
        let i = 2;
        while (word(i) === 'LOW_PRIORITY' || word(i) === 'CONCURRENT') i++;
        if (word(i) === 'LOCAL' && word(i + 1) === 'INFILE' && tokens[i + 2]?.type === 'string')
          files.push(tokens[i + 2]!.value);
      }
      return files;
    },
    check(sql, shape) {
      const facts = resolveMysqlExecutes(analyzeByShape(sql, state.sqlMode, shape), state);
      const current = policy();
      if (!current) {
        state = applyMysqlSessionEffects(state, facts);
        return undefined;
      }
      const reached = withStoredCode(facts, options.code(), pending);
      const changesCode = changesStoredCode(reached.facts);
      const decision: GateDecision & { reached: StatementFacts } = {
        ...decide(reached.facts, identity, current, { database }),
        code: reached.code,
        unknownRoutines: reached.unknown,
        changesCode,
        reached: reached.facts,
      };
      if (decision.outcome !== 'refuse') {
        state = applyMysqlSessionEffects(state, facts);
        if (changesCode && pending.length < 256) pending.push(reached.facts);
      }
      return decision;
    },
    misread(sql, shape) {
      const facts = analyzeByShape(sql, state.sqlMode, shape);
      return facts.findings.find((f) => f.kind === 'unknown-statement' && changesReading(f.detail))?.detail;
    },
    settle() {
      if (pending.length > 0) pending = [];
    },
    describe(sql) {
      return describeStatements(sql, state.sqlMode);
    },
    describeOne(sql) {
      return describeStatements(sql, state.sqlMode)[0] ?? { statement: '', fingerprint: null };
    },
    lineage(sql, catalog) {
      return mysqlOutputLineage(sql, catalog, state);
    },
    reset() {
      // COM_RESET_CONNECTION restores the global sql_mode, which the proxy has not read: unknown.
      state = initialMysqlSession(null);
    },
  };
}

/** One audit description per statement, read under the session's sql_mode (under every mode when unknown). */
function describeStatements(sql: string, mode: MysqlSqlMode | null): readonly QueryText[] {
  if (mode) return splitAndNormalize(sql, mode);
  const readings = EVERY_SQL_MODE.map((m) => splitAndNormalize(sql, m));
  const first = JSON.stringify(readings[0]);
  return readings.every((r) => JSON.stringify(r) === first) ? readings[0]! : [UNREADABLE];
}

function splitAndNormalize(sql: string, mode: MysqlSqlMode): readonly QueryText[] {
  const lexed = lexMysql(sql, mode);
  if (lexed.error !== null) return [UNREADABLE];
  if (lexed.statements.length <= 1) return [normalizeMysql(sql, mode)];
  // Each statement under the mode it is read in: a SET sql_mode earlier in the text changes it.
  return lexed.statements.map((s) => normalizeMysql(sql.slice(s.start, s.end), s.mode));
}
