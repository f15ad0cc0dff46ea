import type { Identity } from '../../identity/identity.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { Catalog } from '../../sql/lineage/catalog.ts';
import { Lru } from '../../sql/lru.ts';
import { analyzeMysql, type MysqlStatementFacts } from '../../sql/mysql/analyze-mysql.ts';
import { MYSQL_PURE_FUNCTIONS } from '../../sql/mysql/builtins.ts';
import { lexMysql } from '../../sql/mysql/lexer.ts';
import { mysqlOutputLineage } from '../../sql/mysql/lineage-mysql.ts';
import { normalizeMysql } from '../../sql/mysql/normalize-mysql.ts';
import { applyMysqlSessionEffects, resolveMysqlExecutes } from '../../sql/mysql/session.ts';
import { initialMysqlSession, type MysqlSessionState } from '../../sql/mysql/session-state.ts';
import { EVERY_SQL_MODE, type MysqlSqlMode, parseSqlMode, sqlModeKey } from '../../sql/mysql/sql-mode.ts';
import { changesReading } from '../../sql/mysql/statement-rules.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { textShape } from '../../sql/text-shape.ts';
import { maskedDataMove, maybeMaskedAmong } from '../masking/masked-data-moves.ts';
import { maskedTables, resultMasks, type TextMasks } from '../masking/mysql-result-masks.ts';
import type { SessionMasking } from '../masking/mysql-session-masking.ts';
import { planInForce } from '../masking/plan-basis.ts';
import { touchedSensitiveColumns } from '../masking/touched-columns.ts';
import { clearTouch } from '../masking/traced-touch.ts';
import type { McpTool } from '../mcp-tools.ts';
import type { CodeSource, PolicySource } from '../sources.ts';
import { accessRequestNote, type PolicyHooks } from './policy-hooks.ts';
import {
  analysisFailed,
  type Moment,
  misreadRefusal,
  type SessionGate,
  type Verdict,
} from './session-gate.ts';
import { analyzeByShape } from './shape-cache.ts';
import { type TracedTouch, tablesTouched, withTraced } from './statement-touched.ts';
import { CodeGuard } from './stored-code.ts';

/**
 * The masks of one text's results, with the masking they were planned under (its key and value scan)
 * and the catalog lineage read (see plan-basis.ts).
 */
export type MysqlTextMasking = TextMasks & {
  readonly settings: SessionMasking;
  readonly catalog: Catalog | undefined;
};

/** The MySQL gate: the common verbs, and what only MySQL asks. */
export interface MysqlGate extends SessionGate<MysqlTextMasking> {
  /** The audit description of one prepared statement's text. */
  describeOne(sql: string): QueryText;
  /** The client files the text's LOAD DATA LOCAL statements name, in order. */
  localInfiles(sql: string): string[];
}

const UNREADABLE: QueryText = Object.freeze({ statement: null, fingerprint: null });

/**
 * One session's gate for MySQL, as PostgresGate is for PostgreSQL: the same decide() over facts from
 * the MySQL analyser, then the masks of its results. It follows what the session's statements change
 * in how later ones read: sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES) and SQL PREPAREd statements.
 * Only allowed text changes that state, since refused text never reaches the server.
 */
export function createMysqlGate(options: {
  policy: PolicySource;
  identity: Identity;
  database: string;
  /** `@@SESSION.sql_mode` when the session started; '' or unknown text reads as the server default. */
  sqlMode: string | null;
  /** The server's stored code: calls, triggers and views are judged by what their code does. */
  code: CodeSource;
  /** The masking in force for the identity now; undefined when it sees clear values. */
  masking?: () => SessionMasking | undefined;
  /** The tables masking traces columns to; undefined: every result is masked whole. */
  catalog?: () => Catalog | undefined;
  /** Approved shapes for unknown-shape rules, and where dryRun hits are logged. */
  hooks?: PolicyHooks;
  /** Trace output columns for the audit also when this identity sees them in clear (audit.columnLineage). */
  columnLineage?: boolean;
  /** The MCP tool whose call the session is, from the connection's origin (in-process-channel.ts). */
  mcpTool?: McpTool;
}): MysqlGate {
  const { policy } = options;
  const code = new CodeGuard(
    options.identity,
    options.database,
    options.code,
    options.hooks,
    options.mcpTool,
  );
  let state: MysqlSessionState = initialMysqlSession(
    options.sqlMode === null ? null : parseSqlMode(options.sqlMode),
  );

  /**
   * analyzeMysql, shared also by the text's shape (its audit normalisation read under the same
   * sql_mode) when the analysis cannot depend on a literal; see shape-cache.ts.
   */
  const analyze = (sql: string, shape: string | null) => {
    const mode = state.sqlMode;
    return analyzeByShape(
      mode && shape ? `mysql\u0000${sqlModeKey(mode)}${shape}` : undefined,
      () => analyzeMysql(sql, { sqlMode: mode }),
      sessionNeutral,
    );
  };

  /** The masks of a text's results, planned in the state before it runs. */
  /** Why masking refuses what the statement does to the schema or through stored code (masked-data-moves.ts). */
  const movesMaskedData = (reached: StatementFacts, settings: SessionMasking): string | undefined =>
    maskedDataMove(reached, {
      maybeMasked: maybeMaskedAmong(() => {
        const catalog = options.catalog?.();
        return catalog && maskedTables(catalog, settings).map((table) => table.name);
      }),
      pureFunctions: MYSQL_PURE_FUNCTIONS,
      // Lineage does not trace CREATE TABLE ... SELECT into the new table's columns.
      ctasTraced: false,
    });

  const masksOf = (sql: string): MysqlTextMasking | undefined => {
    const settings = options.masking?.();
    if (!settings) return undefined;
    const catalog = options.catalog?.();
    // Masked only since a policy reload, the session has no catalog: every result is masked whole.
    if (!catalog)
      return {
        settings,
        catalog,
        results: [],
        described: [],
        exemptions: [],
        withholdsServerText: true,
      };
    return { settings, catalog, ...resultMasks(mysqlOutputLineage(sql, catalog, state), catalog, settings) };
  };

  // An untraceable text is kept as no statements traced, which the record gives as unknown alike.
  const byShape = new Lru<string, readonly TracedTouch[]>(SHAPES_TRACED);
  /**
   * For an identity that sees clear values, the source columns of each statement's output, for its
   * audit record (clearTouch), traced in the state before the text runs and kept by shape where no
   * literal or session variable can change them; undefined when lineage cannot read the text or has
   * no catalog, which the record then gives as unknown (withTraced).
   */
  const clearColumns = (sql: string, shape: string | null): readonly TracedTouch[] | undefined => {
    const catalog = options.catalog?.();
    if (!catalog) return undefined;
    const key = state.sqlMode && shape && shapeTraceable(shape) ? traceKey(state, shape) : undefined;
    const hit = key === undefined ? undefined : byShape.get(key);
    if (hit) return hit;
    let traced: readonly TracedTouch[] | undefined;
    try {
      const lineage = mysqlOutputLineage(sql, catalog, state);
      traced = lineage.parseError ? undefined : analysedReads(lineage.statements.map(clearTouch));
    } catch {
      // Only the audit needs it: a tracing gap is recorded as unknown, not turned into a refusal.
      traced = undefined;
    }
    if (key !== undefined) byShape.set(key, traced ?? NONE_TRACED);
    return traced;
  };

  return {
    describe(sql) {
      return describeStatements(sql, state.sqlMode);
    },
    describeOne(sql) {
      return describeStatements(sql, state.sqlMode)[0] ?? { statement: '', fingerprint: null };
    },
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
    check(sql, texts, moment: Moment): Verdict<MysqlTextMasking> {
      const described = texts ?? describeStatements(sql, state.sqlMode);
      const shape = shapeOf(described);
      let masking = masksOf(sql);
      const current = policy();
      if (current) {
        const hold = code.before(moment);
        if (hold) return hold;
      }
      let verdict: Verdict<never>;
      let reached: StatementFacts | undefined;
      try {
        // Refused with or without a policy: the analysis, the masking and the audit would all misread what follows.
        const analysed = analyze(sql, shape);
        const misread = analysed.findings.find(
          (f) => f.kind === 'unknown-statement' && changesReading(f.detail),
        )?.detail;
        if (misread) return misreadRefusal(misread);
        const facts = resolveMysqlExecutes(analysed, state);
        if (current) ({ verdict, reached } = code.judge(facts, current, moment, () => textShape(described)));
        else verdict = { outcome: 'allow', notes: [], warnings: [], changesCode: false };
        // Without a policy nothing was judged: the audit says nothing of what the text touched.
        if (current && verdict.outcome === 'allow') {
          const tables = tablesTouched(facts);
          // A masked identity's columns come with its masks; a text they could not trace names tables only.
          const touched = masking
            ? masking.touched
              ? withTraced(tables, analysedReads(masking.touched))
              : tables
            : options.columnLineage
              ? withTraced(tables, clearColumns(sql, shape))
              : tables;
          verdict = { ...verdict, touched };
        }
        if (verdict.outcome === 'allow') state = applyMysqlSessionEffects(state, facts);
      } catch (error) {
        return analysisFailed('statement', error);
      }
      if (verdict.outcome === 'refuse' && verdict.held?.facts) {
        // A held statement: the columns masked for this identity that it touches, for its approver.
        const settings = options.masking?.();
        const catalog = options.catalog?.();
        const touched =
          settings &&
          catalog &&
          touchedSensitiveColumns(
            verdict.held.facts,
            catalog,
            (schema, table, column) => settings.columnMask(schema, table, column) !== undefined,
            true,
          );
        return touched ? { ...verdict, held: { ...verdict.held, sensitiveColumns: touched } } : verdict;
      }
      if (verdict.outcome !== 'allow' || !masking) return verdict;
      const moved = !masking.refusal && reached && movesMaskedData(reached, masking.settings);
      if (moved) masking = { ...masking, refusal: moved };
      if (masking.refusal) {
        const request =
          masking.needs && options.hooks?.maskingRefused?.(options.identity, options.database, masking.needs);
        return {
          outcome: 'refuse',
          cause: 'masking',
          reason: `MaskingPolicy: ${masking.refusal}${request ? ` (access request ${request})` : ''}`,
          message: `Gatehouse masking refuses the statement: ${masking.refusal}, which would reveal masked values; the MaskingPolicy does not allow predicates over masked columns${accessRequestNote(request || undefined)}`,
        };
      }
      return { ...verdict, masking };
    },
    inForce(masking, outdated) {
      return planInForce(masking, options.catalog?.(), options.masking?.(), outdated);
    },
    settle() {
      code.settle();
    },
    reset() {
      // COM_RESET_CONNECTION restores the global sql_mode, which the proxy has not read: unknown.
      state = initialMysqlSession(null);
    },
  };
}

/** Shapes whose clear-identity lineage a session keeps (its catalog is its own, loaded at login). */
const SHAPES_TRACED = 256;
const NONE_TRACED: readonly TracedTouch[] = Object.freeze([]);

/**
 * Whether the source columns of a text's output are the same for every text of its shape, for the
 * audit of an identity that sees clear values: one SELECT (or WITH) that reads no user variable and
 * no HANDLER, whose lineage no literal changes (a literal is never a column). Masking never uses
 * this: it traces every text.
 */
function shapeTraceable(shape: string): boolean {
  return (
    /^\s*(SELECT|WITH)\b/i.test(shape) &&
    !shape.includes(';') &&
    !shape.includes('@') &&
    !/\bHANDLER\b/i.test(shape)
  );
}

/** The state a traceable shape's lineage depends on besides the catalog: sql_mode and the default database. */
function traceKey(state: MysqlSessionState, shape: string): string {
  return `${sqlModeKey(state.sqlMode!)}\u0000${state.database ?? ''}\u0000${shape}`;
}

/**
 * The traced columns with the analysis's tables read: MySQL lineage counts an INSERT's target among
 * the relations it reads (it resolves the target's columns there), and expands no more views than the
 * analysis does (the MySQL catalog leaves them out), so the analysis names the reads better.
 */
function analysedReads(traced: readonly TracedTouch[] | undefined): readonly TracedTouch[] | undefined {
  return traced?.map((t) => ({ ...t, tablesRead: [] }));
}

/** Shared by shape beyond the common rule: nothing that changes the session or reaches outside it. */
function sessionNeutral(facts: MysqlStatementFacts): boolean {
  return (
    facts.sideChannels.length === 0 &&
    facts.sqlModeAfter === undefined &&
    facts.userVariables.length === 0 &&
    facts.handlers.length === 0
  );
}

/** The shape of a text: its statements' normalisations, when every one could be read. */
function shapeOf(texts: readonly QueryText[]): string | null {
  if (texts.some((t) => t.statement === null)) return null;
  return texts.map((t) => t.statement).join(';\n');
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
