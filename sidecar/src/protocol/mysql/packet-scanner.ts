import { MAX_PACKET_PAYLOAD } from './constants.ts';
import { ProtocolError } from './protocol-error.ts';

/** Sees every packet's first byte (-1 for an empty packet) and length; true asks for the whole packet. */
export type PacketClassifier = (first: number, length: number) => boolean;
/** Receives a wanted packet (header included); returns what the client gets in its place. */
export type PacketHandler = (packet: Buffer) => Buffer | undefined;

/**
 * Follows packet boundaries in the server's stream. Packets the classifier does not want (rows, column
 * definitions) go out as runs of the chunk they came in, uncopied and unassembled; continuation packets
 * of a 16 MiB payload are never classified. Wanted packets are assembled and handed to the handler.
 */
export class PacketScanner {
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private skipRemaining = 0;
  private collecting: Buffer | undefined;
  private collectFill = 0;
  private continuation = false;
  private readonly maxPacketBytes: number;

  constructor(maxPacketBytes: number) {
    this.maxPacketBytes = maxPacketBytes;
  }

  scan(
    chunk: Buffer,
    classify: PacketClassifier,
    handle: PacketHandler,
    output: (bytes: Buffer) => void,
  ): void {
    let offset = 0;
    let runStart = 0;
    const end = chunk.length;
    const flushRun = (upTo: number) => {
      if (upTo > runStart) output(chunk.subarray(runStart, upTo));
      runStart = upTo;
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
          const whole = this.collecting;
          this.collecting = undefined;
          const out = handle(whole);
          if (out) output(out);
        }
        continue;
      }
      if (this.headerFill === 0 && end - offset >= 5) {
        const length = chunk.readUIntLE(offset, 3);
        const packetEnd = offset + 4 + length;
        const wanted = this.wants(length === 0 ? -1 : chunk[offset + 4]!, length, classify);
        if (!wanted) {
          if (packetEnd <= end) offset = packetEnd;
          else {
            this.skipRemaining = packetEnd - end;
            offset = end;
          }
          continue;
        }
        if (packetEnd <= end) {
          const whole = chunk.subarray(offset, packetEnd);
          const out = handle(whole);
          if (out !== whole) {
            flushRun(offset);
            if (out) output(out);
            runStart = packetEnd;
          }
          offset = packetEnd;
          continue;
        }
        flushRun(offset);
        this.startCollecting(length, chunk.subarray(offset, end));
        offset = end;
        runStart = end;
        continue;
      }
      // The header (and the first payload byte) straddle chunks: hold them back until known.
      if (this.headerFill === 0) flushRun(offset);
      const target = this.headerFill >= 4 && this.header.readUIntLE(0, 3) === 0 ? 4 : 5;
      const n = Math.min(target - this.headerFill, end - offset);
      chunk.copy(this.header, this.headerFill, offset, offset + n);
      this.headerFill += n;
      offset += n;
      runStart = offset;
      if (this.headerFill === 4 && this.header.readUIntLE(0, 3) !== 0) continue;
      if (this.headerFill < 4) continue;
      const length = this.header.readUIntLE(0, 3);
      const got = this.headerFill;
      this.headerFill = 0;
      const wanted = this.wants(length === 0 ? -1 : this.header[4]!, length, classify);
      if (!wanted) {
        output(Buffer.from(this.header.subarray(0, got)));
        this.skipRemaining = length - (got - 4);
        continue;
      }
      this.startCollecting(length, this.header.subarray(0, got));
      if (this.collectFill === this.collecting!.length) {
        const whole = this.collecting!;
        this.collecting = undefined;
        const out = handle(whole);
        if (out) output(out);
      }
    }
    flushRun(end);
  }

  private wants(first: number, length: number, classify: PacketClassifier): boolean {
    const continued = this.continuation;
    this.continuation = length === MAX_PACKET_PAYLOAD;
    if (continued) return false;
    return classify(first, length);
  }

  private startCollecting(length: number, start: Buffer): void {
    if (length + 4 > this.maxPacketBytes)
      throw new ProtocolError(
        `server packet of ${length + 4} bytes exceeds the limit of ${this.maxPacketBytes}`,
      );
    this.collecting = Buffer.allocUnsafe(length + 4);
    start.copy(this.collecting, 0);
    this.collectFill = start.length;
  }
}
