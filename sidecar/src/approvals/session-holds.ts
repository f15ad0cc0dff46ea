import type { Logger } from 'pino';
import type { ApprovalBook } from './approval-book.ts';
import { type ApprovalRequest, waitSecondsOf } from './approval-request.ts';
import { releasedRules } from './held-statement.ts';
import { type HeldStatement, type HoldOutcome, hold, waitForDecision } from './hold.ts';

/** What the session does with a held text now. */
export type HoldStart =
  /** Released at once: judge it again past `released`; its records name `request`. */
  | { readonly run: true; readonly released: ReadonlySet<string>; readonly request: string }
  /** Pending: tell the client `request`, hold the stream, and handle the text again when `waiting` settles. */
  | { readonly run: false; readonly request: ApprovalRequest };

/** The decision on the text that waited, when it is handled again. */
export type HoldEnd =
  | { readonly run: true; readonly released: ReadonlySet<string>; readonly request: string }
  | { readonly run: false; readonly request: ApprovalRequest };

/**
 * One session's statement waiting for approval, the same for both protocols: the session's stream
 * waits (its framing holds the text), and when the wait ends the text is handled again and `take`
 * says whether it runs. At most one at a time: nothing behind it is read meanwhile.
 */
export class SessionHolds {
  private readonly book: ApprovalBook;
  private readonly logger: Logger;
  private current:
    | {
        readonly text: string;
        readonly waiting: Promise<void>;
        readonly released: ReadonlySet<string>;
        outcome?: HoldOutcome;
        resumes: boolean;
      }
    | undefined;
  private cancelled: AbortController | undefined;

  constructor(book: ApprovalBook, logger: Logger) {
    this.book = book;
    this.logger = logger;
  }

  /**
   * Whether the statement would be released at once (an approval or a shape approval waiting for it):
   * its impact need not be measured, and it must not run before it is released.
   */
  releasesAtOnce(held: HeldStatement): boolean {
    return this.book.releases(held.binding, held.fingerprint);
  }

  /** Holds `text`: released at once, or pending (the session tells its client, and holds the stream). */
  begin(text: string, held: HeldStatement): HoldStart {
    const start = hold(this.book, held, new Date());
    const released = releasedRules(held);
    if ('run' in start) {
      this.logger.info({ request: start.request.id, by: start.by }, 'held statement released at once');
      return { run: true, released, request: start.request.id };
    }
    const request = start.pending;
    this.logger.info({ request: request.id }, 'statement held for approval');
    const cancel = new AbortController();
    this.cancelled = cancel;
    const wait = waitForDecision(
      this.book,
      held,
      request.id,
      waitSecondsOf(request.rules) * 1000,
      cancel.signal,
    );
    const current: NonNullable<typeof this.current> = {
      text,
      released,
      resumes: false,
      waiting: wait.then((outcome) => {
        current.outcome = outcome;
        this.cancelled = undefined;
      }),
    };
    this.current = current;
    return { run: false, request };
  }

  /**
   * The wait the session's stream should resume after, once: undefined when nothing waits, or when
   * the resumption is already arranged (more of the client's bytes arrived meanwhile).
   */
  resumeAfter(): Promise<void> | undefined {
    const current = this.current;
    if (!current || current.outcome || current.resumes) return undefined;
    current.resumes = true;
    return current.waiting;
  }

  /** Whether a text waits for its decision now. */
  get waiting(): boolean {
    return this.current !== undefined && this.current.outcome === undefined;
  }

  /** The decision, when `text` is the one that waited and its wait is over; it is handed out once. */
  take(text: string): HoldEnd | undefined {
    const current = this.current;
    if (!current?.outcome || current.text !== text) return undefined;
    this.current = undefined;
    const { outcome } = current;
    return outcome.run
      ? { run: true, released: current.released, request: outcome.request.id }
      : { run: false, request: outcome.request };
  }

  /** The client cancelled (or the session ended): the waiting request is withdrawn. */
  cancel(): void {
    this.cancelled?.abort();
  }
}
