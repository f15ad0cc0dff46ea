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
) => Buffer | undefined | typeof HOLD_COMMAND;

/** Returned by a handler: stop before this command and keep it (and what follows) until `resume`. */
export const HOLD_COMMAND: unique symbol = Symbol('hold command');

/**
 * Splits the client's byte stream into commands. A command that lies in one chunk is a view of it, and
 * consecutive commands forwarded unchanged leave as one slice of that chunk; only a command that spans
 * chunks is copied, once.
 */
export class CommandFramer {
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** Bytes the stashed command needs at least before it is worth looking at again. */
  private needed = 0;
  private readonly maxCommandBytes: number;
  private held = false;

  constructor(maxCommandBytes: number) {
    this.maxCommandBytes = maxCommandBytes;
  }

  push(chunk: Buffer, handle: CommandHandler, output: (bytes: Buffer) => void): void {
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
      const extent = this.commandExtent(data, offset);
      if (extent.end > end) {
        this.needed = extent.end - offset;
        break;
      }
      const frame = data.subarray(offset, extent.end);
      const payload = extent.packets === 1 ? frame.subarray(4) : joinPayloads(frame);
      const replacement = handle(frame, payload, extent.lastSeq);
      if (replacement === HOLD_COMMAND) {
        // The handler waits (for a catalog refresh): this command and the rest are read later.
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
        runStart = extent.end;
      }
      offset = extent.end;
    }
    if (offset > runStart) output(data.subarray(runStart, offset));
    if (offset < end) {
      const rest = Buffer.from(data.subarray(offset));
      this.parts = [rest];
      this.partsLength = rest.length;
    }
  }

  /** Whether a handler is holding the stream (see HOLD_COMMAND). */
  get holding(): boolean {
    return this.held;
  }

  /** Reads on after a hold: the held command is handed to `handle` again, then what came after it. */
  resume(handle: CommandHandler, output: (bytes: Buffer) => void): void {
    this.held = false;
    const data = Buffer.concat(this.parts, this.partsLength);
    this.parts = [];
    this.partsLength = 0;
    this.needed = 0;
    if (data.length > 0) this.push(data, handle, output);
  }

  /** Where the command at `offset` ends (possibly beyond `data`, as far as the headers seen tell). */
  private commandExtent(data: Buffer, offset: number): { end: number; packets: number; lastSeq: number } {
    let at = offset;
    let packets = 0;
    for (;;) {
      if (at + 4 > data.length) return { end: at + 4, packets, lastSeq: 0 };
      const length = data.readUIntLE(at, 3);
      const seq = data[at + 3]!;
      packets++;
      const next = at + 4 + length;
      if (next - offset > this.maxCommandBytes)
        throw new ProtocolError(`command of more than ${this.maxCommandBytes} bytes exceeds the limit`);
      if (length < MAX_PACKET_PAYLOAD || next > data.length) {
        if (length < MAX_PACKET_PAYLOAD) return { end: next, packets, lastSeq: seq };
        // A full packet whose continuation has not arrived: at least one more header is needed.
        return { end: next + 4, packets, lastSeq: seq };
      }
      at = next;
    }
  }
}

function joinPayloads(frame: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < frame.length) {
    const length = frame.readUIntLE(at, 3);
    parts.push(frame.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return Buffer.concat(parts);
}
