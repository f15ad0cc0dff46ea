import type { Socket } from 'node:net';

/** What a held message becomes when its audit record was lost: a stand-in for the server, or nothing. */
export type OnRecordLost = () => Buffer | undefined;

interface Gate {
  written: boolean | undefined;
  readonly onLost: OnRecordLost;
}

/**
 * The bytes one incoming chunk produces for the database, written in order, where a statement's message
 * waits until its audit record is written (and everything after it waits behind it): no statement
 * reaches the database before its record does. When the record was lost, `onLost` says what goes in
 * its place (a stand-in that makes the server answer as for a refused statement, or nothing).
 *
 * With nothing held, a chunk is written as BatchedWrite writes it: one write, or one corked writev.
 */
export class AuditHeldWrite {
  readonly #socket: () => Socket | undefined;
  readonly #onReleased: () => void;
  /** Bytes in order, and beside each the record it waits for (undefined: only those before it). */
  #bytes: Buffer[] = [];
  #gates: (Gate | undefined)[] = [];
  /** The view `hold` returned, recognised when the framer hands it to `add`. */
  #marked: { readonly bytes: Buffer; readonly gate: Gate } | undefined;
  #held = 0;
  #heldBytes = 0;
  #whenIdle: (() => void)[] = [];

  /**
   * `socket` is where the bytes go (undefined once the session is gone); `onReleased` runs after held
   * bytes were written or replaced, so the session can send answers it owes and resume reading.
   */
  constructor(socket: () => Socket | undefined, onReleased: () => void) {
    this.#socket = socket;
    this.#onReleased = onReleased;
  }

  /**
   * Marks `frame` as a statement that may reach the database only once `written` is true; returns the
   * bytes to hand back to the framer in its place (they come back to `add`). A `written` of true
   * (nothing to wait for) returns `frame` itself.
   */
  hold(frame: Buffer, written: Promise<boolean> | boolean, onLost: OnRecordLost): Buffer {
    if (written === true) return frame;
    const gate: Gate = { written: written === false ? false : undefined, onLost };
    // A new view of the same bytes: the framer writes it on its own, apart from the run before it.
    const bytes = frame.subarray(0);
    this.#marked = { bytes, gate };
    if (written !== false)
      void written.then((ok) => {
        gate.written = ok;
        this.#release();
      });
    return bytes;
  }

  readonly add = (bytes: Buffer): void => {
    const marked = this.#marked;
    if (marked !== undefined && bytes === marked.bytes) {
      this.#marked = undefined;
      this.#gates.push(marked.gate);
      this.#held++;
    } else this.#gates.push(undefined);
    this.#bytes.push(bytes);
    this.#heldBytes += bytes.length;
  };

  /** Bytes waiting for an audit record (their own or one before them). */
  get heldBytes(): number {
    return this.#held > 0 ? this.#heldBytes : 0;
  }

  /**
   * Runs `then` once nothing is held any more (at once when nothing is): a session whose client hung
   * up right after sending a statement lets it go (or be refused) before it closes the upstream.
   */
  whenIdle(then: () => void): void {
    if (this.#held === 0) then();
    else this.#whenIdle.push(then);
  }

  /**
   * Writes everything up to the first message whose record is not written yet, less the messages
   * just before it that wait for nothing of their own.
   */
  flush(): void {
    const socket = this.#socket();
    if (socket === undefined || socket.destroyed || this.#bytes.length === 0) return;
    let ready = this.#held > 0 ? this.#firstUnsettled() : this.#bytes.length;
    // What leads up to a statement still waiting (its Parse and Bind) waits with it: one write, and
    // one wake-up of the server, instead of two for the same exchange.
    if (ready < this.#bytes.length) while (ready > 0 && this.#gates[ready - 1] === undefined) ready--;
    if (ready === 0) return;
    const bytes = this.#bytes.splice(0, ready);
    const gates = this.#gates.splice(0, ready);
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const gate = gates[i];
      this.#heldBytes -= bytes[i]!.length;
      if (gate === undefined) {
        out.push(bytes[i]!);
        continue;
      }
      this.#held--;
      const replacement = gate.written ? bytes[i] : gate.onLost();
      if (replacement) out.push(replacement);
    }
    if (out.length === 1) socket.write(out[0]!);
    else if (out.length > 1) {
      socket.cork();
      for (const chunk of out) socket.write(chunk);
      socket.uncork();
    }
  }

  /** The index of the first message whose record is neither written nor lost yet. */
  #firstUnsettled(): number {
    const gates = this.#gates;
    for (let i = 0; i < gates.length; i++)
      if (gates[i] !== undefined && gates[i]!.written === undefined) return i;
    return gates.length;
  }

  reset(): void {
    this.#whenIdle = [];
    this.#bytes = [];
    this.#gates = [];
    this.#marked = undefined;
    this.#held = 0;
    this.#heldBytes = 0;
  }

  #release(): void {
    if (this.#bytes.length === 0) return;
    this.flush();
    this.#onReleased();
    if (this.#held === 0) for (const then of this.#whenIdle.splice(0)) then();
  }
}

/** Held bytes past which a session stops reading its client until the audit log catches up. */
export const MAX_HELD_BYTES = 1024 * 1024;
