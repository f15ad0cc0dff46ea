import type { Logger } from 'pino';
import { heldStatement } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { Identity } from '../../identity/identity.ts';
import type { MysqlGate, MysqlTextMasking } from '../../policy/gates/mysql-gate.ts';
import type { Allowed } from '../../policy/gates/session-gate.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { heldText } from './approval-holds.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import { AUDIT_UNAVAILABLE, gateRefusal } from './command-refusals.ts';
import { ServerStatus } from './constants.ts';
import type { Refusal } from './pending.ts';

/** Where the session stands for the gate. */
export interface JudgingMoment {
  /** The server status flags as the last answer left them. */
  status(): number;
  /** The text being judged is judged again, against a catalog reloaded for it. */
  catalogRefreshed(): boolean;
}

/**
 * What the policy in force says of the texts a session's client sends: the gate's verdict, a refusal
 * worded as MySQL's error (with what an approval would have to release), and the refusal every
 * statement gets while the audit log cannot be written.
 */
export class StatementJudge {
  private readonly gate: MysqlGate;
  private readonly identity: Identity;
  private readonly logger: Logger;
  private readonly deps: {
    readonly config: ProxyConfig;
    readonly audit: AuditSink;
    readonly code: MysqlCodeCatalogCache;
  };
  private readonly moment: JudgingMoment;
  /** Routines the held command named that the catalog did not know. */
  private unknownRoutines: readonly string[] = [];
  /** The last judged text changes stored code. */
  private judgedChangesCode = false;

  constructor(
    gate: MysqlGate,
    session: { identity: Identity; logger: Logger },
    deps: StatementJudge['deps'],
    moment: JudgingMoment,
  ) {
    this.gate = gate;
    this.identity = session.identity;
    this.logger = session.logger;
    this.deps = deps;
    this.moment = moment;
  }

  /** The last judged text changes stored code. */
  get changesCode(): boolean {
    return this.judgedChangesCode;
  }

  /** Routines the held command named that the catalog did not know (asked for once). */
  takeUnknownRoutines(): readonly string[] {
    const unknown = this.unknownRoutines;
    this.unknownRoutines = [];
    return unknown;
  }

  /** The gate's verdict on a text, with a refusal worded as MySQL's error; HOLD_COMMAND: reload the catalog first. */
  verdict(
    sql: string,
    texts: readonly QueryText[],
    released?: ReadonlySet<string>,
  ): (Refusal & { held?: HeldStatement }) | Allowed<MysqlTextMasking> | typeof HOLD_COMMAND {
    this.judgedChangesCode = false;
    const verdict = this.gate.check(sql, texts, {
      idle: !(this.moment.status() & ServerStatus.IN_TRANS),
      outdated: this.deps.code.outdated,
      refreshed: this.moment.catalogRefreshed(),
      ...(released && { released }),
    });
    if (verdict.outcome === 'refresh-catalog') {
      if (verdict.unknownRoutines.length > 0) this.unknownRoutines = verdict.unknownRoutines;
      return HOLD_COMMAND;
    }
    if (verdict.outcome === 'allow') {
      if (verdict.changesCode) this.judgedChangesCode = true;
      return verdict;
    }
    if (verdict.failure)
      this.logger.error({ err: verdict.failure.error }, `${verdict.failure.stage} analysis failed`);
    // The whole text is held, and the approval binds it whole: a text of several statements is
    // approved as one, never one of its statements apart from the others.
    const held =
      released === undefined
        ? heldStatement(verdict, {
            identity: this.identity,
            database: this.deps.config.upstream.database,
            sql,
            ...heldText(texts),
          })
        : undefined;
    return { ...gateRefusal(verdict), ...(held && { held }) };
  }

  /** The refusal every statement gets while the audit log fails closed. */
  auditRefusal(): Refusal | undefined {
    const { audit, config } = this.deps;
    if (audit.healthy || !config.audit.failClosed) return undefined;
    return AUDIT_UNAVAILABLE;
  }
}
