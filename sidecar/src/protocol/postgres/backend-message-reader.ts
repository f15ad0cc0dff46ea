/** One backend message: its type byte and the body after the length word. */
export interface BackendFrame {
  readonly type: number;
  readonly body: Buffer;
}

/**
 * Cuts a byte stream from a PostgreSQL server into whole messages. Bytes past the last whole message
 * stay buffered, so whoever takes the socket over afterwards gets them back with `remainder()`.
 */
export class BackendMessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly maxMessageLength: number;

  /** `maxMessageLength` bounds what a misbehaving server can make us buffer (length word included). */
  constructor(maxMessageLength: number) {
    this.maxMessageLength = maxMessageLength;
  }

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
  }

  /** The next whole message, or undefined until more bytes arrive. Throws on an impossible length. */
  next(): BackendFrame | undefined {
    if (this.buffer.length < 5) return undefined;
    const length = this.buffer.readUInt32BE(1);
    if (length < 4 || length > this.maxMessageLength) {
      throw new RangeError(`backend message '${String.fromCharCode(this.buffer[0]!)}' has length ${length}`);
    }
    if (this.buffer.length < length + 1) return undefined;
    const frame = { type: this.buffer[0]!, body: this.buffer.subarray(5, length + 1) };
    this.buffer = this.buffer.subarray(length + 1);
    return frame;
  }

  /** Bytes received but not yet returned as a message. */
  remainder(): Buffer {
    return this.buffer;
  }
}
