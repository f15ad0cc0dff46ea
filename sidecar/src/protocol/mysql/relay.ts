import type { Logger } from 'pino';
import type { ApprovalBook } from '../../approvals/approval-book.ts';
import { SessionHolds } from '../../approvals/session-holds.ts';
import type { AuditSink, SessionContext, StatementEvent } from '../../audit/events.ts';
import {
  recordSessionEnd,
  recordStatement,
  recordStatementStart,
  type StatementOutcome,
} from '../../audit/record-statement.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { SessionMetrics } from '../../metrics.ts';
import type { RowBudget } from '../../policy/guardrails/row-limits.ts';
import type { MaskingSettingsCache } from '../../policy/masking/masking-settings-cache.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { BatchedWrite } from '../batched-write.ts';
import { type FatalCause, type RelayProtocol, SessionCore } from '../session-core.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { CommandHolds } from './command-holds.ts';
import { AUDIT_UNAVAILABLE } from './command-refusals.ts';
import { CommandGovernor } from './commands.ts';
import { Command, MysqlError, type MysqlErrorKind, ServerStatus } from './constants.ts';
import { MysqlExchange } from './exchange.ts';
import type { Established } from './handshake.ts';
import type { MysqlImpactSession } from './held-impact.ts';
import { proxyBound, proxyCommand } from './impact-link.ts';
import type { SessionRegistry } from './kill.ts';
import { packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import { type Measurement, PreparedStatements, type RowsToMeasure } from './pending.ts';
import { RowCounting } from './row-counting.ts';
import { errPacket } from './server-packets.ts';

/** What the running session needs of the proxy. */
export interface RelayDeps {
  readonly config: ProxyConfig;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly metrics: SessionMetrics;
  readonly draining: () => boolean;
  readonly sessions: SessionRegistry;
  readonly policy: PolicySource;
  readonly code: MysqlCodeCatalogCache;
  /** Rows each identity changed over the last minute, for maxAffectedRowsPerMinute (one per proxy). */
  readonly rowBudget: RowBudget;
  /** Statements held for approval wait here for their decisions (one per proxy). */
  readonly approvals: ApprovalBook;
}

/**
 * A logged-in MySQL session from its first command to its close: the protocol adapter of the
 * session core (session-core.ts: sockets, batched writes, backpressure, the close), and the glue
 * between command governance (commands.ts), the exchange of owed answers (exchange.ts), row-limit
 * counting (row-counting.ts), holding the client's commands (command-holds.ts) and the audit record
 * each statement waits for.
 */
export class MysqlRelay implements RelayProtocol {
  readonly core: SessionCore;
  private readonly deps: RelayDeps;
  private readonly logger: Logger;
  private readonly context: SessionContext;
  private readonly established: Established;
  /** Runs once the session has ended, after its last audit record. */
  private readonly onEnded: () => void;
  /** A statement waiting for approval. */
  private readonly holds: SessionHolds;
  /** The masking in force for the identity. */
  private readonly masking: MaskingSettingsCache<SessionMasking>;
  /** When the client's commands stop and read on. */
  private readonly held: CommandHolds;
  private readonly scanner: PacketScanner;
  private readonly startedAt = Date.now();
  private statementCount = 0;
  /** Counts what statements under row limits change. */
  private readonly counting: RowCounting;
  private readonly prepared = new PreparedStatements();
  /** Decides what each client command becomes upstream. */
  private readonly commands: CommandGovernor;
  /** The answers owed, and what each server packet does to them. */
  private readonly exchange: MysqlExchange;
  /** Refusals sent between the server's chunks (none owed before them). */
  private readonly refusals = new BatchedWrite();
  /** Where a server chunk's bytes for the client go, while it is scanned. */
  private toClient: (bytes: Buffer) => void = () => {};
  /** Who waits for the server to owe nothing (a measurement of the proxy's own). */
  private quiet: (() => void)[] = [];

  constructor(established: Established, context: SessionContext, deps: RelayDeps, onEnded: () => void) {
    this.established = established;
    this.logger = established.logger;
    this.masking = established.masking;
    this.context = context;
    this.deps = deps;
    this.onEnded = onEnded;
    this.core = new SessionCore(
      {
        client: established.client,
        server: established.upstream,
        metrics: deps.metrics,
        logger: this.logger,
      },
      this,
    );
    this.scanner = new PacketScanner(64 * 1024 * 1024);
    const record = (
      via: 'text' | 'prepared',
      started: number,
      text: QueryText,
      outcome: StatementEvent['outcome'],
      extra: StatementOutcome,
    ) => this.record(via, started, text, outcome, extra);
    this.counting = new RowCounting(
      {
        owe: (hooks) => this.exchange.owe('ROW LIMIT', hooks),
        send: (bytes) => {
          this.core.toServer.add(bytes);
          this.core.toServer.flush();
        },
        // Answers are decided by the counts, in a server chunk: they go in order with its bytes.
        answer: (bytes) => this.toClient(bytes),
        record,
        fatal: (refusal, seq) => this.fatalError(refusal.kind, refusal.message, seq, 'row-limit'),
        hold: () => this.held.hold(),
        resume: () => this.held.resumeWhenFree(),
        status: () => this.exchange.status,
      },
      {
        code: deps.code,
        database: deps.config.upstream.database,
        rowBudget: deps.rowBudget,
        subject: established.identity.subject,
        mariadb: established.mariadb,
        logger: this.logger,
      },
    );
    this.exchange = new MysqlExchange(
      {
        record,
        fatal: (kind, message, reason) => this.fatalError(kind, message, 0, reason),
        serverEnding: () => {
          this.core.endReason = 'upstream';
        },
        uploadStarted: () => this.commands.uploadStarted(),
        completed: (head, end) => {
          if (this.counting.waitingForQuiet && !this.exchange.answersOwed) this.held.resumeWhenFree();
          if (!this.exchange.answersOwed) for (const wake of this.quiet.splice(0)) wake();
          if (head.resets && end?.ok) this.afterReset();
          if (head.changesCode) this.deps.code.invalidate();
        },
        settled: () => {
          if (this.deps.draining() && this.idle) setImmediate(() => this.core.terminate('shutdown'));
        },
        masking: () => this.maskingNow(),
      },
      {
        counting: this.counting,
        prepared: this.prepared,
        deprecateEof: established.deprecateEof,
        reportsMasking: established.reportsMasking,
        status: established.status,
        logger: this.logger,
      },
    );
    this.holds = new SessionHolds(deps.approvals, this.logger);
    // A session that ends while a statement waits withdraws its request.
    this.core.whenClosed(() => this.holds.cancel());
    this.held = new CommandHolds({
      core: this.core,
      holds: this.holds,
      counting: this.counting,
      handle: (frame, payload, lastSeq) => this.commands.onCommand(frame, payload, lastSeq),
      refreshCatalog: () => deps.code.refresh(this.commands.takeUnknownRoutines()),
      impactSession: () => this.impactSession(),
      maxCommandBytes: deps.config.limits.maxMessageBytes,
    });
    this.commands = new CommandGovernor(
      {
        status: () => this.exchange.status,
        catalogRefreshed: () => this.held.catalogRefreshed,
        masking: () => this.maskingNow(),
        expect: (shape, entry) => this.exchange.expect(shape, entry),
        refuse: (refusal, texts, via, seq, started) =>
          this.exchange.refuse(refusal, texts, via, seq, started),
        holdForAudit: (frame, via, texts, seq, started) => this.holdForAudit(frame, via, texts, seq, started),
        sendMeasured: (m, around, frame, via, texts, seq, started) =>
          this.sendMeasured(m, around, frame, via, texts, seq, started),
        planRows: (rows) => this.planRows(rows),
        hold: () => this.held.hold(),
        measureHeld: (sql, held, bound) => this.held.measureHeld(sql, held, bound),
        quit: () => this.core.clientQuit(),
      },
      deps,
      {
        gate: established.gate,
        identity: established.identity,
        logger: this.logger,
        holds: this.holds,
        counting: this.counting,
        prepared: this.prepared,
      },
    );
  }

  /** True while no command is in flight and no transaction is open. */
  get idle(): boolean {
    return this.exchange.empty && (this.exchange.status & ServerStatus.IN_TRANS) === 0;
  }

  /** Withdraws the request a statement of this session waits on; whether one waited. */
  withdrawHeld(): boolean {
    if (!this.holds.waiting) return false;
    this.logger.info('the statement waiting for approval was killed');
    this.holds.cancel();
    return true;
  }

  /** Starts relaying; the leftovers of the login are the first bytes of each side. */
  start(): void {
    const { tls, serverLeftover, clientLeftover } = this.established;
    this.deps.audit.record({ type: 'connection.start', context: this.context, tls });
    this.logger.info({ database: this.deps.config.upstream.database, tls }, 'session started');
    this.core.start(serverLeftover, clientLeftover);
  }

  /** Ends the session with an error of the proxy's own. */
  fatalError(kind: MysqlErrorKind, message: string, seq: number, reason?: string): void {
    this.core.endWith(errPacket(kind, message, seq), reason);
  }

  clientChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.held.push(chunk, out);
  }

  afterClientChunk(): void {
    this.held.afterChunk();
    this.flushRefusals();
  }

  holdingClient(): boolean {
    return this.held.holding;
  }

  serverChunk(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.toClient = out;
    this.scanner.scan(chunk, this.exchange.classify, this.exchange.handle, out);
  }

  /** Commands held for their audit records went (or were refused): owed answers can follow. */
  auditReleased(): void {
    this.flushRefusals();
  }

  fatal(cause: FatalCause, error?: unknown): Buffer {
    switch (cause) {
      case 'client-protocol':
        return errPacket(
          MysqlError.MALFORMED,
          `Gatehouse closed the connection: ${error instanceof Error ? error.message : String(error)}`,
          1,
        );
      case 'server-protocol':
        return errPacket(MysqlError.MALFORMED, 'Gatehouse received invalid data from the database', 0);
      case 'shutdown':
        return errPacket(MysqlError.SHUTDOWN, 'Gatehouse is shutting down', 0);
    }
  }

  quit(): Buffer {
    return packet(Buffer.from([Command.QUIT]), 0);
  }

  /** The session's last audit record. */
  ended(reason: string): void {
    this.onEnded();
    recordSessionEnd(
      { audit: this.deps.audit, metrics: this.deps.metrics, logger: this.logger },
      this.context,
      this.startedAt,
      this.statementCount,
      reason,
    );
  }

  /** Sends refusals that nothing is waiting before any more. */
  private flushRefusals(): void {
    if (this.exchange.takeRefusals(this.refusals.add)) this.refusals.flush(this.core.client);
  }

  /**
   * `frame`, held until the `statement.start` records of its statements are written. When they are
   * lost (failClosed), the command never reaches the server: the answer the last queued entry
   * expected from it becomes the refusal.
   */
  private holdForAudit(
    frame: Buffer,
    via: 'text' | 'prepared',
    texts: readonly QueryText[],
    answerSeq: number,
    started: number,
    measure?: Measurement,
  ): Buffer {
    const expected = this.exchange.last();
    const { audit, config } = this.deps;
    const written = recordStatementStart(audit, config.audit.failClosed, this.context, via, texts);
    return this.core.toServer.hold(frame, written, () => {
      if (expected) this.exchange.refuseInstead(expected, AUDIT_UNAVAILABLE, texts, via, answerSeq, started);
      if (measure) {
        // The proxy's own commands around it did not go either.
        this.exchange.drop(measure.internals);
        this.counting.dropped();
      }
      return undefined;
    });
  }

  private impactSession(): MysqlImpactSession {
    const send = (bytes: Buffer) => {
      this.core.toServer.add(bytes);
      this.core.toServer.flush();
    };
    const bound = proxyBound(this.exchange, send);
    return {
      whenQuiet: () =>
        this.exchange.answersOwed ? new Promise((resolve) => this.quiet.push(resolve)) : Promise.resolve(),
      run: proxyCommand(this.exchange, send),
      runBound: (sql, parameters) => {
        // The server's last prepared statement is the proxy's now: MariaDB's execution of id -1 no
        // longer runs what the client prepared last, and is refused as an unknown statement.
        this.prepared.last = undefined;
        return bound(sql, parameters);
      },
      inTransaction: () => (this.exchange.status & ServerStatus.IN_TRANS) !== 0,
      catalog: this.deps.code.tables(),
      database: this.deps.config.upstream.database,
      mariadb: this.established.mariadb,
      countersMoved: () => this.counting.forget(),
      lost: () =>
        this.fatalError(
          MysqlError.TABLE_ACCESS_DENIED,
          'Gatehouse could not measure a held statement safely and closed the connection, which rolls back its transaction',
          1,
          'upstream',
        ),
      closed: () => this.core.closed,
    };
  }

  /** How a statement under row limits runs (RowCounting.plan), given the answers owed before it. */
  private planRows(rows: RowsToMeasure): ReturnType<RowCounting['plan']> {
    return this.counting.plan(rows, this.exchange.answersOwed, this.held.catalogRefreshed);
  }

  /** The client's statement between the proxy's commands, all held for its audit record together. */
  private sendMeasured(
    m: Measurement,
    around: { prefix: Buffer; suffix: Buffer },
    frame: Buffer,
    via: 'text' | 'prepared',
    texts: readonly QueryText[],
    answerSeq: number,
    started: number,
  ): Buffer {
    const whole = Buffer.concat([around.prefix, frame, around.suffix]);
    const bytes = this.holdForAudit(whole, via, texts, answerSeq, started, m);
    this.counting.sent(m);
    return bytes;
  }

  /** The masking in force now: policy reloads and exemption expiries apply to the next command. */
  private maskingNow(): SessionMasking | undefined {
    return this.masking.get(this.deps.policy());
  }

  /** COM_RESET_CONNECTION dropped user variables and prepared statements: tag the session again. */
  private afterReset(): void {
    this.prepared.clear();
    this.established.gate.reset();
    for (const sql of this.established.setupQueries) {
      this.exchange.owe('SETUP', {});
      this.core.server.write(packet(Buffer.from(`\x03${sql}`, 'utf8'), 0));
    }
  }

  private record(
    via: 'text' | 'prepared',
    started: number,
    text: QueryText,
    outcome: StatementEvent['outcome'],
    extra: StatementOutcome,
  ): void {
    this.statementCount++;
    recordStatement(this.deps, this.context, via, started, text, outcome, extra);
  }
}
