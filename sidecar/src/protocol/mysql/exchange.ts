import type { Logger } from 'pino';
import type { StatementEvent } from '../../audit/events.ts';
import type { StatementOutcome } from '../../audit/record-statement.ts';
import { exemptionIds } from '../../policy/masking/mysql-result-masks.ts';
import type { SessionMasking } from '../../policy/masking/mysql-session-masking.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { type ColumnType, columnType } from './binary-cells.ts';
import { MAX_PACKET_PAYLOAD, MysqlError, type MysqlErrorKind } from './constants.ts';
import { maskBinaryRow, maskTextRow } from './masking/row-rewrite.ts';
import { markedMasked, masksColumn } from './masking-report.ts';
import { packet } from './packet-io.ts';
import { commandOf, type Pending, type PreparedStatements, type Refusal, UNKNOWN_TEXT } from './pending.ts';
import { type ResponseShape, ResponseTracker, type ResultEnd } from './response-tracker.ts';
import type { RowCounting } from './row-counting.ts';
import { errPacket, withholdErrorText } from './server-packets.ts';

/**
 * The MySQL exchange: the queue of answers the server owes, in the order the commands went, with the
 * proxy's own refusals in their place among them, and what each server packet does to it. Each packet
 * is classified by the answer it belongs to (read, relayed unread, masked, or dropped when the proxy
 * asked), and each finished result is audited. No sockets: the session feeds it through the
 * PacketScanner (`classify`, `handle`) and sends what it returns.
 */

/** What the exchange asks of the session. */
export interface ExchangePort {
  record(
    via: 'text' | 'prepared',
    started: number,
    text: QueryText,
    outcome: StatementEvent['outcome'],
    extra: StatementOutcome,
  ): void;
  /** Ends the session with an error of the proxy's own (and `reason` as the end's). */
  fatal(kind: MysqlErrorKind, message: string, reason: string): void;
  /** A packet nobody asked for: the server says goodbye (an ERR before it closes, e.g. after KILL CONNECTION). */
  serverEnding(): void;
  /** The server asks for the client's file and may have it: the client's next packets are the file. */
  uploadStarted(): void;
  /** `head`'s answer is complete (before the refusals queued behind it go). */
  completed(head: Pending, end: ResultEnd | undefined): void;
  /** The answer and the refusals behind it are out: the session may be idle now. */
  settled(): void;
  /** The masking in force now, for an answer judged without one. */
  masking(): SessionMasking | undefined;
}

export class MysqlExchange {
  private readonly port: ExchangePort;
  private readonly counting: RowCounting;
  private readonly prepared: PreparedStatements;
  private readonly deprecateEof: boolean;
  private readonly reportsMasking: boolean;
  private readonly logger: Logger;
  private readonly pending: Pending[] = [];
  private statusFlags: number;
  /** Set by classify for a packet of an internal command's answer that the tracker must not read. */
  private dropUnread = false;
  /** Set by classify for a column definition or row that masking reads. */
  private maskedPacket: 'definition' | 'row' | 'too-large' | undefined;
  private columns: ColumnType[] = [];
  private columnsOf: { head: Pending; result: number } | undefined;
  /** For the PacketScanner: whether it must hand the packet over whole. */
  readonly classify = (first: number, length: number): boolean => this.classifyPacket(first, length);
  /** For the PacketScanner: what to send the client for a packet handed over. */
  readonly handle = (p: Buffer): Buffer | undefined => this.onServerPacket(p);

  constructor(
    port: ExchangePort,
    session: {
      counting: RowCounting;
      prepared: PreparedStatements;
      deprecateEof: boolean;
      /** The client asked for masked columns to be marked (masking-report.ts). */
      reportsMasking?: boolean;
      status: number;
      logger: Logger;
    },
  ) {
    this.port = port;
    this.counting = session.counting;
    this.prepared = session.prepared;
    this.deprecateEof = session.deprecateEof;
    this.reportsMasking = session.reportsMasking === true;
    this.statusFlags = session.status;
    this.logger = session.logger;
  }

  /** The server status flags as the last answer left them. */
  get status(): number {
    return this.statusFlags;
  }

  /** No answer is owed (nor a refusal waiting to go). */
  get empty(): boolean {
    return this.pending.length === 0;
  }

  /** The server owes an answer to a command that went. */
  get answersOwed(): boolean {
    return this.pending.some((entry) => entry.tracker !== undefined);
  }

  /** The entry queued last. */
  last(): Pending | undefined {
    return this.pending[this.pending.length - 1];
  }

  /** Queues the answer the server owes to a command of the client's. */
  expect(shape: ResponseShape, entry: Omit<Pending, 'tracker' | 'index'>): void {
    if (!entry.measure) this.counting.forget();
    this.pending.push({ ...entry, tracker: new ResponseTracker(shape, this.deprecateEof), index: 0 });
  }

  /** Queues the answer owed to a command of the proxy's own: it never reaches the client. */
  owe(
    command: string,
    hooks: Pick<Pending, 'onRow' | 'onDone' | 'onDefinition' | 'onPrepared'>,
    shape: ResponseShape = 'results',
  ): Pending {
    const entry: Pending = {
      tracker: new ResponseTracker(shape, this.deprecateEof),
      internal: true,
      index: 0,
      started: performance.now(),
      command,
      ...hooks,
    };
    this.pending.push(entry);
    return entry;
  }

  /** Answers a command with an error of our own, in order with the answers still owed. */
  refuse(
    refusal: Refusal,
    texts: readonly QueryText[],
    via: 'text' | 'prepared',
    seq: number,
    started: number,
  ): void {
    const err = errPacket(refusal.kind, refusal.message, seq);
    for (const text of texts.length > 0 ? texts : [UNKNOWN_TEXT])
      this.port.record(via, started, text, 'refused', {
        reason: refusal.reason,
        sqlstate: refusal.kind.sqlstate,
      });
    this.pending.push({ tracker: undefined, synthetic: err, index: 0, started, command: 'REFUSED' });
  }

  /** The command `expected` answers never went: the refusal takes its place in the queue. */
  refuseInstead(
    expected: Pending,
    refusal: Refusal,
    texts: readonly QueryText[],
    via: 'text' | 'prepared',
    seq: number,
    started: number,
  ): void {
    const at = this.pending.indexOf(expected);
    if (at === -1) return;
    this.refuse(refusal, texts, via, seq, started);
    this.pending[at] = this.pending.pop() as Pending;
  }

  /** Commands of the proxy's own that never went: nothing is owed for them. */
  drop(entries: readonly Pending[]): void {
    for (const entry of entries) {
      const i = this.pending.indexOf(entry);
      if (i !== -1) this.pending.splice(i, 1);
    }
  }

  /** Hands over the refusals that no owed answer waits before; false when there are none. */
  takeRefusals(send: (bytes: Buffer) => void): boolean {
    let took = false;
    while (this.pending.length > 0 && this.pending[0]?.synthetic) {
      send((this.pending.shift() as Pending).synthetic as Buffer);
      took = true;
    }
    return took;
  }

  private classifyPacket(first: number, length: number): boolean {
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
    const tracker = head?.tracker;
    if (!head || !tracker) {
      if (p[4] === 0xff) this.port.serverEnding();
      return p;
    }
    if (this.dropUnread) {
      this.dropUnread = false;
      if (head.onRow && tracker.lastAccounted === 'row') head.onRow(p.subarray(4));
      else if (head.onDefinition && tracker.lastAccounted === 'definition') head.onDefinition(p.subarray(4));
      return undefined;
    }
    if (this.maskedPacket) {
      const kind = this.maskedPacket;
      this.maskedPacket = undefined;
      return this.maskPacket(head, tracker, kind, p);
    }
    if (p[4] === 0xff && head.withholdsServerText && !head.internal) p = withholdErrorText(p);
    const { end, prepared, localInfile } = tracker.read(p.subarray(4));
    if (localInfile !== undefined) return this.onLocalInfile(head, localInfile, p);
    // prepared.last was set when the prepare went upstream: a later prepare may have gone since.
    if (prepared && head.prepares) this.prepared.set(prepared.statementId, head.prepares, prepared.params);
    if (prepared) head.onPrepared?.(prepared);
    // The last packet of a measured statement's answer waits for the count.
    const holds = head.measure !== undefined && end?.last === true;
    if (end) this.onResultEnd(head, end, p);
    if (!tracker.done) return head.internal ? undefined : p;
    this.pending.shift();
    if (head.internal) head.onDone?.(end);
    this.port.completed(head, end);
    const out = head.internal || holds ? [] : [p];
    while (this.pending.length > 0 && this.pending[0]?.synthetic)
      out.push((this.pending.shift() as Pending).synthetic as Buffer);
    this.port.settled();
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
      this.port.fatal(
        MysqlError.MALFORMED,
        'Gatehouse refused a request from the database for a file the statement did not name',
        'protocol-error',
      );
      return undefined;
    }
    this.port.uploadStarted();
    return p;
  }

  /** A column definition (kept for its type) or a row (masked) of a result the session masks. */
  private maskPacket(
    head: Pending,
    tracker: ResponseTracker,
    kind: 'definition' | 'row' | 'too-large',
    p: Buffer,
  ): Buffer | undefined {
    if (kind === 'too-large') {
      // Its continuation would pass unread: a row that cannot be masked ends the session instead.
      this.logger.warn('a row of 16 MiB or more in a masked result: closing the session');
      this.port.fatal(MysqlError.PACKET_TOO_LARGE, 'Gatehouse cannot mask rows of 16 MiB or more', 'masking');
      return undefined;
    }
    const result = tracker.resultIndex;
    if (this.columnsOf?.head !== head || this.columnsOf.result !== result) {
      this.columns = [];
      this.columnsOf = { head, result };
    }
    const mask = head.masks?.[result] ?? 'all';
    if (kind === 'definition') {
      const index = this.columns.length;
      this.columns.push(columnType(p.subarray(4)));
      // Marked as the rows will be: with no masking in force, they pass clear.
      const masks = this.reportsMasking && (head.masking ?? this.port.masking()) && masksColumn(mask, index);
      if (!masks) return p;
      return packet(markedMasked(p.subarray(4)), p[3] ?? 0);
    }
    const payload = p.subarray(4);
    const masking = head.masking ?? this.port.masking();
    if (!masking) return p;
    const masked = head.binary
      ? maskBinaryRow(payload, this.columns, mask, masking)
      : maskTextRow(payload, this.columns, mask, masking);
    if (masked === payload) return p;
    if (masked.length >= MAX_PACKET_PAYLOAD) {
      this.port.fatal(MysqlError.PACKET_TOO_LARGE, 'Gatehouse cannot mask rows of 16 MiB or more', 'masking');
      return undefined;
    }
    return packet(masked, p[3] ?? 0);
  }

  /** A result of `head`'s answer ended with `frame`: the status flags, the audit record. */
  private onResultEnd(head: Pending, end: ResultEnd, frame: Buffer): void {
    if (end.status !== undefined) {
      this.statusFlags = end.status;
      this.counting.onStatus(end.status);
    }
    if (head.internal) return;
    if (head.command === 'PREPARE') {
      // A prepare is audited when it fails; its executions are audited as statements.
      if (!end.ok) {
        this.prepared.failed(head.prepares);
        this.port.record('prepared', head.started, head.prepares?.text ?? UNKNOWN_TEXT, 'error', {
          ...(end.sqlstate && { sqlstate: end.sqlstate }),
        });
      }
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
      this.port.record(head.via ?? 'text', head.started, text, 'ok', {
        command: commandOf(text) ?? head.command,
        rows: end.rows,
        ...(head.notes && { reason: head.notes.join('; ') }),
        masked: head.masked?.[head.index],
        exemptions: exemptionIds(head.exemptions?.[head.index]),
        touched: head.touched?.[head.index],
      });
    else
      this.port.record(head.via ?? 'text', head.started, text, 'error', {
        ...(end.sqlstate && { sqlstate: end.sqlstate }),
      });
    head.index++;
    head.started = performance.now();
  }
}
