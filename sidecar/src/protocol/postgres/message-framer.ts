import { ClientFramer, HOLD } from '../client-framer.ts';
import { FrameScanner } from '../frame-scanner.ts';
import { ProtocolError } from './protocol-error.ts';

export { HOLD };

/**
 * Splits the client's stream of type-tagged PostgreSQL messages (1-byte type, int32 length that counts
 * itself, body) into whole messages, each handed to a handler that decides what to forward, or HOLDs
 * the stream. The mechanics are ClientFramer's.
 */
export class MessageFramer extends ClientFramer<FramerHandler> {
  readonly maxMessageBytes: number;

  constructor(maxMessageBytes: number) {
    super();
    this.maxMessageBytes = maxMessageBytes;
  }

  protected frameEnd(data: Buffer, offset: number, end: number): number {
    if (end - offset < 5) return offset + 5;
    const length = messageLength(data, offset, '');
    if (length > this.maxMessageBytes) {
      throw new ProtocolError(
        `message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`,
        '54000',
      );
    }
    return offset + length;
  }

  protected deliver(handle: FramerHandler, frame: Buffer): Buffer | undefined | typeof HOLD {
    return handle(frame[0]!, frame);
  }
}

/** The whole length (type byte included) of the message at `offset`; throws if its length field is impossible. */
function messageLength(data: Buffer, offset: number, from: string): number {
  const length = data.readInt32BE(offset + 1);
  if (length < 4) throw new ProtocolError(`invalid message length ${length}${from}`);
  return length + 1;
}

/** Decides what reaches the peer in place of a wanted message: the frame itself, a replacement, or nothing. */
export type MessageHandler = (type: number, frame: Buffer) => Buffer | undefined;

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
    return messageLength(data, offset, ' from server');
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
