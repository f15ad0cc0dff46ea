import { ProtocolError } from './protocol-error.ts';

/**
 * Splits a byte stream of type-tagged PostgreSQL messages (1-byte type, int32 length that counts itself,
 * body) into whole messages. A message that lies within one chunk is returned as a view of that chunk;
 * only a message that spans chunks is copied, so a result stream is never re-buffered.
 */
export class MessageFramer {
  private pending: Buffer | undefined;
  readonly maxMessageBytes: number;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /**
   * Calls `onMessage(type, frame)` for every complete message; `frame` holds the whole message including
   * its 5-byte header and is only valid during the call unless copied.
   */
  push(chunk: Buffer, onMessage: (type: number, frame: Buffer) => void): void {
    let data = chunk;
    if (this.pending) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let offset = 0;
    const end = data.length;
    while (end - offset >= 5) {
      const length = data.readInt32BE(offset + 1);
      if (length < 4) throw new ProtocolError(`invalid message length ${length}`);
      if (length + 1 > this.maxMessageBytes) {
        throw new ProtocolError(
          `message of ${length + 1} bytes exceeds the limit of ${this.maxMessageBytes}`,
          '54000',
        );
      }
      const frameEnd = offset + 1 + length;
      if (frameEnd > end) break;
      onMessage(data[offset]!, data.subarray(offset, frameEnd));
      offset = frameEnd;
    }
    if (offset < end) this.pending = Buffer.from(data.subarray(offset));
  }

  /** Bytes received but not yet part of a whole message. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}

/** Decides what reaches the peer in place of a wanted message: the frame itself, a replacement, or nothing. */
export type MessageHandler = (type: number, frame: Buffer) => Buffer | undefined;

/**
 * Follows message boundaries in the server's stream without assembling the messages the proxy does not
 * read (DataRow, CopyData): those bytes go out as runs of the chunk they came in, uncopied. Messages whose
 * type is wanted are assembled and passed to the handler, which may replace or drop them.
 */
export class MessageScanner {
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private skipRemaining = 0;
  private collecting: Buffer | undefined;
  private collectFill = 0;
  private collectingType = 0;
  private readonly wanted: Uint8Array;
  private readonly maxMessageBytes: number;

  constructor(wantedTypes: Iterable<number>, maxMessageBytes: number) {
    this.wanted = new Uint8Array(256);
    for (const t of wantedTypes) this.wanted[t] = 1;
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Scans `chunk`, calling `output` with the bytes to forward, in order, and `handle` for wanted messages. */
  scan(chunk: Buffer, handle: MessageHandler, output: (bytes: Buffer) => void): void {
    let offset = 0;
    let runStart = 0;
    const end = chunk.length;
    const flushRun = (upTo: number) => {
      if (upTo > runStart) output(chunk.subarray(runStart, upTo));
      runStart = upTo;
    };
    const emit = (type: number, frame: Buffer) => {
      const replacement = handle(type, frame);
      if (replacement) output(replacement);
    };
    while (offset < end) {
      if (this.skipRemaining > 0) {
        const n = Math.min(this.skipRemaining, end - offset);
        this.skipRemaining -= n;
        offset += n;
        continue;
      }
      if (this.collecting) {
        const n = Math.min(this.collecting.length - this.collectFill, end - offset);
        chunk.copy(this.collecting, this.collectFill, offset, offset + n);
        this.collectFill += n;
        offset += n;
        runStart = offset;
        if (this.collectFill === this.collecting.length) {
          const frame = this.collecting;
          this.collecting = undefined;
          emit(this.collectingType, frame);
        }
        continue;
      }
      if (this.headerFill === 0 && end - offset >= 5) {
        const type = chunk[offset]!;
        const length = chunk.readInt32BE(offset + 1);
        if (length < 4) throw new ProtocolError(`invalid message length ${length} from server`);
        const frameEnd = offset + 1 + length;
        if (this.wanted[type] === 0) {
          if (frameEnd <= end) offset = frameEnd;
          else {
            this.skipRemaining = frameEnd - end;
            offset = end;
          }
          continue;
        }
        if (frameEnd <= end) {
          const frame = chunk.subarray(offset, frameEnd);
          const replacement = handle(type, frame);
          if (replacement !== frame) {
            flushRun(offset);
            if (replacement) output(replacement);
            runStart = frameEnd;
          }
          offset = frameEnd;
          continue;
        }
        flushRun(offset);
        this.startCollecting(type, length, chunk.subarray(offset, end));
        offset = end;
        runStart = end;
        continue;
      }
      // The header itself is split across chunks: hold its bytes back until the type is known.
      if (this.headerFill === 0) flushRun(offset);
      const n = Math.min(5 - this.headerFill, end - offset);
      chunk.copy(this.header, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      runStart = offset;
      if (this.headerFill < 5) continue;
      this.headerFill = 0;
      const type = this.header[0]!;
      const length = this.header.readInt32BE(1);
      if (length < 4) throw new ProtocolError(`invalid message length ${length} from server`);
      if (this.wanted[type] === 0) {
        output(Buffer.from(this.header));
        this.skipRemaining = length - 4;
      } else {
        this.startCollecting(type, length, this.header);
        if (length === 4) {
          const frame = this.collecting!;
          this.collecting = undefined;
          emit(type, frame);
        }
      }
    }
    flushRun(end);
  }

  private startCollecting(type: number, length: number, start: Buffer): void {
    if (length + 1 > this.maxMessageBytes) {
      throw new ProtocolError(
        `server message of ${length + 1} bytes exceeds the limit of ${this.maxMessageBytes}`,
      );
    }
    this.collecting = Buffer.allocUnsafe(length + 1);
    start.copy(this.collecting, 0);
    this.collectFill = start.length;
    this.collectingType = type;
  }
}
