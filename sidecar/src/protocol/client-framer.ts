/** Returned by a client framer's handler: stop before this frame and keep it, and all after it, until `resume`. */
export const HOLD: unique symbol = Symbol('hold');

/**
 * Splits a client's byte stream into whole requests for both protocols (a PostgreSQL message, a MySQL
 * command) and hands each to a handler that decides what to forward: the frame itself, a replacement,
 * or nothing. A frame that lies within one chunk is a view of it, and consecutive frames forwarded
 * unchanged go out as one slice of that chunk: the usual chunk costs one write. Only a frame that spans
 * chunks is copied, once, when its last byte has come.
 *
 * A handler may also HOLD (a statement waits for a catalog refresh or an approval): the stream stops
 * before that frame, and it and everything after it are kept, unread, until `resume` hands the held
 * frame to the handler again and reads on.
 *
 * Unlike the server side (FrameScanner), every client frame is read, so there is nothing to skip: each
 * protocol supplies only where a frame ends and how its handler receives it. The methods are on the
 * subclass rather than passed in so that the per-frame calls cost no closure.
 */
export abstract class ClientFramer<Handler> {
  /** Bytes kept: a frame not yet whole and what came after it, or everything from a held frame on. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Bytes the kept bytes need, from their start, before the first of their frames can be whole. */
  private needed = 0;
  private held = false;

  /**
   * Where the frame at `offset` ends. Beyond `end` when it is not all there: then how far it reaches at
   * least, as far as its bytes up to `end` tell. Throws if the frame is invalid or over the limit.
   */
  protected abstract frameEnd(data: Buffer, offset: number, end: number): number;

  /** Hands a whole frame to `handle`; returns what goes out in its place, or HOLD. */
  protected abstract deliver(handle: Handler, frame: Buffer): Buffer | undefined | typeof HOLD;

  /**
   * Frames `chunk`: `handle` is called with each whole frame, in order; `output` receives the bytes to
   * forward, in order.
   */
  push(chunk: Buffer, handle: Handler, output: (bytes: Buffer) => void): void {
    if (this.held) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      return;
    }
    let data = chunk;
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < this.needed) return;
      data = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
      this.needed = 0;
    }
    let offset = 0;
    let runStart = 0;
    const end = data.length;
    while (offset < end) {
      const frameEnd = this.frameEnd(data, offset, end);
      if (frameEnd > end) {
        this.needed = frameEnd - offset;
        break;
      }
      const frame = data.subarray(offset, frameEnd);
      const out = this.deliver(handle, frame);
      if (out === HOLD) {
        if (offset > runStart) output(data.subarray(runStart, offset));
        this.keep(data.subarray(offset));
        this.needed = 0;
        this.held = true;
        return;
      }
      if (out !== frame) {
        if (offset > runStart) output(data.subarray(runStart, offset));
        if (out) output(out);
        runStart = frameEnd;
      }
      offset = frameEnd;
    }
    if (offset > runStart) output(data.subarray(runStart, offset));
    if (offset < end) this.keep(data.subarray(offset));
  }

  /** Whether a handler is holding the stream (see HOLD). */
  get holding(): boolean {
    return this.held;
  }

  /** Reads on after a HOLD: the held frame is handed to `handle` again, then what came after it. */
  resume(handle: Handler, output: (bytes: Buffer) => void): void {
    this.held = false;
    const data = Buffer.concat(this.parts, this.partsLength);
    this.parts = [];
    this.partsLength = 0;
    this.needed = 0;
    if (data.length > 0) this.push(data, handle, output);
  }

  /** Bytes received but not yet forwarded or handled: a partial frame, or everything held. */
  get buffered(): number {
    return this.partsLength;
  }

  /** Keeps a copy, so that a few bytes left over do not pin the whole chunk they came in. */
  private keep(rest: Buffer): void {
    const copy = Buffer.from(rest);
    this.parts = [copy];
    this.partsLength = copy.length;
  }
}
