import type { Logger } from 'pino';
import { PendingImpact } from '../../approvals/pending-impact.ts';
import { SessionHolds } from '../../approvals/session-holds.ts';
import { declaredWorkFields } from '../../audit/client-application.ts';
import type { SessionContext, StatementEvent } from '../../audit/events.ts';
import { recordStatement, type StatementOutcome } from '../../audit/record-statement.ts';
import type { PostgresGate } from '../../policy/gates/postgres-gate.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { type DeclaredWork, Exchange, type PortalText, type PreparedText } from './exchange.ts';
import type { SessionProbe } from './impact-probe.ts';
import type { ReportedReading } from './reported-reading.ts';
import type { SessionDeps } from './session-deps.ts';
import { SessionNames } from './session-names.ts';
import type { Established } from './startup.ts';

/** What one session knows, shared by the handling of client messages and of server answers. */
export class SessionState {
  readonly deps: SessionDeps;
  readonly logger: Logger;
  /** Replaced, never changed, when the session declares its purpose or run id (see declared-work.ts). */
  context: SessionContext;
  /** Tell the client which columns each statement masked (masking-report.ts). */
  readonly reportsMasking: boolean;
  readonly gate: PostgresGate;
  /** How the server reads text (standard_conforming_strings, client_encoding), as it last reported. */
  readonly reading: ReportedReading;
  /** What was asked of the server, and what its answers complete. */
  readonly exchange = new Exchange();
  /** What each prepared statement and portal name stands for; Bind, Describe and Execute use nothing else. */
  readonly names = new SessionNames<PreparedText, PortalText>();
  txStatus: 'I' | 'T' | 'E';
  /** Whether the identity saw masked values at its last statement: its errors and notices are scrubbed. */
  scrubbing = false;
  /** The held message is judged again once, against a catalog reloaded for it. */
  catalogRefreshed = false;
  /** A Query waiting for approval (at most one: nothing behind it is read meanwhile). */
  readonly holds: SessionHolds;
  /** A held Query whose impact is measured before its request opens (at most one, like holds). */
  readonly impact = new PendingImpact();
  /** While the proxy's own measuring queries run: the server's answers go to it, not to the client. */
  probe: SessionProbe | undefined;
  /**
   * Rows the proxy's measurements changed and rolled back inside the client's current transaction:
   * the database's statistics still count them, so row checks subtract them (reset with rowsBefore).
   */
  measuredRows = 0;
  private quiet: (() => void)[] = [];
  /** A statement judged as changing stored code was sent: the catalog is reloaded once it is done. */
  codeChanged = false;
  /**
   * Rows the current transaction had changed at its last row check: what the next check's count is
   * compared with. Only ever behind the server (it is updated as results arrive), which makes caps
   * computed from it stricter, never laxer.
   */
  rowsBefore = 0;
  statementCount = 0;

  constructor(established: Established, deps: SessionDeps, context: SessionContext) {
    this.deps = deps;
    this.logger = established.logger;
    this.context = context;
    this.reportsMasking = established.reportsMasking;
    this.gate = established.gate;
    this.holds = new SessionHolds(deps.approvals, established.logger);
    this.reading = established.reading;
    this.reading.settled = () => this.exchange.settled();
    this.txStatus = established.upstream.transactionStatus ?? 'I';
  }

  /** True while the session has no statement in flight and no open transaction. */
  get idle(): boolean {
    return this.exchange.size === 0 && this.txStatus === 'I';
  }

  /** Resolves once nothing the session sent is unanswered: the upstream is free for the proxy's own queries. */
  whenQuiet(): Promise<void> {
    if (this.exchange.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.quiet.push(resolve));
  }

  /** After each ReadyForQuery: wakes whoever waits for the upstream to be free. */
  answered(): void {
    if (this.exchange.size === 0) for (const wake of this.quiet.splice(0)) wake();
  }

  /** From a `SET gatehouse.purpose|run_id` the proxy answered: the session's records from now on carry it. */
  declareWork(work: DeclaredWork): void {
    const { [work.field]: _previous, ...rest } = this.context;
    const cleaned =
      work.field === 'purpose'
        ? declaredWorkFields(work.value, undefined)
        : declaredWorkFields(undefined, work.value);
    this.context = { ...rest, ...cleaned };
  }

  recordStatement(
    started: {
      kind: 'query' | 'execute' | 'function' | 'parse';
      started: number;
      notes?: readonly string[];
      approval?: string;
    },
    text: QueryText,
    outcome: StatementEvent['outcome'],
    extra: StatementOutcome,
  ): void {
    this.statementCount++;
    recordStatement(
      this.deps,
      this.context,
      started.kind === 'execute' || started.kind === 'parse' ? 'extended' : 'simple',
      started.started,
      text,
      outcome,
      {
        ...extra,
        reason: extra.reason ?? ('notes' in started ? started.notes?.join('; ') : undefined),
        ...('approval' in started && { approval: started.approval }),
      },
    );
  }
}
