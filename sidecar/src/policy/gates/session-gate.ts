import type { GuardrailRuleKind } from '../../../../crds/guardrail.ts';
import type { StatementTouched } from '../../audit/events.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { ApprovalDemand, Decision } from '../guardrails/decide.ts';
import type { RowLimit } from '../guardrails/row-limits.ts';

/**
 * What a session asks of the policy, the same for both protocols: the session never sees the parser,
 * the guardrails or the masking planner, only this. `Masking` is the protocol's plan for a text's
 * results (PostgreSQL plans per statement over its lineage, MySQL per result set over its own).
 */
export interface SessionGate<Masking> {
  /** The audit descriptions of a text's statements, read as the server will read them. */
  describe(sql: string): readonly QueryText[];
  /**
   * The verdict on one text (a Query or Parse; a COM_QUERY or COM_STMT_PREPARE): its guardrails, then
   * its masking. `texts` are its audit descriptions when the session has them already; texts whose
   * descriptions match share analyses where no literal can change them. What an allowed text changes
   * in the session (prepared statements, sql_mode, temporary views) is remembered for the next.
   */
  check(sql: string, texts: readonly QueryText[] | undefined, moment: Moment): Verdict<Masking>;
  /**
   * Whether masking check planned earlier for a text that runs again (a prepared statement's) may
   * still be used: the catalog and masking in force are the ones it was planned under, and `outdated`
   * (DDL through the proxy since the catalog in force started loading) is false. When not, the text
   * is checked again before any row of it is relayed (plan-basis.ts).
   */
  inForce(masking: Masking, outdated: boolean): boolean;
  /** No transaction is open and the catalog shows the session's DDL: forget what was kept of it. */
  settle(): void;
  /** The connection was reset: forget what the session's statements had changed. */
  reset(): void;
}

/** Where the session stands when it asks: whether the gate may forget the DDL it kept, or must wait. */
export interface Moment {
  /** No transaction is open and no DDL sent is still unanswered: the session's DDL is committed. */
  readonly idle: boolean;
  /** The catalog of stored code may not show the latest DDL (this session's or another's). */
  readonly outdated: boolean;
  /** This text was held for a catalog reload already: it is judged now, whatever the catalog says. */
  readonly refreshed: boolean;
  /** requireApproval rules an approval released for this text (`guardrail/rule`, see approvalKey). */
  readonly released?: ReadonlySet<string>;
}

/** What a gate says of one text; each protocol words a refusal as its own error in a few lines. */
export type Verdict<Masking> = Allowed<Masking> | Refused | RefreshCatalog;

export interface Allowed<Masking> {
  readonly outcome: 'allow';
  /** For the audit record: dry-run findings, warnings and the stored code the text runs. */
  readonly notes: readonly string[];
  /** Guardrail warnings for the client (allow-with-warnings); empty when none. */
  readonly warnings: readonly string[];
  /** Row limits it runs under: the protocol counts the rows it changes. */
  readonly rows?: RowsMeasured;
  /** It changes stored code: the catalog is reloaded once it is done. */
  readonly changesCode: boolean;
  /** How its results are masked; undefined when this identity sees clear values. */
  readonly masking?: Masking;
  /**
   * Per top-level statement, the tables the guardrails' analysis found it reads and writes, for its
   * audit record (statement-touched.ts); absent when no policy analysed it.
   */
  readonly touched?: readonly StatementTouched[];
}

/** The row limits of a statement, with what it is called in their messages and its judged facts. */
export interface RowsMeasured {
  readonly limits: readonly RowLimit[];
  readonly what: string;
  /** The facts it was judged by, with its stored code (what row measurement reads). */
  readonly facts: StatementFacts;
}

export interface Refused {
  readonly outcome: 'refuse';
  /**
   * guardrail: a Guardrail or DatabaseAccess refused it; server-reading: the server may read it
   * differently from the analysis; analysis-failed: it could not be analysed; masking: its results
   * cannot be masked as the MaskingPolicy asks.
   */
  readonly cause: 'guardrail' | 'server-reading' | 'analysis-failed' | 'masking';
  /** For the audit record (names policies and rules, never values). */
  readonly reason: string;
  /** For the client, without an error number or SQLSTATE. */
  readonly message: string;
  /** A guardrail refusal: which kind of policy refused, and whether approval would let it run. */
  readonly policyKind?: 'Guardrail' | 'DatabaseAccess';
  readonly approval?: boolean;
  /**
   * When approval would let it run: every rule that holds it, and what the approver and the
   * auto-approval conditions are shown of it.
   */
  readonly held?: {
    readonly demands: readonly ApprovalDemand[];
    readonly kinds: readonly GuardrailRuleKind[];
    /** The tables its statements name; undefined when some cannot be known (dynamic SQL, unknown code). */
    readonly tables: readonly string[] | undefined;
    /** Its facts with the stored code it reaches: what measuring its impact needs to know. */
    readonly facts?: StatementFacts;
    /**
     * The columns masked for the requester that it reads or writes (`schema.table.column`); undefined
     * when it cannot be told (the requester sees clear values, no catalog, facts too coarse).
     */
    readonly sensitiveColumns?: readonly string[];
  };
  /** An analysis failed: which one and why, for the proxy log (never sent to the client). */
  readonly failure?: { readonly stage: 'statement' | 'masking'; readonly error: string };
}

/** It names stored code the catalog does not know, or the catalog is outdated: reload it, then ask again. */
export interface RefreshCatalog {
  readonly outcome: 'refresh-catalog';
  readonly unknownRoutines: readonly string[];
}

/** Fail closed: a text Gatehouse cannot judge does not run. */
export function analysisFailed(stage: 'statement' | 'masking', error: unknown): Refused {
  return {
    outcome: 'refuse',
    cause: 'analysis-failed',
    reason: 'analysis-failed',
    message: 'Gatehouse could not analyse the statement, so it was not run',
    failure: { stage, error: error instanceof Error ? error.message : String(error) },
  };
}

/** The server would read the text differently from the analysis. */
export function misreadRefusal(misread: string): Refused {
  return {
    outcome: 'refuse',
    cause: 'server-reading',
    reason: `server-reading: ${misread}`,
    message: `Gatehouse refused the statement: ${misread}`,
  };
}

/** A guardrail decision as a verdict (without masking), the same rule for both protocols. */
export function guardrailVerdict(
  decision: Decision,
  reached: {
    readonly code: readonly string[];
    readonly facts: StatementFacts;
    readonly changesCode: boolean;
  },
): Allowed<never> | Refused {
  const runs = reached.code.length > 0 ? `runs ${reached.code.join(', ')}` : undefined;
  if (decision.outcome === 'refuse')
    return {
      outcome: 'refuse',
      cause: 'guardrail',
      reason: `${decision.policyKind} ${decision.guardrail || '(none)'}: ${decision.rule}${runs ? `; ${runs}` : ''}`,
      message: decision.message,
      policyKind: decision.policyKind,
      approval: decision.action === 'requireApproval',
      ...(decision.approvals && {
        held: {
          demands: decision.approvals,
          kinds: [...new Set([...reached.facts.findings.map((f) => f.kind), ...(decision.heldKinds ?? [])])],
          tables: heldTables(reached.facts),
          facts: reached.facts,
        },
      }),
    };
  const notes = decision.dryRun.map((hit) => `dry run: ${hit.guardrail}/${hit.rule} would ${hit.action}`);
  for (const hit of decision.approved ?? []) notes.push(`approved: ${hit.guardrail}/${hit.rule}`);
  // The audit record names the stored code the statement runs (functions, triggers, rules, views).
  if (runs) notes.push(runs);
  const warnings = decision.outcome === 'allow-with-warnings' ? decision.warnings : [];
  for (const warning of warnings) notes.push(`warning: ${warning.guardrail}/${warning.rule}`);
  return {
    outcome: 'allow',
    notes,
    warnings: warnings.map((w) => w.message),
    changesCode: reached.changesCode,
    ...(decision.rowLimits.length > 0 && {
      rows: { limits: decision.rowLimits, what: decision.rowsWhat ?? 'the statement', facts: reached.facts },
    }),
  };
}

/**
 * The tables a held statement names, for the approver and the `tables` condition; undefined when
 * some cannot be known: text the parser rejects, dynamic SQL, or a finding that names no tables.
 */
function heldTables(facts: StatementFacts): readonly string[] | undefined {
  if (!facts.parsed) return undefined;
  const tables = new Set([...facts.tablesRead, ...facts.tablesWritten]);
  for (const finding of facts.findings) {
    // Several statements in one text: each one's own findings name its tables.
    if (finding.kind === 'multi-statement') continue;
    if (finding.kind === 'dynamic-sql' || finding.kind === 'unknown-statement' || !finding.tables)
      return undefined;
    for (const table of finding.tables) tables.add(table);
  }
  return [...tables];
}
