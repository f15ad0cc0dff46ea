import type { Socket } from 'node:net';
import type { Logger } from 'pino';
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
import { AuditHeldWrite, MAX_HELD_BYTES } from '../audit-held-write.ts';
import { BatchedWrite } from '../batched-write.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { CommandFramer, HOLD_COMMAND } from './command-framer.ts';
import { AUDIT_UNAVAILABLE, CommandGovernor } from './commands.ts';
import { Command, MysqlError, type MysqlErrorKind, ServerStatus } from './constants.ts';
import { MysqlExchange } from './exchange.ts';
import type { Established } from './handshake.ts';
import type { SessionRegistry } from './kill.ts';
import { packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import { type Measurement, PreparedStatements, type RowsToMeasure } from './pending.ts';
import { RowCounting } from './row-counting.ts';

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
}

/** What the running session asks of the connection that owns it (its end). */
export interface SessionControl {
  readonly closed: boolean;
  /** Why the session ends, when the client's side closes next. */
  endReason: string;
  /** Answers the client with a fatal error and closes the session. */
  sendFatal(kind: MysqlErrorKind, message: string, seq: number, reason?: string): void;
  close(reason: string): void;
  terminate(reason: string): void;
}

/**
 * A logged-in session from its first command to its close: the glue between the two sockets, the
 * command governance (commands.ts), the exchange of owed answers (exchange.ts), row-limit counting
 * (row-counting.ts) and the audit record each statement waits for (AuditHeldWrite).
 */
export class MysqlRelay {
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly deps: RelayDeps;
  private readonly control: SessionControl;
  private readonly logger: Logger;
  private readonly context: SessionContext;
  private readonly established: Established;
  /** The masking in force for the identity. */
  private readonly masking: MaskingSettingsCache<SessionMasking>;
  private readonly framer: CommandFramer;
  private readonly scanner: PacketScanner;
  private readonly startedAt = Date.now();
  private statementCount = 0;
  /** The client sent COM_QUIT: the server closing its side is expected from here on. */
  private quitting = false;
  /** Counts what statements under row limits change. */
  private readonly counting: RowCounting;
  private readonly prepared = new PreparedStatements();
  /** Decides what each client command becomes upstream. */
  private readonly commands: CommandGovernor;
  /** The answers owed, and what each server packet does to them. */
  private readonly exchange: MysqlExchange;
  private readonly toServer = new AuditHeldWrite(
    () => this.upstream,
    () => this.onAuditReleased(),
  );
  private readonly toClient = new BatchedWrite();
  private readonly handleCommand = (frame: Buffer, payload: Buffer, lastSeq: number) =>
    this.commands.onCommand(frame, payload, lastSeq);
  /** The held command is judged again once, against a catalog reloaded for it. */
  private catalogRefreshed = false;

  constructor(established: Established, context: SessionContext, deps: RelayDeps, control: SessionControl) {
    this.established = established;
    this.client = established.client;
    this.upstream = established.upstream;
    this.logger = established.logger;
    this.masking = established.masking;
    this.context = context;
    this.deps = deps;
    this.control = control;
    this.framer = new CommandFramer(deps.config.limits.maxMessageBytes);
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
          this.toServer.add(bytes);
          this.toServer.flush();
        },
        answer: (bytes) => {
          this.toClient.add(bytes);
          this.toClient.flush(this.client);
        },
        record,
        fatal: (refusal, seq) => this.control.sendFatal(refusal.kind, refusal.message, seq, 'row-limit'),
        hold: () => this.holdCommands(),
        resume: () => this.resumeCommands(),
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
        fatal: (kind, message, reason) => this.control.sendFatal(kind, message, 0, reason),
        serverEnding: () => {
          this.control.endReason = 'upstream';
        },
        uploadStarted: () => this.commands.uploadStarted(),
        completed: (head, end) => {
          if (this.counting.waitingForQuiet && !this.exchange.answersOwed) this.resumeCommands();
          if (head.resets && end?.ok) this.afterReset();
          if (head.changesCode) this.deps.code.invalidate();
        },
        settled: () => {
          if (this.deps.draining() && this.idle) setImmediate(() => this.control.terminate('shutdown'));
        },
        masking: () => this.maskingNow(),
      },
      {
        counting: this.counting,
        prepared: this.prepared,
        deprecateEof: established.deprecateEof,
        status: established.status,
        logger: this.logger,
      },
    );
    this.commands = new CommandGovernor(
      {
        status: () => this.exchange.status,
        catalogRefreshed: () => this.catalogRefreshed,
        masking: () => this.maskingNow(),
        expect: (shape, entry) => this.exchange.expect(shape, entry),
        refuse: (refusal, texts, via, seq, started) =>
          this.exchange.refuse(refusal, texts, via, seq, started),
        holdForAudit: (frame, via, texts, seq, started) => this.holdForAudit(frame, via, texts, seq, started),
        sendMeasured: (m, around, frame, via, texts, seq, started) =>
          this.sendMeasured(m, around, frame, via, texts, seq, started),
        planRows: (rows) => this.planRows(rows),
        hold: () => this.holdCommands(),
        quit: () => {
          this.control.endReason = 'client';
          this.quitting = true;
        },
      },
      deps,
      {
        gate: established.gate,
        identity: established.identity,
        logger: this.logger,
        counting: this.counting,
        prepared: this.prepared,
      },
    );
  }

  /** True while no command is in flight and no transaction is open. */
  get idle(): boolean {
    return this.exchange.empty && (this.exchange.status & ServerStatus.IN_TRANS) === 0;
  }

  /** Starts relaying; `established`'s leftovers are the first bytes of each side. */
  start(): void {
    const { config, metrics } = this.deps;
    const { tls, serverLeftover, clientLeftover } = this.established;
    const client = this.client;
    const server = this.upstream;
    metrics.connection('accepted');
    metrics.active(1);
    this.deps.audit.record({ type: 'connection.start', context: this.context, tls });
    this.logger.info({ database: config.upstream.database, tls }, 'session started');
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    server.on('data', (chunk: Buffer) => this.onServerData(chunk));
    client.on('drain', () => server.resume());
    server.on('drain', () => client.resume());
    client.on('close', () => this.control.close(this.control.endReason));
    client.on('end', () => this.control.close(this.control.endReason));
    server.on('close', () => this.upstreamEnded(undefined));
    server.on('end', () => this.upstreamEnded(undefined));
    server.on('error', (error) => this.upstreamEnded(error));
    if (serverLeftover.length > 0) this.onServerData(serverLeftover);
    if (clientLeftover.length > 0) this.onClientData(clientLeftover);
    server.resume();
    client.resume();
  }

  /**
   * The database's side ended. Once the client has gone (or said COM_QUIT, which the server answers
   * by closing, sometimes with a reset) that is the end the client asked for, not a database failure.
   */
  private upstreamEnded(error: Error | undefined): void {
    if (this.control.closed || this.quitting) {
      if (error) this.logger.debug({ err: error.message }, 'upstream reset after the client left');
      this.control.close(this.control.endReason);
      return;
    }
    this.deps.metrics.upstreamError('closed');
    if (error) this.logger.warn({ err: error.message }, 'upstream connection error');
    else this.logger.warn('the database closed the connection');
    this.control.close('upstream');
  }

  private onClientData(chunk: Buffer): void {
    if (this.control.closed) return;
    this.deps.metrics.bytesIn(chunk.length);
    const server = this.upstream;
    try {
      this.framer.push(chunk, this.handleCommand, this.toServer.add);
    } catch (error) {
      this.toServer.reset();
      this.protocolViolation(error);
      return;
    }
    this.afterCommands(server);
  }

  private afterCommands(server: Socket): void {
    if (
      this.framer.holding &&
      !this.catalogRefreshed &&
      !this.counting.waitingForQuiet &&
      !this.counting.counting
    )
      this.refreshCatalogThenResume(server);
    this.toServer.flush();
    this.flushRefusals();
    if (server.writableNeedDrain || this.toServer.heldBytes > MAX_HELD_BYTES) this.client.pause();
  }

  /** Commands held for their audit records went (or were refused): owed answers can follow. */
  private onAuditReleased(): void {
    if (this.control.closed) return;
    this.flushRefusals();
    if (!this.upstream.writableNeedDrain && this.toServer.heldBytes <= MAX_HELD_BYTES) this.client.resume();
  }

  /** Sends refusals that nothing is waiting before any more. */
  private flushRefusals(): void {
    if (this.exchange.takeRefusals(this.toClient.add)) this.toClient.flush(this.client);
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
    return this.toServer.hold(frame, written, () => {
      if (expected) this.exchange.refuseInstead(expected, AUDIT_UNAVAILABLE, texts, via, answerSeq, started);
      if (measure) {
        // The proxy's own commands around it did not go either.
        this.exchange.drop(measure.internals);
        this.counting.dropped();
      }
      return undefined;
    });
  }

  /**
   * A statement named a function the catalog does not know, or DDL ran since it was loaded: the
   * client's stream waits while the catalog reloads, then the command is judged again, once.
   */
  private refreshCatalogThenResume(server: Socket): void {
    this.catalogRefreshed = true;
    this.client.pause();
    const unknown = this.commands.takeUnknownRoutines();
    void this.deps.code.refresh(unknown).then(() => {
      if (this.control.closed) return;
      if (!this.resumeFramer()) return;
      this.catalogRefreshed = false;
      this.afterCommands(server);
      if (!server.writableNeedDrain && !this.framer.holding) this.client.resume();
    });
  }

  /** Hands on the commands the framer held; false when they break the protocol (the session ends). */
  private resumeFramer(): boolean {
    try {
      this.framer.resume(this.handleCommand, this.toServer.add);
      return true;
    } catch (error) {
      this.toServer.reset();
      this.protocolViolation(error);
      return false;
    }
  }

  /** Holds the client's commands (and stops reading it) until resumeCommands. */
  private holdCommands(): typeof HOLD_COMMAND {
    this.client.pause();
    return HOLD_COMMAND;
  }

  /** Reads the client's held commands again, once no statement under row limits waits. */
  private resumeCommands(): void {
    setImmediate(() => {
      if (this.control.closed || this.counting.counting) return;
      this.counting.resumed();
      if (!this.framer.holding) return;
      const server = this.upstream;
      if (!this.resumeFramer()) return;
      this.afterCommands(server);
      if (!server.writableNeedDrain && !this.framer.holding) this.client.resume();
    });
  }

  /** How a statement under row limits runs (RowCounting.plan), given the answers owed before it. */
  private planRows(rows: RowsToMeasure): ReturnType<RowCounting['plan']> {
    return this.counting.plan(rows, this.exchange.answersOwed, this.catalogRefreshed);
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

  private onServerData(chunk: Buffer): void {
    if (this.control.closed) return;
    this.deps.metrics.bytesOut(chunk.length);
    try {
      this.scanner.scan(chunk, this.exchange.classify, this.exchange.handle, this.toClient.add);
    } catch (error) {
      this.toClient.reset();
      this.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        'invalid data from the database',
      );
      this.deps.metrics.upstreamError('protocol');
      this.control.sendFatal(MysqlError.MALFORMED, 'Gatehouse received invalid data from the database', 0);
      return;
    }
    this.toClient.flush(this.client);
    if (this.client.writableNeedDrain) this.upstream.pause();
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
      this.upstream.write(packet(Buffer.from(`\x03${sql}`, 'utf8'), 0));
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

  private protocolViolation(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.logger.warn({ reason: message }, 'protocol violation by client; closing the session');
    this.control.sendFatal(
      MysqlError.MALFORMED,
      `Gatehouse closed the connection: ${message}`,
      1,
      'protocol-error',
    );
  }

  /**
   * Ends the upstream side. A client that hung up right after its last commands still has them run
   * once their records are written (as if they had gone straight through); any other end drops them.
   */
  endUpstream(reason: string): void {
    const upstream = this.upstream;
    const endUpstream = () => {
      if (!upstream.destroyed && upstream.writable) upstream.end(packet(Buffer.from([Command.QUIT]), 0));
      setTimeout(() => upstream.destroy(), 1000).unref();
    };
    if (reason === 'client') this.toServer.whenIdle(endUpstream);
    else {
      this.toServer.reset();
      endUpstream();
    }
  }

  /** The session's last audit record. */
  recordEnd(reason: string): void {
    recordSessionEnd(
      { audit: this.deps.audit, metrics: this.deps.metrics, logger: this.logger },
      this.context,
      this.startedAt,
      this.statementCount,
      reason,
    );
  }
}
