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
import type { MysqlGate, MysqlTextMasking } from '../../policy/gates/mysql-gate.ts';
import type { Allowed, Refused } from '../../policy/gates/session-gate.ts';
import type { RowBudget } from '../../policy/guardrails/row-limits.ts';
import type { MaskingSettingsCache } from '../../policy/masking/masking-settings-cache.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { PolicySource } from '../../policy/sources.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { AuditHeldWrite, MAX_HELD_BYTES } from '../audit-held-write.ts';
import { BatchedWrite } from '../batched-write.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { CommandFramer, HOLD_COMMAND } from './command-framer.ts';
import { Command, MAX_PACKET_PAYLOAD, MysqlError, type MysqlErrorKind, ServerStatus } from './constants.ts';
import type { Established } from './handshake.ts';
import { killTarget, type SessionRegistry } from './kill.ts';
import { type ColumnType, columnType, maskBinaryRow, maskTextRow } from './masking/row-rewrite.ts';
import { PayloadReader, packet } from './packet-io.ts';
import { PacketScanner } from './packet-scanner.ts';
import {
  commandOf,
  type Measurement,
  type Pending,
  type PreparedText,
  type Refusal,
  type RowsToMeasure,
  UNKNOWN_TEXT,
} from './pending.ts';
import { ProtocolError } from './protocol-error.ts';
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

/** A client file goes to the server only when a policy allows the statement that asks for it. */
const LOCAL_INFILE_WITHOUT_POLICY = {
  kind: MysqlError.SPECIFIC_ACCESS_DENIED,
  message: 'Gatehouse: LOAD DATA LOCAL needs a policy that allows it (no policy documents are configured)',
  reason: 'local-infile',
} as const;

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
  /** The client is sending a LOAD DATA LOCAL file: its packets are data, not commands. */
  private uploading = false;
  /** Set by classify for a packet of an internal command's answer that the tracker must not read. */
  private dropUnread = false;
  /** Set by classify for a column definition or row that masking reads. */
  private maskedPacket: 'definition' | 'row' | 'too-large' | undefined;
  private columns: ColumnType[] = [];
  private columnsOf: { head: Pending; result: number } | undefined;

  private readonly pending: Pending[] = [];
  /** Counts what statements under row limits change. */
  private readonly counting: RowCounting;
  private readonly statements = new Map<number, PreparedText>();
  private lastPrepared: PreparedText | undefined;
  private readonly toServer = new AuditHeldWrite(
    () => this.upstream,
    () => this.onAuditReleased(),
  );
  private readonly toClient = new BatchedWrite();
  private readonly handleCommand = (frame: Buffer, payload: Buffer, lastSeq: number) =>
    this.onCommand(frame, payload, lastSeq);
  /** The held command is judged again once, against a catalog reloaded for it. */
  private catalogRefreshed = false;
  /** Routines the held command named that the catalog did not know. */
  private unknownRoutines: readonly string[] = [];
  /** The last judged command changes stored code. */
  private judgedChangesCode = false;
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
        this.refuse(this.auditUnavailable(), texts, via, answerSeq, started);
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
    const unknown = this.unknownRoutines;
    this.unknownRoutines = [];
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

  /** Decides what one client command becomes upstream; returns the bytes to send (or nothing). */
  private onCommand(
    frame: Buffer,
    payload: Buffer,
    lastSeq: number,
  ): Buffer | undefined | typeof HOLD_COMMAND {
    if (this.uploading) {
      // LOAD DATA LOCAL: the file's packets go up as they come; an empty packet ends it.
      if (payload.length === 0) this.uploading = false;
      return frame;
    }
    if (payload.length === 0) throw new ProtocolError('empty command packet');
    // A statement under row limits is being counted: what it changed may still be rolled back, so
    // nothing else may run in its transaction before the decision.
    if (this.counting.counting) return this.holdCommands();
    const command = payload[0]!;
    const answerSeq = (lastSeq + 1) & 0xff;
    const started = performance.now();
    switch (command) {
      case Command.QUERY: {
        const sql = payload.toString('utf8', 1);
        const kill = this.killRewrite(sql, answerSeq, started);
        if (kill) return kill === 'refused' ? undefined : kill;
        // Described before judging: the text is read under the sql_mode in force before it runs.
        const texts = this.gate.describe(sql);
        const localInfiles = this.gate.localInfiles(sql);
        const verdict =
          this.auditRefusal() ??
          (localInfiles.length > 0 && !this.deps.policy() ? LOCAL_INFILE_WITHOUT_POLICY : undefined) ??
          this.judge(sql, texts);
        if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
        if ('kind' in verdict) {
          this.refuse(verdict, texts, 'text', answerSeq, started);
          return undefined;
        }
        const masks = verdict.masking;
        const plan = verdict.rows && this.planRows(verdict.rows);
        if (plan === HOLD_COMMAND) return HOLD_COMMAND;
        if (plan && 'kind' in plan) {
          this.refuse(plan, texts, 'text', answerSeq, started);
          return undefined;
        }
        const measure = plan && 'limits' in plan ? plan : undefined;
        const prefix = measure && this.counting.begin(measure);
        this.expect('results', {
          via: 'text',
          texts,
          started,
          command: 'QUERY',
          ...withNote(verdict.notes, plan && 'note' in plan ? plan.note : undefined),
          ...(measure && { measure }),
          ...(masks && {
            masks: masks.results,
            masking: masks.settings,
            masked: masks.described,
            withholdsServerText: masks.withholdsServerText,
          }),
          localInfiles,
          ...(this.judgedChangesCode && { changesCode: true }),
        });
        if (measure) return this.sendMeasured(measure, prefix!, frame, 'text', texts, answerSeq, started);
        return this.holdForAudit(frame, 'text', texts, answerSeq, started);
      }
      case Command.STMT_PREPARE: {
        const sql = payload.toString('utf8', 1);
        const text = this.gate.describeOne(sql);
        const verdict = this.auditRefusal() ?? this.judge(sql, [text]);
        if (verdict === HOLD_COMMAND) return HOLD_COMMAND;
        if ('kind' in verdict) {
          this.refuse(verdict, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const masks = verdict.masking;
        const prepares: PreparedText = {
          text,
          ...withNote(verdict.notes, undefined),
          ...(verdict.rows && { rows: verdict.rows }),
          ...(masks && {
            masks: masks.results[0] ?? 'all',
            masked: masks.described[0] ?? ['*: redact'],
            withholdsServerText: masks.withholdsServerText,
          }),
        };
        // MariaDB's COM_STMT_EXECUTE of id -1 (pipelined after this prepare) runs this statement.
        this.lastPrepared = prepares;
        this.expect('prepare', {
          started,
          command: 'PREPARE',
          prepares,
        });
        return frame;
      }
      case Command.STMT_EXECUTE: {
        const r = new PayloadReader(payload, 1);
        const id = r.u32();
        const flags = r.u8();
        const prepared = id === 0xffffffff ? this.lastPrepared : this.statements.get(id);
        const text = prepared?.text ?? UNJUDGED_EXECUTE;
        // Only statements whose COM_STMT_PREPARE Gatehouse judged run: an id it did not see prepared
        // (or -1 after a failed prepare) has no analysis to mask it by.
        const audit = this.auditRefusal() ?? (prepared ? undefined : UNKNOWN_STATEMENT_ID);
        if (audit) {
          this.refuse(audit, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const masking = this.maskingNow();
        if (flags & 0x07) {
          this.refuse(
            {
              kind: MysqlError.NOT_SUPPORTED,
              message: 'Gatehouse does not relay server-side cursors: execute without a cursor',
              reason: 'cursor',
            },
            [text],
            'prepared',
            answerSeq,
            started,
          );
          return undefined;
        }
        const plan = prepared?.rows && this.planRows(prepared.rows);
        if (plan === HOLD_COMMAND) return HOLD_COMMAND;
        if (plan && 'kind' in plan) {
          this.refuse(plan, [text], 'prepared', answerSeq, started);
          return undefined;
        }
        const measure = plan && 'limits' in plan ? plan : undefined;
        const prefix = measure && this.counting.begin(measure);
        this.expect('results', {
          via: 'prepared',
          texts: [text],
          started,
          command: 'EXECUTE',
          ...withNote(prepared?.notes, plan && 'note' in plan ? plan.note : undefined),
          ...(measure && { measure }),
          ...(masking && {
            masks: [prepared?.masks ?? 'all'],
            masked: [prepared?.masked ?? ['* (not traced): redact']],
            withholdsServerText: prepared?.withholdsServerText ?? true,
            binary: true,
            masking,
          }),
        });
        if (measure)
          return this.sendMeasured(measure, prefix!, frame, 'prepared', [text], answerSeq, started);
        return this.holdForAudit(frame, 'prepared', [text], answerSeq, started);
      }
      case Command.STMT_CLOSE: {
        const id = new PayloadReader(payload, 1).u32();
        if (this.statements.get(id) === this.lastPrepared) this.lastPrepared = undefined;
        this.statements.delete(id);
        return frame;
      }
      case Command.STMT_SEND_LONG_DATA:
        return frame;
      case Command.STMT_RESET:
      case Command.PING:
      case Command.SET_OPTION:
      case Command.STATISTICS:
        this.expect('single', { started, command: commandName(command) });
        return frame;
      case Command.INIT_DB: {
        const database = payload.toString('utf8', 1);
        const texts = [{ statement: `USE \`${database.replaceAll('`', '``')}\``, fingerprint: null }];
        this.expect('single', { via: 'text', texts, started, command: 'INIT DB' });
        return this.holdForAudit(frame, 'text', texts, answerSeq, started);
      }
      case Command.FIELD_LIST:
        this.expect('field-list', { started, command: 'FIELD LIST' });
        return frame;
      case Command.RESET_CONNECTION:
        this.expect('single', { started, command: 'RESET CONNECTION', resets: true });
        return frame;
      case Command.QUIT:
        this.control.endReason = 'client';
        this.quitting = true;
        return frame;
      case Command.PROCESS_KILL: {
        const target = new PayloadReader(payload, 1).u32();
        const rewritten = this.killRewrite(`KILL ${target}`, answerSeq, started);
        return rewritten === 'refused' || rewritten === undefined ? undefined : rewritten;
      }
      case Command.CHANGE_USER:
        this.refuse(
          {
            kind: MysqlError.SPECIFIC_ACCESS_DENIED,
            message:
              'Gatehouse refuses COM_CHANGE_USER: the identity is fixed for the connection; open a new connection',
            reason: 'change-user',
          },
          [{ statement: '<change user>', fingerprint: null }],
          'text',
          answerSeq,
          started,
        );
        return undefined;
      default:
        // Replication, shutdown, debug and the long-gone commands: not for a governed session.
        this.refuse(
          {
            kind: MysqlError.UNKNOWN_COMMAND,
            message: `Gatehouse does not relay command 0x${command.toString(16)}`,
            reason: 'unsupported-command',
          },
          [{ statement: `<command 0x${command.toString(16)}>`, fingerprint: null }],
          'text',
          answerSeq,
          started,
        );
        return undefined;
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

  /**
   * `KILL [QUERY|CONNECTION] n` names a thread id the client saw in its greeting: the proxy maps it to the
   * upstream thread, and only for a session of the same identity. Returns the rewritten command, 'refused'
   * (answered already), or undefined when `sql` is no KILL.
   */
  private killRewrite(sql: string, answerSeq: number, started: number): Buffer | 'refused' | undefined {
    const kill = killTarget(sql);
    if (!kill) return undefined;
    const target = this.deps.sessions.lookup(kill.id);
    const text: QueryText = { statement: `KILL ${kill.scope} ?`, fingerprint: null };
    if (
      !target ||
      target.upstreamThreadId === undefined ||
      target.identity?.subject !== this.identity.subject
    ) {
      this.refuse(
        {
          kind: MysqlError.NO_SUCH_THREAD,
          message: `Unknown thread id: ${kill.id}`,
          reason: 'kill-not-own-session',
        },
        [text],
        'text',
        answerSeq,
        started,
      );
      return 'refused';
    }
    this.expect('results', { via: 'text', texts: [text], started, command: 'KILL' });
    const rewritten = packet(Buffer.from(`\x03KILL ${kill.scope} ${target.upstreamThreadId}`, 'latin1'), 0);
    return this.holdForAudit(rewritten, 'text', [text], answerSeq, started);
  }

  /** The gate's verdict on a text, with a refusal worded as MySQL's error; HOLD_COMMAND: reload the catalog first. */
  private judge(
    sql: string,
    texts: readonly QueryText[],
  ): Refusal | Allowed<MysqlTextMasking> | typeof HOLD_COMMAND {
    this.judgedChangesCode = false;
    const verdict = this.gate.check(sql, texts, {
      idle: !(this.status & ServerStatus.IN_TRANS),
      outdated: this.deps.code.outdated,
      refreshed: this.catalogRefreshed,
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
    return {
      kind: mysqlError(verdict),
      message:
        verdict.message + (verdict.approval ? ' (this statement requires approval before it can run)' : ''),
      reason: verdict.reason,
    };
  }

  private auditRefusal(): Refusal | undefined {
    const { audit, config } = this.deps;
    if (audit.healthy || !config.audit.failClosed) return undefined;
    return this.auditUnavailable();
  }

  private auditUnavailable(): Refusal {
    return {
      kind: MysqlError.AUDIT_UNAVAILABLE,
      message: 'Gatehouse refused the statement: the audit log cannot be written',
      reason: 'audit-unavailable',
    };
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
    if (prepared && head.prepares) this.statements.set(prepared.statementId, head.prepares);
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
    this.uploading = true;
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
      if (!end.ok && this.lastPrepared === head.prepares) this.lastPrepared = undefined;
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
    this.statements.clear();
    this.lastPrepared = undefined;
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

const UNJUDGED_EXECUTE: QueryText = {
  statement: '<COM_STMT_EXECUTE of a statement Gatehouse did not see prepared>',
  fingerprint: null,
};
const UNKNOWN_STATEMENT_ID: Refusal = {
  kind: MysqlError.UNKNOWN_STATEMENT,
  message: 'Gatehouse: unknown prepared statement handler: it was not prepared through Gatehouse',
  reason: 'unjudged-name: COM_STMT_EXECUTE of a statement id Gatehouse did not see prepared',
};

/** The MySQL error for a refusal of the gate. */
function mysqlError(refused: Refused): MysqlErrorKind {
  switch (refused.cause) {
    case 'guardrail':
      return refused.policyKind === 'DatabaseAccess'
        ? MysqlError.SPECIFIC_ACCESS_DENIED
        : MysqlError.TABLE_ACCESS_DENIED;
    case 'server-reading':
      return MysqlError.NOT_SUPPORTED;
    case 'analysis-failed':
      return MysqlError.SPECIFIC_ACCESS_DENIED;
    case 'masking':
      return MysqlError.TABLE_ACCESS_DENIED;
  }
}

/** The notes with one more, when there is one. */
function withNote(
  notes: readonly string[] | undefined,
  note: string | undefined,
): { notes?: readonly string[] } {
  const all = [...(notes ?? []), ...(note ? [note] : [])];
  return all.length > 0 ? { notes: all } : {};
}

function commandName(command: number): string {
  for (const [name, value] of Object.entries(Command))
    if (value === command) return name.replaceAll('_', ' ');
  return `0x${command.toString(16)}`;
}
