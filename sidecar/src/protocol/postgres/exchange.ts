import type { HeldStatement } from '../../approvals/hold.ts';
import type { StatementTouched } from '../../audit/events.ts';
import type { TextMasking } from '../../policy/gates/postgres-masking.ts';
import type { RowsMeasured } from '../../policy/gates/session-gate.ts';
import { describeQuery, type QueryText } from '../../sql/normalize.ts';
import type { ErrorFields } from './backend-writer.ts';
import { Backend } from './codes.ts';
import { checkCount, firstColumnName } from './row-check.ts';
import type { ResultField, RowMasker } from './row-masker.ts';
import type { Settlement, SqlNameEffect } from './session-names.ts';

/** Why Gatehouse refused a statement; the server's answer to the stand-in message is replaced by this. */
/** What a session declared of its work (`SET gatehouse.purpose`, declared-work.ts), kept by the proxy. */
export interface DeclaredWork {
  readonly field: 'purpose' | 'runId';
  readonly value: string | undefined;
}

export interface Refusal {
  readonly fields: ErrorFields;
  readonly reason: string;
}

/**
 * A prepared statement's text, with what the guardrails noted and masking planned when it was
 * parsed, and its result columns once a Describe has told them.
 */
export type PreparedText = QueryText & {
  readonly notes?: readonly string[];
  /** What its statement touches, for the audit record of each Execute (replaced with its masking). */
  touched?: StatementTouched | undefined;
  /**
   * How its results are masked: planned at Parse, and planned again at an Execute when the catalog or
   * masking in force has changed since (StatementJudge.replan).
   */
  masking?: TextMasking | undefined;
  /** Its text as the client sent it, for masking planned again at an Execute. */
  readonly sql?: string;
  /** The names its statement makes or removes when executed (a PREPARE, DEALLOCATE... sent by Parse). */
  readonly nameEffect?: SqlNameEffect | undefined;
  /** Row limits it runs under: each Execute is followed by a row check. */
  readonly rows?: RowsMeasured | undefined;
  /**
   * A requireApproval rule holds it: judged as if released (what it masks, the rows it counts), it
   * waits at each Execute for an approval of its text with that Execute's bound parameters.
   */
  readonly approval?: { readonly sql: string; readonly held: HeldStatement };
  fields?: ResultField[];
};

/** A bound portal: its statement, Bind's result formats, and its columns if described. */
export interface PortalText {
  readonly text: PreparedText;
  readonly formats: readonly number[];
  /** For a statement an approval must release: the digest of the parameters this Bind bound. */
  readonly parametersHash?: string;
  fields?: ResultField[];
}

/** A Query message in flight. */
export interface PendingQuery {
  kind: 'query';
  sql: string;
  texts: readonly QueryText[] | undefined;
  /** The statement of the text the server answers now. */
  index: number;
  started: number;
  refusal?: Refusal;
  /** Guardrail warnings and dry-run findings, for the audit record. */
  notes?: readonly string[];
  /** A NOTICE for the client, sent just before the server's first answer to this message. */
  notice?: Buffer | undefined;
  /** How the results of the text's statements are masked (undefined: this identity sees clear values). */
  masking?: TextMasking | undefined;
  /** The current result's masker, from its RowDescription to its CommandComplete. */
  rowMasker?: RowMasker | undefined;
  /** Per statement, the prepared statement and cursor names it makes or removes. */
  nameEffects?: readonly (SqlNameEffect | undefined)[];
  /** When the message came, for SessionNames. */
  stamp: number;
  /** The rows the text changes are counted by a check the proxy appended to it. */
  check?: RowCheck | undefined;
  /** The approval request that released it. */
  approval?: string;
  /** Per statement, what it touches, for its audit record. */
  touched?: readonly (StatementTouched | undefined)[] | undefined;
  /** A `SET gatehouse.*` the proxy answers itself: the server got an empty query in its place. */
  declares?: DeclaredWork;
}

/**
 * One row check in flight (see row-check.ts): the client's last completion is held until the check
 * answers, then forwarded (the count is under the cap) or replaced by the refusal.
 */
export interface RowCheck {
  readonly rows: RowsMeasured;
  /** Simple protocol: the check's result column, new for each text. */
  readonly column?: string;
  /** Simple protocol: the index of the statement whose completion the check follows. */
  readonly after?: number;
  /** Whether the check's result is coming (simple protocol: its RowDescription was seen). */
  answering: boolean;
  count?: number | undefined;
  /** The client statement's completion, with what its audit record needs. */
  held?: {
    readonly frame: Buffer;
    readonly text: QueryText;
    readonly command: string;
    readonly rows?: number | undefined;
    readonly masked?: readonly string[] | undefined;
    readonly exemptions?: readonly string[] | undefined;
    readonly touched?: StatementTouched | undefined;
  };
  /** Whose record the held completion is (the Query or Execute). */
  readonly owner: { kind: 'query' | 'execute'; started: number; notes?: readonly string[] };
}

export interface PendingExecute {
  kind: 'execute';
  text: QueryText;
  portal?: PortalText;
  started: number;
  stamp?: number;
  refusal?: Refusal;
  notes?: readonly string[];
  rowMasker?: RowMasker;
  check?: RowCheck;
  /** The approval request that released it. */
  approval?: string;
}

/** What the client (or the proxy) asked the server, in the order the server answers. */
export type Pending =
  | PendingQuery
  | PendingExecute
  | {
      /** A message of the extended-protocol row check the proxy sent after an Execute. */
      kind: 'rowcheck';
      step: 'parse' | 'bind' | 'execute' | 'close';
      /** The check's statement (closed by the `close` step). */
      statement: string;
      /** Absent for the Close of a check statement left by an earlier failed check. */
      check?: RowCheck;
    }
  | {
      kind: 'parse';
      started: number;
      text?: QueryText;
      refusal?: Refusal;
      notes?: readonly string[];
      notice?: Buffer | undefined;
      settlement?: Settlement;
    }
  | {
      kind: 'describe';
      entry?: { fields?: ResultField[] };
      refusal?: Refusal;
      started?: number;
      /** Sent by the proxy itself, so its answer (ParameterDescription, RowDescription or NoData) is dropped. */
      internal?: boolean;
    }
  | { kind: 'bind'; settlement?: Settlement; refusal?: Refusal; started?: number }
  | { kind: 'close'; settlement: Settlement }
  | { kind: 'sync' }
  | { kind: 'function'; started: number; refusal?: Refusal };

/**
 * What a server message was, for the exchange. Numbers, not objects: one is returned per message, and
 * what it concerns is left on the Exchange (`subject`, `check`, `index`) instead of allocated.
 */
export const Answer = {
  /** Part of the answer now coming (or untracked): the exchange did not move. */
  Forward: 0,
  /** The answer to a message of the proxy's own: the client never sees it. */
  Drop: 1,
  /** ParseComplete, BindComplete, CloseComplete or NoData of `subject`, which left the queue. */
  Settled: 2,
  /** RowDescription ending the Describe `subject`, which left the queue (dropped if it is internal). */
  Described: 3,
  /** RowDescription heading a result of the Query `subject`. */
  ResultHead: 4,
  /** A DataRow of a result the client asked for. */
  Row: 5,
  /** A DataRow of the row check `check`: its count was read; dropped. */
  CheckRow: 6,
  /** CommandComplete of the row check `check`: its held completion may go on. */
  CheckDone: 7,
  /** CommandComplete of statement `index` of `subject` (a Query or Execute), or of nothing tracked. */
  Completed: 8,
  /** PortalSuspended of the Execute `subject`, which left the queue. */
  Suspended: 9,
  /**
   * ErrorResponse answering `subject` (statement `index` of a Query), or, when `check` is set, failing
   * that row check. The queue has moved past it: to its ReadyForQuery (a Query or FunctionCall), or to
   * the next Sync (extended protocol: the server skips everything before it).
   */
  Failed: 10,
  /** ReadyForQuery: everything up to the Sync, Query or FunctionCall it answers left the queue. */
  Ready: 11,
  /** FunctionCallResponse of `subject`. */
  FunctionResult: 12,
  /**
   * A completion held for the Query `subject`'s row check that is not coming after all (the server
   * ran the text as more statements than Gatehouse split it into): the caller releases `check.held`
   * and asks again.
   */
  Stray: 13,
} as const;
export type Answer = (typeof Answer)[keyof typeof Answer];

/** Check statements left prepared by failed checks, at most (past it they stay until the session ends). */
const MAX_STALE_CHECKS = 64;
const UNKNOWN_TEXT: QueryText = { statement: null, fingerprint: null };

/**
 * The exchange between a client and its server, with no socket: what was asked (`expect`) and what
 * each server message answers (`answer`). The server answers in order, so the queue's head is what
 * the next answer belongs to; an error in the extended protocol makes the server skip to Sync.
 */
export class Exchange {
  private readonly queue: Pending[] = [];
  /** Row-check statements a failed check left prepared on the server: closed with the next check. */
  private staleChecks: string[] = [];
  /** What the last answer concerned (see Answer). */
  subject: Pending | undefined;
  /** The row check the last answer concerned (CheckRow, CheckDone, Failed of a check, Stray). */
  check: RowCheck | undefined;
  /** The statement of a Query the last answer completed or failed. */
  index = 0;

  get head(): Pending | undefined {
    return this.queue[0];
  }

  get size(): number {
    return this.queue.length;
  }

  expect(entry: Pending): void {
    this.queue.push(entry);
  }

  /** Whether a ReadyForQuery will follow what is queued (nothing, or a Sync, Query or FunctionCall last). */
  get endsAtReady(): boolean {
    const last = this.queue[this.queue.length - 1];
    return !last || last.kind === 'sync' || last.kind === 'query' || last.kind === 'function';
  }

  /** No statement is still running: the settings the server last reported are the ones it reads with. */
  settled(): boolean {
    return !this.queue.some((p) => p.kind === 'query' || p.kind === 'execute' || p.kind === 'function');
  }

  /**
   * The messages of the extended-protocol row check the proxy sends right after `execute` (Parse,
   * Bind, Execute and Close of `statement`), after Closes of check statements failed checks left;
   * returns the names of those to close.
   */
  expectRowCheck(execute: PendingExecute, check: RowCheck, statement: string): readonly string[] {
    execute.check = check;
    const stale = this.staleChecks.splice(0);
    for (const name of stale) this.queue.push({ kind: 'rowcheck', step: 'close', statement: name });
    for (const step of ['parse', 'bind', 'execute', 'close'] as const)
      this.queue.push({ kind: 'rowcheck', step, statement, check });
    return stale;
  }

  /** Moves the exchange by one server message (a full frame, type byte first); see Answer. */
  answer(type: number, frame: Buffer): Answer {
    const head = this.queue[0];
    this.subject = head;
    if (head?.kind === 'describe' && head.internal) {
      if (type === Backend.ParameterDescription) return Answer.Drop;
      if (type === Backend.NoData) {
        this.queue.shift();
        return Answer.Drop;
      }
      if (type === Backend.RowDescription) {
        this.queue.shift();
        return Answer.Described;
      }
    }
    if (type === Backend.DataRow) {
      const check = head?.kind === 'rowcheck' ? head.check : head?.kind === 'query' ? head.check : undefined;
      if (check?.answering && (head?.kind === 'rowcheck' || check.held)) {
        check.count = checkCount(frame);
        this.check = check;
        return Answer.CheckRow;
      }
      return Answer.Row;
    }
    if (head?.kind === 'query' && head.check?.held && !head.check.answering) {
      const isCheck =
        type === Backend.ErrorResponse ||
        (type === Backend.RowDescription && firstColumnName(frame) === head.check.column);
      if (!isCheck) {
        this.check = head.check;
        return Answer.Stray;
      }
    }
    switch (type) {
      case Backend.ParseComplete:
      case Backend.BindComplete:
      case Backend.CloseComplete:
      case Backend.NoData:
        this.queue.shift();
        return head?.kind === 'rowcheck' ? Answer.Drop : Answer.Settled;
      case Backend.RowDescription:
        if (head?.kind === 'query' && head.check?.held && firstColumnName(frame) === head.check.column) {
          head.check.answering = true;
          return Answer.Drop;
        }
        if (head?.kind === 'describe') {
          this.queue.shift();
          return Answer.Described;
        }
        return head?.kind === 'query' ? Answer.ResultHead : Answer.Forward;
      case Backend.CommandComplete:
        if (head?.kind === 'rowcheck' && head.check) {
          this.queue.shift();
          this.check = head.check;
          return Answer.CheckDone;
        }
        if (head?.kind === 'query' && head.check?.answering) {
          this.check = head.check;
          head.check = undefined;
          return Answer.CheckDone;
        }
        if (head?.kind === 'query') {
          this.index = head.index++;
          head.rowMasker = undefined;
        } else if (head?.kind === 'execute') this.queue.shift();
        return Answer.Completed;
      case Backend.EmptyQueryResponse:
        if (head?.kind === 'query') head.index++;
        else if (head?.kind === 'execute') this.queue.shift();
        return Answer.Forward;
      case Backend.PortalSuspended:
        if (head?.kind !== 'execute') return Answer.Forward;
        this.queue.shift();
        return Answer.Suspended;
      case Backend.ErrorResponse:
        this.fail(head);
        return Answer.Failed;
      case Backend.ReadyForQuery:
        // Everything before the Sync or Query this answers is settled.
        while (this.queue.length > 0) {
          const done = this.queue.shift()!;
          if (done.kind === 'sync' || done.kind === 'query' || done.kind === 'function') break;
        }
        return Answer.Ready;
      case Backend.FunctionCallResponse:
        return head?.kind === 'function' ? Answer.FunctionResult : Answer.Forward;
      default:
        // ParameterDescription, ParameterStatus, notices, COPY: part of the current answer.
        return Answer.Forward;
    }
  }

  private fail(head: Pending | undefined): void {
    this.check = undefined;
    if (!head || head.kind === 'sync' || head.kind === 'function') return;
    if (head.kind === 'rowcheck') {
      this.check = head.check;
      // Its own Close is skipped with the rest: the statement stays prepared until the next check.
      this.skipToSync();
      return;
    }
    if (head.kind === 'query') {
      this.index = head.index;
      if (head.check && (head.check.held || head.check.answering)) {
        this.check = head.check;
        head.check = undefined;
      }
      head.index = textsOf(head).length;
      head.rowMasker = undefined;
      return;
    }
    this.skipToSync();
  }

  /** After an error the server skips every message up to the next Sync: none of them changed a name. */
  private skipToSync(): void {
    const undo: (() => void)[] = [];
    while (this.queue.length > 0 && this.queue[0]!.kind !== 'sync') {
      const skipped = this.queue.shift()!;
      if ('settlement' in skipped && skipped.settlement?.undo) undo.push(skipped.settlement.undo);
      // A check statement whose Close was skipped may exist (Close of one that does not is no error).
      if (
        skipped.kind === 'rowcheck' &&
        skipped.step === 'close' &&
        this.staleChecks.length < MAX_STALE_CHECKS
      )
        this.staleChecks.push(skipped.statement);
    }
    for (const step of undo.reverse()) step();
  }
}

export function textsOf(query: PendingQuery): readonly QueryText[] {
  query.texts ??= describeQuery(query.sql);
  return query.texts;
}

/** The statement a completion belongs to; past the end (the server ran more than we split), the last. */
export function textAt(query: PendingQuery, index: number): QueryText {
  const texts = textsOf(query);
  return texts[index] ?? texts[texts.length - 1] ?? UNKNOWN_TEXT;
}
