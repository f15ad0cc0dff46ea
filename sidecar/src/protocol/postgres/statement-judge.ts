import { heldStatement, releasedRules } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import type { StatementTouched } from '../../audit/events.ts';
import type { TextMasking } from '../../policy/gates/postgres-masking.ts';
import type { Moment, Refused, RowsMeasured } from '../../policy/gates/session-gate.ts';
import { statementTouched } from '../../policy/gates/statement-touched.ts';
import { describeQuery, type QueryText } from '../../sql/normalize.ts';
import { pgTextShape } from '../../sql/statement-shape.ts';
import { noticeResponse } from './backend-writer.ts';
import type { PreparedText, Refusal } from './exchange.ts';
import { nameRefusal, pgRefusal } from './refusals.ts';
import { type SqlNameEffect, sqlNameEffects } from './session-names.ts';
import type { SessionState } from './session-state.ts';

/** What the policy says of one text. */
export interface Verdict {
  readonly refusal?: Refusal;
  /** Refused, but an approval can release it: what to hold (the refusal stands when it cannot be held). */
  readonly held?: HeldStatement;
  /** The statement names a routine the catalog does not know: judge it again after a refresh. */
  readonly refreshCatalog?: boolean;
  readonly notes?: readonly string[];
  readonly notice?: Buffer;
  readonly masking?: TextMasking;
  readonly nameEffects?: readonly (SqlNameEffect | undefined)[];
  readonly rows?: RowsMeasured;
  /** Per statement of the text, what it touches, for its audit record (undefined: not analysed). */
  readonly touched?: readonly (StatementTouched | undefined)[];
}

/**
 * What the policy in force says of the texts a session's client sends: the gate's verdict worded for
 * the wire (a refusal, notes, a notice, how results are masked), the names a text makes, and the
 * refusal every statement gets while the audit log cannot be written.
 */
export class StatementJudge {
  private readonly state: SessionState;

  constructor(state: SessionState) {
    this.state = state;
  }

  /** The refusal every statement gets while the audit log fails closed. */
  auditRefusal(): Refusal | undefined {
    const { audit, config } = this.state.deps;
    if (audit.healthy || !config.audit.failClosed) return undefined;
    return this.auditUnavailable();
  }

  /** The refusal of a statement while the audit log cannot be written, or whose record was lost. */
  auditUnavailable(): Refusal {
    const { audit } = this.state.deps;
    return {
      reason: 'audit-unavailable',
      fields: {
        severity: 'ERROR',
        code: '58030',
        message: 'Gatehouse refused the statement: the audit log cannot be written',
        detail: audit.failure ?? 'audit sink failed',
        hint: 'Statements are refused until the audit log can be written again; ask the operator of this proxy.',
      },
    };
  }

  /**
   * What the policy in force says of `sql` for this identity: a refusal, or notes, a notice and how
   * its results are masked.
   */
  verdict(sql: string, described?: QueryText, released?: ReadonlySet<string>): Verdict {
    // Names come first: a PREPARE or DECLARE of a name in use must not reach the analyses, which
    // would take the new definition while the server keeps the old.
    const nameEffects = sqlNameEffects(sql);
    const conflict = this.state.names.sqlConflict(nameEffects);
    if (conflict) return { refusal: nameRefusal(conflict) };
    const verdict = this.judgeText(sql, described, released);
    if (verdict.refusal || nameEffects.length === 0) return verdict;
    this.state.names.admitSql(nameEffects);
    return { ...verdict, nameEffects };
  }

  /**
   * Before an Execute of a prepared statement whose masking was planned under another catalog or
   * masking than the ones in force (a view redefined since, by another session): its text judged
   * again, whose masking then replaces the kept one, or whose refusal refuses the Execute;
   * `refreshCatalog` when DDL through the proxy has outdated the catalog, which is reloaded first.
   * Likewise for a statement parsed while this identity saw clear values that a policy reload has
   * masked since. Undefined when the kept plan is in force: the common case costs two compares.
   */
  replan(text: PreparedText): Verdict | undefined {
    if (text.sql === undefined) return undefined;
    const masking = text.masking;
    const gate = this.state.gate;
    // Parsed while this identity saw clear values: planned only once a policy reload masks it.
    if (!masking ? gate.settings() === undefined : gate.inForce(masking, this.state.deps.catalog.outdated))
      return undefined;
    // Judged as at Parse: a statement prepared as an approval released it is judged so again.
    const released = text.approval && releasedRules(text.approval.held);
    const verdict = this.judgeText(text.sql, text, released);
    if (verdict.refusal || verdict.refreshCatalog) return verdict;
    text.masking = verdict.masking;
    text.touched = verdict.touched?.[0];
    return verdict;
  }

  private judgeText(sql: string, described?: QueryText, released?: ReadonlySet<string>): Verdict {
    const verdict = this.state.gate.check(
      sql,
      described === undefined ? undefined : [described],
      released ? { ...this.moment(), released } : this.moment(),
    );
    if (verdict.outcome === 'refresh-catalog') return { refreshCatalog: true };
    if (verdict.outcome === 'refuse') {
      if (verdict.cause === 'masking') this.state.scrubbing = true;
      this.logRefusal(verdict);
      // Only a refusal an approval could lift is described for the approver (once more: cached).
      // The shape spans every statement of the text: an approved shape of its first must not cover more.
      const shape =
        verdict.held && released === undefined
          ? pgTextShape(described ? [described] : describeQuery(sql))
          : undefined;
      const held =
        shape !== undefined
          ? heldStatement(verdict, {
              identity: this.state.context.identity,
              database: this.state.context.database,
              sql,
              fingerprint: shape?.fingerprint ?? null,
              shape: shape?.shape ?? null,
            })
          : undefined;
      return { refusal: pgRefusal(verdict), ...(held && { held }) };
    }
    this.state.scrubbing = verdict.masking !== undefined;
    if (verdict.changesCode) this.state.codeChanged = true;
    return {
      ...(verdict.notes.length > 0 && { notes: verdict.notes }),
      ...(verdict.rows && { rows: verdict.rows }),
      ...(verdict.warnings.length > 0 && {
        notice: noticeResponse({ severity: 'WARNING', code: '01000', message: verdict.warnings.join('\n') }),
      }),
      ...(verdict.masking && { masking: verdict.masking }),
      ...touchedField(verdict.touched, verdict.masking),
    };
  }

  /** Where the session stands for the gate: DDL it sent is settled only once committed and answered. */
  moment(): Moment {
    return {
      idle: this.state.txStatus === 'I' && !this.state.codeChanged,
      outdated: this.state.deps.catalog.outdated,
      refreshed: this.state.catalogRefreshed,
    };
  }

  logRefusal(refused: Refused): void {
    if (refused.failure)
      this.state.logger.error({ err: refused.failure.error }, `${refused.failure.stage} analysis failed`);
    else if (refused.cause === 'server-reading')
      this.state.logger.info(
        { reason: refused.reason },
        'statement refused: the server may read it differently',
      );
  }
}

/** Per statement, the analysis's tables joined with what masking traced of it (both cached by shape). */
function touchedField(
  analysed: readonly StatementTouched[] | undefined,
  masking: TextMasking | undefined,
): { touched?: readonly (StatementTouched | undefined)[] } {
  if (analysed === undefined) return {};
  const count = Math.max(analysed.length, masking?.plans.length ?? 0);
  const touched = Array.from({ length: count }, (_, i) =>
    statementTouched(analysed[i], masking?.plans[i]?.traced),
  );
  return touched.some((t) => t !== undefined) ? { touched } : {};
}
