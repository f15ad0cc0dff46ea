import type { Logger } from 'pino';
import { judgeRowCounts, type RowBudget } from '../../policy/guardrails/row-limits.ts';
import type { QueryText } from '../../sql/normalize.ts';
import type { MysqlCodeCatalogCache } from './code-catalog-cache.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import { ServerStatus } from './constants.ts';
import { type HeldAnswerPort, refuseHeldAnswer, releaseHeldAnswer } from './held-answer.ts';
import { packet } from './packet-io.ts';
import type { Measurement, Pending, Refusal, RowsToMeasure } from './pending.ts';
import type { ResultEnd } from './response-tracker.ts';
import {
  commitFailedRefusal,
  countersUnreadableRefusal,
  enforcingLimit,
  overLimitRefusal,
  unmeasurableRefusal,
} from './row-limit-refusals.ts';
import {
  counterQuery,
  counterValue,
  describeWrite,
  limitNotes,
  needsCount,
  outsideTransaction,
  SAVEPOINT,
  unmeasurable,
} from './row-measure.ts';

/**
 * Counting what a statement under row limits changes (row-measure.ts says how), as a state machine
 * over the answers to the proxy's own commands:
 *
 *   plan ─► begin: START TRANSACTION (autocommit) or SAVEPOINT, then the counters (unless the last
 *   count still holds) ─► the client's statement ─► the counters again ─► decide:
 *     under the limits: COMMIT (the proxy's transaction) or nothing (the client's), then the client's
 *       held last packet goes, with the status flags of after the COMMIT;
 *     over a limit, or counters unreadable under an enforcing limit: ROLLBACK (TO SAVEPOINT), then
 *       the client gets the refusal instead; a ROLLBACK that fails ends the session.
 *
 * While a statement is counted the client's next commands wait (`counting`). The session supplies the
 * sockets, the queue of owed answers and the audit through a RowCountingPort.
 */

/** What counting asks of the session. */
export interface RowCountingPort extends HeldAnswerPort {
  /** Queues the answer owed to a command of the proxy's own, read by `hooks` and never relayed. */
  owe(hooks: Pick<Pending, 'onRow' | 'onDone'>): Pending;
  /** Sends a command of the proxy's own to the server now. */
  send(bytes: Buffer): void;
  /** Ends the session with this error (which rolls its transaction back). */
  fatal(refusal: Refusal, seq: number): void;
  /** Stops reading the client's commands; they are read again by `resume`. */
  hold(): typeof HOLD_COMMAND;
  /** Reads the client's held commands again, once nothing is counted. */
  resume(): void;
  /** The server status flags as the last answer left them. */
  status(): number;
}

export interface RowCountingSettings {
  readonly code: Pick<MysqlCodeCatalogCache, 'tables'>;
  /** The session's database: unqualified tables are in it. */
  readonly database: string;
  /** Rows each identity changed over the last minute (one per proxy). */
  readonly rowBudget: RowBudget;
  readonly subject: string;
  /** The upstream is MariaDB (whose session counters are in information_schema). */
  readonly mariadb: boolean;
  readonly logger: Logger;
}

export class RowCounting {
  private readonly port: RowCountingPort;
  private readonly settings: RowCountingSettings;
  /** The statement whose count is awaited: the client's next commands wait. */
  private measuring: Measurement | undefined;
  /** A statement waits until every answer owed before it has come (exact status flags). */
  private quiet = false;
  /** Rows the client's open transaction has changed, as measured statement by statement. */
  private txRows = 0;
  /**
   * The counters as the last measured statement left them, while nothing else has run on the
   * connection since: the next measured statement starts from it instead of reading them again. The
   * proxy's COMMIT and ROLLBACK do not move them; any other client command forgets it (FLUSH STATUS
   * or COM_RESET_CONNECTION could reset them).
   */
  private lastCount: number | undefined;

  constructor(port: RowCountingPort, settings: RowCountingSettings) {
    this.port = port;
    this.settings = settings;
  }

  /** A statement is being counted: nothing else may run in its transaction before the decision. */
  get counting(): boolean {
    return this.measuring !== undefined;
  }

  /** A statement waits for the answers owed before it. */
  get waitingForQuiet(): boolean {
    return this.quiet;
  }

  /** The client's commands are read again. */
  resumed(): void {
    this.quiet = false;
  }

  /** Rows the client's open transaction has changed, as measured. */
  get transactionRows(): number {
    return this.txRows;
  }

  /**
   * How a statement under row limits runs: measured (a Measurement), refused because its rows cannot
   * be counted, run with a note when no limit on it enforces, or held (answers owed before it must come
   * first, so that the status flags say whether a transaction is open; or the table catalog reloads).
   */
  plan(
    rows: RowsToMeasure,
    answersOwed: boolean,
    catalogRefreshed: boolean,
  ): Measurement | Refusal | { note: string } | typeof HOLD_COMMAND | undefined {
    if (!needsCount(rows.facts)) return undefined;
    if (answersOwed) {
      this.quiet = true;
      return this.port.hold();
    }
    const { code, database, rowBudget, subject } = this.settings;
    const what = describeWrite(rows.facts);
    const why = unmeasurable(rows.facts, code.tables(), database);
    if (why?.unknown && !catalogRefreshed) return HOLD_COMMAND;
    if (why) {
      const limit = enforcingLimit(rows.limits);
      if (!limit) return { note: `row limit not measured: ${why.reason}` };
      return unmeasurableRefusal(limit, what, why.reason);
    }
    const status = this.port.status();
    const inTransaction = (status & ServerStatus.IN_TRANS) !== 0;
    return {
      limits: rows.limits,
      implicit: !inTransaction && (status & ServerStatus.AUTOCOMMIT) !== 0,
      what,
      txBefore: inTransaction ? this.txRows : 0,
      minute: rowBudget.spent(subject),
      internals: [],
    };
  }

  /**
   * The bytes of the statement under count: the proxy's transaction or savepoint and first count,
   * `frame` (the client's command), and the second count. Its answers are owed from here on; the
   * client's own must be queued by the caller between the first and the last.
   */
  begin(m: Measurement): { prefix: Buffer; suffix: Buffer } {
    this.measuring = m;
    const failed = (end: ResultEnd | undefined) => {
      if (!end?.ok) m.broken = true;
    };
    const open = this.internal(m, m.implicit ? 'START TRANSACTION' : `SAVEPOINT ${SAVEPOINT}`, {
      onDone: failed,
    });
    const suffix = commandPacket(counterQuery(this.settings.mariadb));
    if (this.lastCount !== undefined) {
      m.before = this.lastCount;
      this.lastCount = undefined;
      return { prefix: open, suffix };
    }
    const before = this.internal(m, counterQuery(this.settings.mariadb), {
      onRow: (row) => {
        m.before = counterValue(row);
      },
      onDone: failed,
    });
    return { prefix: Buffer.concat([open, before]), suffix };
  }

  /** The client's statement is queued: the second count's answer is owed next, and decides. */
  sent(m: Measurement): void {
    this.owe(m, {
      onRow: (row) => {
        m.after = counterValue(row);
      },
      onDone: (end) => {
        if (!end?.ok) m.broken = true;
        this.decide(m);
      },
    });
  }

  /** The statement's audit record was lost: none of it went; its owed answers are `m.internals`. */
  dropped(): void {
    this.measuring = undefined;
    this.lastCount = undefined;
    this.port.resume();
  }

  /** A client command not counted: whatever it does may move the counters. */
  forget(): void {
    this.lastCount = undefined;
  }

  /** The server's status flags after an answer: a transaction that ended takes its rows with it. */
  onStatus(status: number): void {
    if (!(status & ServerStatus.IN_TRANS)) this.txRows = 0;
  }

  /** The last packet of the client's answer waits for the decision. */
  holdAnswer(m: Measurement, head: Pending, frame: Buffer, end: ResultEnd, text: QueryText): void {
    m.held = frame;
    m.heldEnd = end;
    m.heldText = text;
    m.client = head;
  }

  /** A command of the proxy's own, answered to it alone; its bytes go where the caller puts them. */
  private internal(m: Measurement, sql: string, hooks: Pick<Pending, 'onRow' | 'onDone'>): Buffer {
    this.owe(m, hooks);
    return commandPacket(sql);
  }

  private owe(m: Measurement, hooks: Pick<Pending, 'onRow' | 'onDone'>): void {
    m.internals.push(this.port.owe(hooks));
  }

  /** The counters are in: keep what the statement changed, or roll it back and refuse it. */
  private decide(m: Measurement): void {
    const { before, after } = m;
    const delta = before !== undefined && after !== undefined && !m.broken ? after - before : undefined;
    if (delta !== undefined && delta >= 0) this.lastCount = after;
    if (delta === undefined || delta < 0) {
      const limit = enforcingLimit(m.limits);
      if (!limit) {
        this.keep(m, undefined, 0, ['row limit not measured: the counters could not be read']);
        return;
      }
      this.rollBack(m, countersUnreadableRefusal(limit, m.what), undefined);
      return;
    }
    const counts = { transaction: m.txBefore + delta, before: m.txBefore, minute: m.minute };
    const judged = judgeRowCounts(m.limits, counts, m.what);
    const notes = limitNotes(judged);
    const hit = judged.refusal;
    if (!hit) {
      this.keep(m, counts.transaction, delta, notes);
      return;
    }
    this.rollBack(m, overLimitRefusal(hit), counts.transaction, notes);
  }

  private keep(m: Measurement, total: number | undefined, delta: number, notes: readonly string[]): void {
    const { rowBudget, subject } = this.settings;
    if (!m.implicit) {
      if (total !== undefined) this.txRows = total;
      rowBudget.add(subject, delta);
      releaseHeldAnswer(this.port, m, undefined, total, notes);
      this.finish();
      return;
    }
    this.port.send(
      this.internal(m, 'COMMIT', {
        onDone: (end) => {
          if (end?.ok) {
            rowBudget.add(subject, delta);
            releaseHeldAnswer(this.port, m, outsideTransaction(this.port.status()), total, notes);
          } else
            refuseHeldAnswer(
              this.port,
              m,
              commitFailedRefusal(m.what, end?.errorCode),
              'error',
              total,
              notes,
            );
          this.finish();
        },
      }),
    );
  }

  private rollBack(
    m: Measurement,
    refusal: Refusal,
    total: number | undefined,
    notes: readonly string[] = [],
  ): void {
    this.port.send(
      this.internal(m, m.implicit ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${SAVEPOINT}`, {
        onDone: (end) => {
          if (!end?.ok) {
            // The rows may still be there: ending the session rolls its transaction back.
            this.settings.logger.error(
              { errno: end?.errorCode },
              'could not roll back a statement over its row limit',
            );
            this.port.fatal(
              {
                ...refusal,
                message: `${refusal.message}; Gatehouse could not roll it back and closed the connection, which rolls the transaction back`,
              },
              m.held?.[3] ?? 1,
            );
            return;
          }
          refuseHeldAnswer(this.port, m, refusal, 'refused', total, notes);
          this.finish();
        },
      }),
    );
  }

  private finish(): void {
    this.measuring = undefined;
    this.port.resume();
  }
}

/** A COM_QUERY of the proxy's own. */
function commandPacket(sql: string): Buffer {
  return packet(Buffer.from(`\x03${sql}`, 'utf8'), 0);
}
