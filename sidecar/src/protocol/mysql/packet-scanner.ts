import { FrameScanner } from '../frame-scanner.ts';
import { MAX_PACKET_PAYLOAD } from './constants.ts';
import { ProtocolError } from './protocol-error.ts';

/** Sees every packet's first byte (-1 for an empty packet) and length; true asks for the whole packet. */
export type PacketClassifier = (first: number, length: number) => boolean;
/** Receives a wanted packet (header included); returns what the client gets in its place. */
export type PacketHandler = (packet: Buffer) => Buffer | undefined;

/**
 * Follows packet boundaries in the server's stream. Packets the classifier does not want (rows, column
 * definitions) go out as runs of the chunk they came in, uncopied and unassembled; continuation packets
 * of a 16 MiB payload are never classified. Wanted packets are assembled and handed to the handler. The
 * mechanics are FrameScanner's; a packet's header is a 3-byte length and a sequence id, and it is
 * classified by its first payload byte.
 */
export class PacketScanner extends FrameScanner<PacketHandler> {
  /** The packet before this one was full: this one continues its payload. */
  private continuation = false;
  /** The classifier of the scan under way. */
  private classify: PacketClassifier = () => false;

  constructor(maxPacketBytes: number) {
    super({ lengthBytes: 4, peekBytes: 5 }, maxPacketBytes);
  }

  scan(
    chunk: Buffer,
    classify: PacketClassifier,
    handle: PacketHandler,
    output: (bytes: Buffer) => void,
  ): void {
    this.classify = classify;
    this.scanFrames(chunk, handle, output);
  }

  protected frameLength(data: Buffer, offset: number): number {
    return data.readUIntLE(offset, 3) + 4;
  }

  protected wants(data: Buffer, offset: number, length: number): boolean {
    const continued = this.continuation;
    this.continuation = length === MAX_PACKET_PAYLOAD + 4;
    if (continued) return false;
    return this.classify(length === 4 ? -1 : data[offset + 4]!, length - 4);
  }

  protected deliver(handle: PacketHandler, packet: Buffer): Buffer | undefined {
    return handle(packet);
  }

  protected tooLarge(length: number, limit: number): Error {
    return new ProtocolError(`server packet of ${length} bytes exceeds the limit of ${limit}`);
  }
}
