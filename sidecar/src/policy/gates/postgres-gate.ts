import type { Identity } from '../../identity/identity.ts';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { resolveExecutes } from '../../sql/analyze/assemble-facts.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import { PURE_FUNCTIONS } from '../../sql/lineage/builtins.ts';
import { columnKey } from '../../sql/lineage/trace.ts';
import { describeQuery, type QueryText } from '../../sql/normalize.ts';
import { pgTextShape, statementShape } from '../../sql/statement-shape.ts';
import { maskedDataMove, maybeMaskedAmong } from '../masking/masked-data-moves.ts';
import type { MaskingSettings } from '../masking/masking-for.ts';
import type { AccessExemptionSource } from '../masking/masking-settings-cache.ts';
import { sensitiveColumns } from '../masking/sensitive-columns.ts';
import { touchedSensitiveColumns } from '../masking/touched-columns.ts';
import type { McpTool } from '../mcp-tools.ts';
import type { CodeSource, PolicySource } from '../sources.ts';
import { accessRequestNote, type PolicyHooks } from './policy-hooks.ts';
import { type CatalogSnapshot, MaskingGate, type TextMasking } from './postgres-masking.ts';
import type { Moment, Refused, SessionGate, Verdict } from './session-gate.ts';
import { analysisFailed, misreadRefusal } from './session-gate.ts';
import { analyzeByShape } from './shape-cache.ts';
import { type TracedTouch, tablesTouched, withTraced } from './statement-touched.ts';
import { CodeGuard } from './stored-code.ts';

/** Functions whose facts depend on the value of an argument: set_config('role', ...). */
const VALUE_SENSITIVE_FUNCTIONS: ReadonlySet<string> = new Set(['set_config']);

/**
 * One PostgreSQL session's gate: the guardrails over the statement and the stored code it runs, then
 * the masking of its results (MaskingGate). It remembers what the session's SQL PREPAREs hold, so
 * that a later `EXECUTE name` is judged by the statement it runs rather than waved through as opaque.
 */
export class PostgresGate implements SessionGate<TextMasking> {
  private readonly prepared = new Map<string, StatementFacts>();
  private readonly policy: PolicySource;
  private readonly code: CodeGuard;
  private readonly masking: MaskingGate;
  private readonly misread: (sql: string) => string | undefined;
  private readonly snapshot: () => CatalogSnapshot | undefined;
  private readonly identity: Identity;
  private readonly database: string;
  private readonly hooks: PolicyHooks | undefined;
  private readonly columnLineage: boolean;

  constructor(options: {
    policy: PolicySource;
    identity: Identity;
    database: string;
    /** The stored code statements may run, for the guardrails. */
    code: CodeSource;
    /** The upstream's tables and what sampling found, for masking (shared by the proxy's sessions). */
    snapshot: () => CatalogSnapshot | undefined;
    /** Why the server would read the text differently from the analysis (its reported settings). */
    misread: (sql: string) => string | undefined;
    /** Approved shapes for unknown-shape rules, and where dryRun hits are logged. */
    hooks?: PolicyHooks;
    /** Approved requests for clear access to masked columns (the ApprovalBook). */
    access?: AccessExemptionSource;
    /** Trace output columns for the audit also when this identity sees them in clear (audit.columnLineage). */
    columnLineage?: boolean;
    /** The MCP tool whose call the session is, from the connection's origin (in-process-channel.ts). */
    mcpTool?: McpTool;
  }) {
    this.policy = options.policy;
    this.code = new CodeGuard(
      options.identity,
      options.database,
      options.code,
      options.hooks,
      options.mcpTool,
    );
    this.masking = new MaskingGate(
      options.policy,
      options.identity,
      options.database,
      options.snapshot,
      options.access,
    );
    this.misread = options.misread;
    this.snapshot = options.snapshot;
    this.identity = options.identity;
    this.database = options.database;
    this.hooks = options.hooks;
    this.columnLineage = options.columnLineage ?? false;
  }

  describe(sql: string): readonly QueryText[] {
    return describeQuery(sql);
  }

  check(sql: string, texts: readonly QueryText[] | undefined, moment: Moment): Verdict<TextMasking> {
    const misread = this.misread(sql);
    if (misread) return misreadRefusal(misread);
    // Texts that differ only in literals share analyses where no literal can change them.
    const shape = this.policy() ? statementShape(sql, texts) : undefined;
    const { verdict, reached } = this.guarded(sql, shape, moment, texts);
    if (verdict.outcome === 'refuse' && verdict.held?.facts) return this.withSensitive(verdict);
    if (verdict.outcome !== 'allow') return verdict;
    let masking: TextMasking | undefined;
    try {
      masking = this.masking.check(sql, shape);
    } catch (error) {
      return analysisFailed('masking', error);
    }
    if (!masking) return this.columnLineage ? this.withColumns(verdict, sql, shape) : verdict;
    const moved = !masking.refusal && reached && this.movesMaskedData(reached, masking.settings);
    if (moved) masking = { ...masking, refusal: moved };
    if (masking.refusal) {
      const policies = masking.settings.policies.map((name) => `"${name}"`).join(', ');
      const request =
        masking.needs && this.hooks?.maskingRefused?.(this.identity, this.database, masking.needs);
      return {
        outcome: 'refuse',
        cause: 'masking',
        reason: `MaskingPolicy ${masking.settings.policies.join(', ')}: ${masking.refusal}${request ? ` (access request ${request})` : ''}`,
        message: `Gatehouse: MaskingPolicy ${policies} refuses this statement: ${masking.refusal}${accessRequestNote(request || undefined)}`,
      };
    }
    return { ...verdict, masking };
  }

  inForce(masking: TextMasking, outdated: boolean): boolean {
    return this.masking.inForce(masking, outdated);
  }

  /**
   * An allowed verdict for an identity that sees clear values, with the source columns of each
   * statement's output for its record. Only the audit needs them: a lineage that fails is recorded as
   * unknown and never refuses the statement.
   */
  private withColumns(
    verdict: Verdict<TextMasking>,
    sql: string,
    shape: string | undefined,
  ): Verdict<TextMasking> {
    if (verdict.outcome !== 'allow' || verdict.touched === undefined) return verdict;
    let traced: readonly TracedTouch[] | undefined;
    try {
      traced = this.masking.trace(sql, shape);
    } catch {
      // Recorded as unknown (withTraced): the audit does not turn a tracing gap into a refusal.
    }
    return { ...verdict, touched: withTraced(verdict.touched, traced) };
  }

  /**
   * The guardrails alone, for a statement the session makes up (a fast-path call, judged as the
   * SELECT of its function); `shape` as statementShape gives it.
   */
  guard(
    sql: string,
    shape: string | undefined,
    moment: Moment,
    texts?: readonly QueryText[],
  ): Verdict<never> {
    return this.guarded(sql, shape, moment, texts).verdict;
  }

  /** guard, with the statement's facts and the stored code they run when it was allowed. */
  private guarded(
    sql: string,
    shape: string | undefined,
    moment: Moment,
    texts?: readonly QueryText[],
  ): { verdict: Verdict<never>; reached?: StatementFacts } {
    const policy = this.policy();
    if (!policy) return { verdict: { outcome: 'allow', notes: [], warnings: [], changesCode: false } };
    const hold = this.code.before(moment);
    if (hold) return { verdict: hold };
    let facts: StatementFacts;
    try {
      facts = resolveExecutes(
        analyzeByShape(
          shape === undefined ? undefined : `pg\u0000${shape}`,
          () => analyzeStatement(sql),
          literalIndependent,
        ),
        (name) => this.prepared.get(name),
      );
      const { verdict, reached } = this.code.judge(facts, policy, moment, () =>
        pgTextShape(texts ?? describeQuery(sql)),
      );
      if (verdict.outcome !== 'allow') return { verdict };
      // Only what was allowed can have been prepared; what was refused never reached the server.
      for (const prepared of facts.prepared) this.prepared.set(prepared.name, prepared.facts);
      for (const name of facts.deallocated) {
        if (name === '*') this.prepared.clear();
        else this.prepared.delete(name);
      }
      return { verdict: { ...verdict, touched: tablesTouched(facts) }, reached };
    } catch (error) {
      return { verdict: analysisFailed('statement', error) };
    }
  }

  /** Why masking refuses what the statement does to the schema or through stored code (masked-data-moves.ts). */
  private movesMaskedData(reached: StatementFacts, settings: MaskingSettings): string | undefined {
    return maskedDataMove(reached, {
      maybeMasked: maybeMaskedAmong(() => {
        const snapshot = this.snapshot();
        if (!snapshot) return undefined;
        // tableKey: schema NUL table.
        const { tables } = sensitiveColumns(snapshot.catalog, settings, snapshot.samples);
        return [...tables].map((key) => key.slice(key.indexOf('\u0000') + 1));
      }),
      pureFunctions: PURE_FUNCTIONS,
      ctasTraced: true,
    });
  }

  /** A held statement with the columns masked for this identity that it touches, for its approver. */
  private withSensitive(verdict: Refused): Refused {
    const settings = this.masking.settings();
    const snapshot = this.snapshot();
    const held = verdict.held;
    if (!settings || !snapshot || !held?.facts) return verdict;
    const sensitivity = sensitiveColumns(snapshot.catalog, settings, snapshot.samples);
    const touched = touchedSensitiveColumns(held.facts, snapshot.catalog, (schema, table, column) =>
      sensitivity.columns.has(columnKey({ schema, table, column })),
    );
    return touched ? { ...verdict, held: { ...held, sensitiveColumns: touched } } : verdict;
  }

  /** The masking in force for this identity now (policy reloads and exemption expiry apply at once). */
  settings(): MaskingSettings | undefined {
    return this.masking.settings();
  }

  settle(): void {
    this.code.settle();
  }

  reset(): void {
    // PostgreSQL has no reset of the connection in its protocol (DISCARD ALL is judged as a statement):
    // this is for a session that starts over on the same gate.
    this.prepared.clear();
    this.code.settle();
    this.masking.reset();
  }
}

/** Shared by shape beyond the common rule: one statement, and no function whose facts follow a literal. */
function literalIndependent(facts: StatementFacts): boolean {
  return (
    facts.statementCount === 1 &&
    !facts.functions.some((f) => VALUE_SENSITIVE_FUNCTIONS.has(f.slice(f.lastIndexOf('.') + 1).toLowerCase()))
  );
}
