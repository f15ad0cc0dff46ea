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
import type { Identity } from '../../identity/identity.ts';
import type { SessionMetrics } from '../../metrics.ts';
import type { MysqlGate } from '../../policy/gates/mysql-gate.ts';
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
import { Command, MAX_PACKET_PAYLOAD, MysqlError, type MysqlErrorKind, ServerStatus } from './constants.ts';
import type { Established } from './handshake.ts';
import type { SessionRegistry } from './kill.ts';
import { type ColumnType, columnType, maskBinaryRow, maskTextRow } from './masking/row-rewrite.ts';
import { packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import {
  commandOf,
  type Measurement,
  type Pending,
  PreparedStatements,
  type Refusal,
  type RowsToMeasure,
  UNKNOWN_TEXT,
} from './pending.ts';
import { type ResponseShape, ResponseTracker, type ResultEnd } from './response-tracker.ts';
import { RowCounting } from './row-counting.ts';
import { errPacket, withholdErrorText } from './server-packets.ts';

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
 * A logged-in session from its first command to its close: relays both sides, governs each command,
 * tracks each answer, masks rows and measures rows under row limits.
 */
export class MysqlRelay {
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly deps: RelayDeps;
  private readonly control: SessionControl;
  private readonly logger: Logger;
  private readonly identity: Identity;
  private readonly context: SessionContext;
  private readonly gate: MysqlGate;
  /** The masking in force for the identity. */
  private readonly masking: MaskingSettingsCache<SessionMasking>;
  private readonly setupQueries: readonly string[];
  private readonly deprecateEof: boolean;
  /** The upstream is MariaDB (whose session counters are in information_schema). */
  private readonly framer: CommandFramer;
  private readonly scanner: PacketScanner;
  private readonly startedAt = Date.now();
  private statementCount = 0;
  private status: number;
  /** The client sent COM_QUIT: the server closing its side is expected from here on. */
  private quitting = false;
  /** Set by classify for a packet of an internal command's answer that the tracker must not read. */
  private dropUnread = false;
  /** Set by classify for a column definition or row that masking reads. */
  private maskedPacket: 'definition' | 'row' | 'too-large' | undefined;
  private columns: ColumnType[] = [];
  private columnsOf: { head: Pending; result: number } | undefined;

  private readonly pending: Pending[] = [];
  /** Counts what statements under row limits change. */
  private readonly counting: RowCounting;
  private readonly prepared = new PreparedStatements();
  /** Decides what each client command becomes upstream. */
  private readonly commands: CommandGovernor;
  private readonly toServer = new AuditHeldWrite(
    () => this.upstream,
    () => this.onAuditReleased(),
  );
  private readonly toClient = new BatchedWrite();
  private readonly handleCommand = (frame: Buffer, payload: Buffer, lastSeq: number) =>
    this.commands.onCommand(frame, payload, lastSeq);
  /** The held command is judged again once, against a catalog reloaded for it. */
  private catalogRefreshed = false;
  private readonly classifyPacket = (first: number, length: number) => this.classify(first, length);
  private readonly handlePacket = (p: Buffer) => this.onServerPacket(p);

  constructor(established: Established, context: SessionContext, deps: RelayDeps, control: SessionControl) {
    this.client = established.client;
    this.upstream = established.upstream;
    this.logger = established.logger;
    this.identity = established.identity;
    this.gate = established.gate;
    this.masking = established.masking;
    this.setupQueries = established.setupQueries;
    this.deprecateEof = established.deprecateEof;
    this.status = established.status;
    this.context = context;
    this.deps = deps;
    this.control = control;
    this.framer = new CommandFramer(deps.config.limits.maxMessageBytes);
    this.scanner = new PacketScanner(64 * 1024 * 1024);
    this.counting = new RowCounting(
      {
        owe: (hooks) => this.oweInternal(hooks),
        send: (bytes) => {
          this.toServer.add(bytes);
          this.toServer.flush();
        },
        answer: (bytes) => {
          this.toClient.add(bytes);
          this.toClient.flush(this.client);
        },
        record: (via, started, text, outcome, extra) => this.record(via, started, text, outcome, extra),
        fatal: (refusal, seq) => this.control.sendFatal(refusal.kind, refusal.message, seq, 'row-limit'),
        hold: () => this.holdCommands(),
        resume: () => this.resumeCommands(),
        status: () => this.status,
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
    this.commands = new CommandGovernor(
      {
        status: () => this.status,
        catalogRefreshed: () => this.catalogRefreshed,
        masking: () => this.maskingNow(),
        expect: (shape, entry) => this.expect(shape, entry),
        refuse: (refusal, texts, via, seq, started) => this.refuse(refusal, texts, via, seq, started),
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
    return this.pending.length === 0 && (this.status & ServerStatus.IN_TRANS) === 0;
  }

  /** Starts relaying; `established`'s leftovers are the first bytes of each side. */
  start(established: Established): void {
    const { config, metrics } = this.deps;
    const client = this.client;
    const server = this.upstream;
    metrics.connection('accepted');
    metrics.active(1);
    this.deps.audit.record({ type: 'connection.start', context: this.context, tls: established.tls });
    this.logger.info({ database: config.upstream.database, tls: established.tls }, 'session started');
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    server.on('data', (chunk: Buffer) => this.onServerData(chunk));
    client.on('drain', () => server.resume());
    server.on('drain', () => client.resume());
    client.on('close', () => this.control.close(this.control.endReason));
    client.on('end', () => this.control.close(this.control.endReason));
    server.on('close', () => this.upstreamEnded(undefined));
    server.on('end', () => this.upstreamEnded(undefined));
    server.on('error', (error) => this.upstreamEnded(error));
    if (established.serverLeftover.length > 0) this.onServerData(established.serverLeftover);
    if (established.clientLeftover.length > 0) this.onClientData(established.clientLeftover);
    server.resume();
    client.resume();
  }
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
    this.flushSynthetic();
    if (server.writableNeedDrain || this.toServer.heldBytes > MAX_HELD_BYTES) this.client.pause();
  }

  /** Commands held for their audit records went (or were refused): owed answers can follow. */
  private onAuditReleased(): void {
    if (this.control.closed) return;
    this.flushSynthetic();
    if (!this.upstream.writableNeedDrain && this.toServer.heldBytes <= MAX_HELD_BYTES) this.client.resume();
  }

  /**
   * `frame`, held until the `statement.start` records of its statements are written. When they are
   * lost (failClosed), the command never reaches the server: the answer the last pending entry
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
    const expected = this.pending[this.pending.length - 1]!;
    const { audit, config } = this.deps;
    const written = recordStatementStart(audit, config.audit.failClosed, this.context, via, texts);
    return this.toServer.hold(frame, written, () => {
      const at = this.pending.indexOf(expected);
      if (at !== -1) {
        this.refuse(AUDIT_UNAVAILABLE, texts, via, answerSeq, started);
        this.pending[at] = this.pending.pop()!;
      }
      if (measure) {
        // The proxy's own commands around it did not go either.
        for (const entry of measure.internals) {
          const i = this.pending.indexOf(entry);
          if (i !== -1) this.pending.splice(i, 1);
        }
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
      try {
        this.framer.resume(this.handleCommand, this.toServer.add);
      } catch (error) {
        this.toServer.reset();
        this.protocolViolation(error);
        return;
      }
      this.catalogRefreshed = false;
      this.afterCommands(server);
      if (!server.writableNeedDrain && !this.framer.holding) this.client.resume();
    });
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
      try {
        this.framer.resume(this.handleCommand, this.toServer.add);
      } catch (error) {
        this.toServer.reset();
        this.protocolViolation(error);
        return;
      }
      this.afterCommands(server);
      if (!server.writableNeedDrain && !this.framer.holding) this.client.resume();
    });
  }

  /** How a statement under row limits runs (RowCounting.plan), given the answers owed before it. */
  private planRows(rows: RowsToMeasure): ReturnType<RowCounting['plan']> {
    return this.counting.plan(
      rows,
      this.pending.some((entry) => entry.tracker !== undefined),
      this.catalogRefreshed,
    );
  }

  /** Queues the answer owed to a command of the proxy's own: it never reaches the client. */
  private oweInternal(hooks: Pick<Pending, 'onRow' | 'onDone'>): Pending {
    const entry: Pending = {
      tracker: new ResponseTracker('results', this.deprecateEof),
      internal: true,
      index: 0,
      started: performance.now(),
      command: 'ROW LIMIT',
      ...hooks,
    };
    this.pending.push(entry);
    return entry;
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
    const bytes = this.holdForAudit(
      Buffer.concat([around.prefix, frame, around.suffix]),
      via,
      texts,
      answerSeq,
      started,
      m,
    );
    this.counting.sent(m);
    return bytes;
  }

  private expect(shape: ResponseShape, entry: Omit<Pending, 'tracker' | 'index'>): void {
    if (!entry.measure) this.counting.forget();
    this.pending.push({ ...entry, tracker: new ResponseTracker(shape, this.deprecateEof), index: 0 });
  }

  /** Answers a command with an error of our own, in order with the answers still owed. */
  private refuse(
    refusal: Refusal,
    texts: readonly QueryText[],
    via: 'text' | 'prepared',
    seq: number,
    started: number,
  ): void {
    const err = errPacket(refusal.kind, refusal.message, seq);
    for (const text of texts.length > 0 ? texts : [UNKNOWN_TEXT])
      this.record(via, started, text, 'refused', { reason: refusal.reason, sqlstate: refusal.kind.sqlstate });
    this.pending.push({ tracker: undefined, synthetic: err, index: 0, started, command: 'REFUSED' });
  }

  /** Sends refusals that nothing is waiting before any more. */
  private flushSynthetic(): void {
    let wrote = false;
    while (this.pending.length > 0 && this.pending[0]!.synthetic) {
      this.toClient.add(this.pending.shift()!.synthetic!);
      wrote = true;
    }
    if (wrote) this.toClient.flush(this.client);
  }

  private onServerData(chunk: Buffer): void {
    if (this.control.closed) return;
    this.deps.metrics.bytesOut(chunk.length);
    try {
      this.scanner.scan(chunk, this.classifyPacket, this.handlePacket, this.toClient.add);
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

  private classify(first: number, length: number): boolean {
    const head = this.pending[0];
    if (!head?.tracker) return true;
    const wanted = head.tracker.classify(first, length) || head.tracker.done;
    if (head.masks && !wanted && head.tracker.lastAccounted) {
      // Masking reads every column definition (for the types) and every row.
      this.maskedPacket = length >= MAX_PACKET_PAYLOAD ? 'too-large' : head.tracker.lastAccounted;
      return true;
    }
    if (!head.internal) return wanted;
    // The answer to a command of the proxy's own never reaches the client: every packet is taken, and
    // those the tracker has accounted for already are only dropped.
    this.dropUnread = !wanted;
    return true;
  }

  private onServerPacket(p: Buffer): Buffer | undefined {
    const head = this.pending[0];
    if (!head?.tracker) {
      // Nothing asked: the server says goodbye (an ERR before it closes, e.g. after KILL CONNECTION).
      if (p[4] === 0xff) this.control.endReason = 'upstream';
      return p;
    }
    if (this.dropUnread) {
      this.dropUnread = false;
      if (head.onRow && head.tracker.lastAccounted === 'row') head.onRow(p.subarray(4));
      return undefined;
    }
    if (this.maskedPacket) {
      const kind = this.maskedPacket;
      this.maskedPacket = undefined;
      return this.maskPacket(head, kind, p);
    }
    if (p[4] === 0xff && head.withholdsServerText && !head.internal) p = withholdErrorText(p);
    const { end, prepared, localInfile } = head.tracker.read(p.subarray(4));
    if (localInfile !== undefined) return this.onLocalInfile(head, localInfile, p);
    // lastPrepared was set when the prepare went upstream: a later prepare may have gone since.
    if (prepared && head.prepares) this.prepared.set(prepared.statementId, head.prepares);
    // The last packet of a measured statement's answer waits for the count.
    const holds = head.measure !== undefined && end?.last === true;
    if (end) this.onResultEnd(head, end, p);
    if (!head.tracker.done) return head.internal ? undefined : p;
    this.pending.shift();
    if (head.internal) head.onDone?.(end);
    if (this.counting.waitingForQuiet && !this.pending.some((entry) => entry.tracker !== undefined))
      this.resumeCommands();
    if (head.resets && end?.ok) this.afterReset();
    if (head.changesCode) this.deps.code.invalidate();
    const out = head.internal || holds ? [] : [p];
    while (this.pending.length > 0 && this.pending[0]!.synthetic) out.push(this.pending.shift()!.synthetic!);
    if (this.deps.draining() && this.idle) setImmediate(() => this.control.terminate('shutdown'));
    return out.length === 1 ? out[0] : out.length === 0 ? undefined : Buffer.concat(out);
  }

  /**
   * The server asks for a client file (LOAD DATA LOCAL). Relayed only for the file the allowed statement
   * names: a server that asks for another (say ~/.ssh/id_rsa) ends the session, the client never sees it.
   */
  private onLocalInfile(head: Pending, file: string, p: Buffer): Buffer | undefined {
    const expected = head.localInfiles?.shift();
    if (head.internal || expected !== file) {
      this.logger.error(
        { expected: expected === undefined ? null : 'a different file' },
        'the database asked for a client file the statement did not name: closing the session',
      );
      this.control.sendFatal(
        MysqlError.MALFORMED,
        'Gatehouse refused a request from the database for a file the statement did not name',
        0,
        'protocol-error',
      );
      return undefined;
    }
    this.commands.uploadStarted();
    return p;
  }

  /** The masking in force now: policy reloads and exemption expiries apply to the next command. */
  private maskingNow(): SessionMasking | undefined {
    return this.masking.get(this.deps.policy());
  }

  /** A column definition (kept for its type) or a row (masked) of a result the session masks. */
  private maskPacket(head: Pending, kind: 'definition' | 'row' | 'too-large', p: Buffer): Buffer | undefined {
    if (kind === 'too-large') {
      // Its continuation would pass unread: a row that cannot be masked ends the session instead.
      this.logger.warn('a row of 16 MiB or more in a masked result: closing the session');
      this.control.sendFatal(
        MysqlError.PACKET_TOO_LARGE,
        'Gatehouse cannot mask rows of 16 MiB or more',
        0,
        'masking',
      );
      return undefined;
    }
    const result = head.tracker!.resultIndex;
    if (this.columnsOf?.head !== head || this.columnsOf.result !== result) {
      this.columns = [];
      this.columnsOf = { head, result };
    }
    if (kind === 'definition') {
      this.columns.push(columnType(p.subarray(4)));
      return p;
    }
    const payload = p.subarray(4);
    const mask = head.masks?.[result] ?? 'all';
    const masking = head.masking ?? this.maskingNow();
    if (!masking) return p;
    const masked = head.binary
      ? maskBinaryRow(payload, this.columns, mask, masking)
      : maskTextRow(payload, this.columns, mask, masking);
    if (masked === payload) return p;
    if (masked.length >= MAX_PACKET_PAYLOAD) {
      this.control.sendFatal(
        MysqlError.PACKET_TOO_LARGE,
        'Gatehouse cannot mask rows of 16 MiB or more',
        0,
        'masking',
      );
      return undefined;
    }
    return packet(masked, p[3]!);
  }

  /** A result of `head`'s answer ended with `frame`: the status flags, the audit record. */
  private onResultEnd(head: Pending, end: ResultEnd, frame: Buffer): void {
    if (end.status !== undefined) {
      this.status = end.status;
      this.counting.onStatus(end.status);
    }
    if (head.internal) return;
    if (head.command === 'PREPARE') {
      // A prepare is audited when it fails; its executions are audited as statements.
      if (!end.ok) this.prepared.failed(head.prepares);
      if (!end.ok)
        this.record('prepared', head.started, head.prepares?.text ?? UNKNOWN_TEXT, 'error', {
          ...(end.sqlstate && { sqlstate: end.sqlstate }),
        });
      return;
    }
    if (!head.texts) return;
    const text = head.texts[head.index] ?? head.texts[head.texts.length - 1] ?? UNKNOWN_TEXT;
    if (head.measure && end.last) {
      // Recorded once the count decides what the client is told.
      this.counting.holdAnswer(head.measure, head, frame, end, text);
      return;
    }
    if (end.ok)
      this.record(head.via ?? 'text', head.started, text, 'ok', {
        command: commandOf(text) ?? head.command,
        rows: end.rows,
        ...(head.notes && { reason: head.notes.join('; ') }),
        masked: head.masked?.[head.index],
      });
    else
      this.record(head.via ?? 'text', head.started, text, 'error', {
        ...(end.sqlstate && { sqlstate: end.sqlstate }),
      });
    head.index++;
    head.started = performance.now();
  }

  /** COM_RESET_CONNECTION dropped user variables and prepared statements: tag the session again. */
  private afterReset(): void {
    this.prepared.clear();
    this.gate.reset();
    for (const sql of this.setupQueries) {
      this.pending.push({
        tracker: new ResponseTracker('results', this.deprecateEof),
        internal: true,
        index: 0,
        started: performance.now(),
        command: 'SETUP',
      });
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

  /** Audits a refused login with the MySQL error the client gets (its number and SQLSTATE). */
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
