import { FrameScanner } from '../frame-scanner.ts';
import { ProtocolError } from './protocol-error.ts';

/**
 * Splits a byte stream of type-tagged PostgreSQL messages (1-byte type, int32 length that counts itself,
 * body) into whole messages, each handed to a handler that decides what to forward. A message that lies
 * within one chunk is a view of that chunk, and consecutive messages forwarded unchanged go out as one
 * slice of it: the usual chunk costs one write. Only a message that spans chunks is copied, once.
 */
export class MessageFramer {
  private parts: Buffer[] = [];
  /** A handler returned HOLD: bytes are kept, unread, until `resume`. */
  private held = false;
  private partsLength = 0;
  /** Length of the message being assembled from parts, once its header is known. */
  private needed = 0;
  readonly maxMessageBytes: number;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /**
   * Frames `chunk`: `handle(type, frame)` returns the bytes to forward in place of the frame (the frame
   * itself, a replacement, or nothing); `output` receives the bytes to forward, in order.
   */
  push(chunk: Buffer, handle: FramerHandler, output: (bytes: Buffer) => void): void {
    if (this.held) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      return;
    }
    let data = chunk;
    if (this.partsLength > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.needed === 0 && this.partsLength >= 5)
        this.needed = this.checkedLength(Buffer.concat(this.parts, 5), 0);
      if (this.needed === 0 || this.partsLength < this.needed) return;
      data = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
      this.needed = 0;
    }
    let offset = 0;
    let runStart = 0;
    const end = data.length;
    while (end - offset >= 5) {
      const frameEnd = offset + this.checkedLength(data, offset);
      if (frameEnd > end) break;
      const frame = data.subarray(offset, frameEnd);
      const replacement = handle(data[offset]!, frame);
      if (replacement === HOLD) {
        // The handler must wait (for a catalog refresh): this message and the rest are read later.
        if (offset > runStart) output(data.subarray(runStart, offset));
        const rest = Buffer.from(data.subarray(offset));
        this.parts = [rest];
        this.partsLength = rest.length;
        this.needed = 0;
        this.held = true;
        return;
      }
      if (replacement !== frame) {
        if (offset > runStart) output(data.subarray(runStart, offset));
        if (replacement) output(replacement);
        runStart = frameEnd;
      }
      offset = frameEnd;
    }
    if (offset > runStart) output(data.subarray(runStart, offset));
    if (offset < end) {
      const rest = Buffer.from(data.subarray(offset));
      this.parts = [rest];
      this.partsLength = rest.length;
      this.needed = rest.length >= 5 ? this.checkedLength(rest, 0) : 0;
    }
  }

  /** Whether a handler is holding the stream (see HOLD). */
  get holding(): boolean {
    return this.held;
  }

  /** Reads on after a HOLD: the held message is handed to `handle` again, then what came after it. */
  resume(handle: FramerHandler, output: (bytes: Buffer) => void): void {
    this.held = false;
    const data = Buffer.concat(this.parts, this.partsLength);
    this.parts = [];
    this.partsLength = 0;
    this.needed = 0;
    if (data.length > 0) this.push(data, handle, output);
  }

  /** Bytes received but not yet part of a whole message. */
  get buffered(): number {
    return this.partsLength;
  }

  /** The whole frame length (header included) of the message at `offset`, validated. */
  private checkedLength(data: Buffer, offset: number): number {
    const length = data.readInt32BE(offset + 1);
    if (length < 4) throw new ProtocolError(`invalid message length ${length}`);
    if (length + 1 > this.maxMessageBytes) {
      throw new ProtocolError(
        `message of ${length + 1} bytes exceeds the limit of ${this.maxMessageBytes}`,
        '54000',
      );
    }
    return length + 1;
  }
}

/** Decides what reaches the peer in place of a wanted message: the frame itself, a replacement, or nothing. */
export type MessageHandler = (type: number, frame: Buffer) => Buffer | undefined;

/** Returned by a framer's handler: stop before this message and keep it, until `resume`. */
export const HOLD: unique symbol = Symbol('hold');

/** A MessageHandler that may also HOLD the stream. */
export type FramerHandler = (type: number, frame: Buffer) => Buffer | undefined | typeof HOLD;

/**
 * Follows message boundaries in the server's stream without assembling the messages the proxy does not
 * read (DataRow, CopyData): those bytes go out as runs of the chunk they came in, uncopied. Messages whose
 * type is wanted are assembled and passed to the handler, which may replace or drop them. The mechanics
 * are FrameScanner's; a message's header is its type byte and an int32 length that counts itself.
 */
export class MessageScanner extends FrameScanner<MessageHandler> {
  private readonly wanted: Uint8Array;

  constructor(wantedTypes: Iterable<number>, maxMessageBytes: number) {
    super({ lengthBytes: 5, peekBytes: 5 }, maxMessageBytes);
    this.wanted = new Uint8Array(256);
    for (const t of wantedTypes) this.wanted[t] = 1;
  }

  /**
   * Starts or stops assembling messages of `type`, from the next message on: masking turns DataRow on
   * for the results it rewrites and off again, so results it does not touch still pass uncopied.
   */
  want(type: number, wanted: boolean): void {
    this.wanted[type] = wanted ? 1 : 0;
  }

  /** Scans `chunk`, calling `output` with the bytes to forward, in order, and `handle` for wanted messages. */
  scan(chunk: Buffer, handle: MessageHandler, output: (bytes: Buffer) => void): void {
    this.scanFrames(chunk, handle, output);
  }

  protected frameLength(data: Buffer, offset: number): number {
    const length = data.readInt32BE(offset + 1);
    if (length < 4) throw new ProtocolError(`invalid message length ${length} from server`);
    return length + 1;
  }

  protected wants(data: Buffer, offset: number): boolean {
    return this.wanted[data[offset]!] !== 0;
  }

  protected deliver(handle: MessageHandler, frame: Buffer): Buffer | undefined {
    return handle(frame[0]!, frame);
  }

  protected tooLarge(length: number, limit: number): Error {
    return new ProtocolError(`server message of ${length} bytes exceeds the limit of ${limit}`);
  }
}
