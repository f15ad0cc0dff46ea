import { ClientFramer, HOLD } from '../client-framer.ts';
import { MAX_PACKET_PAYLOAD } from './constants.ts';
import { ProtocolError } from './protocol-error.ts';

/**
 * Called with each whole command: `frame` is its raw bytes (every packet, headers included), `payload`
 * the command's payload joined across 16 MiB continuation packets, `lastSeq` the sequence id of its
 * last packet. Returns the bytes to forward in place of the frame: the frame itself, a replacement,
 * or nothing.
 */
export type CommandHandler = (
  frame: Buffer,
  payload: Buffer,
  lastSeq: number,
) => Buffer | undefined | typeof HOLD;

/** Returned by a handler: stop before this command and keep it (and what follows) until `resume`. */
export const HOLD_COMMAND: typeof HOLD = HOLD;

/**
 * Splits the client's byte stream into commands, a command being a packet and, when its payload
 * fills 16 MiB packets, their continuations. The mechanics are ClientFramer's.
 */
export class CommandFramer extends ClientFramer<CommandHandler> {
  private readonly maxCommandBytes: number;

  constructor(maxCommandBytes: number) {
    super();
    this.maxCommandBytes = maxCommandBytes;
  }

  protected frameEnd(data: Buffer, offset: number, end: number): number {
    let at = offset;
    for (;;) {
      if (at + 4 > end) return at + 4;
      const length = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
      const next = at + 4 + length;
      if (next - offset > this.maxCommandBytes)
        throw new ProtocolError(`command of more than ${this.maxCommandBytes} bytes exceeds the limit`);
      if (length < MAX_PACKET_PAYLOAD) return next;
      // A full packet: the payload goes on in the next one, whose header must come too.
      if (next > end) return next + 4;
      at = next;
    }
  }

  protected deliver(handle: CommandHandler, frame: Buffer): Buffer | undefined | typeof HOLD {
    // Only a command continued past a full packet is longer than one.
    if (frame.length < MAX_PACKET_PAYLOAD + 4) return handle(frame, frame.subarray(4), frame[3]!);
    return joinPackets(frame, handle);
  }
}

/** Hands over a command of several packets with its payloads joined and its last packet's sequence id. */
function joinPackets(frame: Buffer, handle: CommandHandler): Buffer | undefined | typeof HOLD {
  const parts: Buffer[] = [];
  let at = 0;
  let lastSeq = 0;
  while (at < frame.length) {
    const length = frame.readUIntLE(at, 3);
    lastSeq = frame[at + 3]!;
    parts.push(frame.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return handle(frame, Buffer.concat(parts), lastSeq);
}
