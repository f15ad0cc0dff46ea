import { withMeasured } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import { PendingImpact } from '../../approvals/pending-impact.ts';
import type { SessionHolds } from '../../approvals/session-holds.ts';
import type { SessionCore } from '../session-core.ts';
import { CommandFramer, type CommandHandler, HOLD_COMMAND } from './command-framer.ts';
import { type MysqlImpactSession, measureMysqlHeld } from './held-impact.ts';
import type { BoundParameters } from './impact-link.ts';
import type { RowCounting } from './row-counting.ts';

/** What holding the client's commands needs of its session. */
export interface CommandHoldsDeps {
  readonly core: SessionCore;
  /** Statements waiting for approval. */
  readonly holds: SessionHolds;
  readonly counting: RowCounting;
  /** Handles each client command (commands.ts). */
  readonly handle: CommandHandler;
  /** Reloads the catalog for the held command (with the routines it named that were unknown). */
  readonly refreshCatalog: () => Promise<unknown>;
  /** The connection a held statement's impact is measured on. */
  readonly impactSession: () => MysqlImpactSession;
  readonly maxCommandBytes: number;
}

/** A held execution of a prepared statement: what its wait is keyed by, and the parameters it binds. */
export interface BoundExecution {
  readonly key: string;
  readonly parameters: BoundParameters;
}

/**
 * When the client's commands stop and when they read on. A command holds the stream (HOLD_COMMAND)
 * while it waits for an approval, while its impact is measured, while the catalog reloads for it, or
 * while a statement under row limits is counted; when the stream reads on, the held command is handled
 * again, then what came after it.
 */
export class CommandHolds {
  /** The held command is judged again once, against a catalog reloaded for it. */
  catalogRefreshed = false;
  private readonly deps: CommandHoldsDeps;
  private readonly framer: CommandFramer;
  /** A held statement whose impact is measured before its request opens. */
  private readonly impact = new PendingImpact();
  private readonly resume = (out: (bytes: Buffer) => void) => this.framer.resume(this.deps.handle, out);

  constructor(deps: CommandHoldsDeps) {
    this.deps = deps;
    this.framer = new CommandFramer(deps.maxCommandBytes);
  }

  push(chunk: Buffer, out: (bytes: Buffer) => void): void {
    this.framer.push(chunk, this.deps.handle, out);
  }

  /** Whether a command holds the stream. */
  get holding(): boolean {
    return this.framer.holding;
  }

  /** After a client chunk: what the held command waits for decides when the stream reads on. */
  afterChunk(): void {
    if (!this.framer.holding) return;
    const { core, holds, counting } = this.deps;
    if (holds.waiting) {
      // A statement waits for approval; once per wait, as more bytes may arrive while it is held.
      const waiting = holds.resumeAfter();
      if (waiting) core.holdClientUntil(waiting, this.resume);
    } else if (this.impact.waiting) {
      const measuring = this.impact.resumeAfter();
      if (measuring) core.holdClientUntil(measuring, this.resume);
    } else if (!this.catalogRefreshed && !counting.waitingForQuiet && !counting.counting)
      this.refreshCatalogThenResume();
  }

  /**
   * The held statement with what it would do, measured on this connection first (the stream waits,
   * HOLD_COMMAND, and the command is handled again); as it is when an approval releases it at once.
   */
  measureHeld(sql: string, held: HeldStatement, bound?: BoundExecution): HeldStatement | typeof HOLD_COMMAND {
    if (this.deps.holds.releasesAtOnce(held)) return held;
    const key = bound?.key ?? sql;
    const taken = this.impact.take(key);
    if (taken) return withMeasured(held, taken.measured);
    this.impact.start(
      key,
      measureMysqlHeld(this.deps.impactSession(), sql, held.statementFacts, bound?.parameters),
    );
    return HOLD_COMMAND;
  }

  /** Holds the client's commands (and stops reading it) until resumeWhenFree. */
  hold(): typeof HOLD_COMMAND {
    this.deps.core.client.pause();
    return HOLD_COMMAND;
  }

  /** Reads the client's held commands again, once no statement under row limits waits. */
  resumeWhenFree(): void {
    setImmediate(() => {
      const { core, counting } = this.deps;
      if (core.closed || counting.counting) return;
      counting.resumed();
      if (!this.framer.holding) return;
      core.holdClientUntil(Promise.resolve(), this.resume);
    });
  }

  /**
   * A statement named a function the catalog does not know, or DDL ran since it was loaded: the
   * client's stream waits while the catalog reloads, then the command is judged again, once.
   */
  private refreshCatalogThenResume(): void {
    this.catalogRefreshed = true;
    this.deps.core.holdClientUntil(this.deps.refreshCatalog(), (out) => {
      this.resume(out);
      this.catalogRefreshed = false;
    });
  }
}
