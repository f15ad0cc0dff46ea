import type { Measured } from './impact-plan.ts';

/**
 * A held text whose impact is being measured on the session's own connection, before its request is
 * opened (the approver, the notifications and the auto-approval conditions all read the impact). The
 * session's stream waits meanwhile, as it does for the decision; the same for both protocols.
 */
export class PendingImpact {
  private current:
    | {
        readonly text: string;
        readonly waiting: Promise<void>;
        measured?: Measured;
        resumes: boolean;
        cancelled: boolean;
      }
    | undefined;

  /** Starts waiting for `measuring`, which must settle (a failure is a measurement that says why). */
  start(text: string, measuring: Promise<Measured>): void {
    const current: NonNullable<typeof this.current> = {
      text,
      resumes: false,
      cancelled: false,
      waiting: measuring.then(
        (measured) => {
          current.measured = measured;
        },
        (error: unknown) => {
          current.measured = {
            notMeasured: `the measurement failed: ${error instanceof Error ? error.message : String(error)}`,
          };
        },
      ),
    };
    this.current = current;
  }

  /** Whether a text waits for its measurement now. */
  get waiting(): boolean {
    return this.current !== undefined && this.current.measured === undefined;
  }

  /** The wait to resume the stream after, once (see SessionHolds.resumeAfter). */
  resumeAfter(): Promise<void> | undefined {
    const current = this.current;
    if (!current || current.measured || current.resumes) return undefined;
    current.resumes = true;
    return current.waiting;
  }

  /**
   * The client cancelled while its statement was measured (the server got the cancel too): once the
   * measurement is done its request is opened and withdrawn at once, as a cancel while it waits would.
   */
  cancel(): void {
    if (this.current) this.current.cancelled = true;
  }

  /** The measurement, when `text` is the one measured and it is done; handed out once. */
  take(text: string): { readonly measured: Measured; readonly cancelled: boolean } | undefined {
    const current = this.current;
    if (!current?.measured || current.text !== text) return undefined;
    this.current = undefined;
    return { measured: current.measured, cancelled: current.cancelled };
  }
}
