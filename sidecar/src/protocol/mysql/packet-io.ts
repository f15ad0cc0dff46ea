import { MAX_PACKET_PAYLOAD } from './constants.ts';
import { ProtocolError } from './protocol-error.ts';

/** Frames `payload` as packets starting at sequence `seq`, splitting it at 16 MiB as the protocol requires. */
export function packet(payload: Buffer, seq: number): Buffer {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const out = Buffer.allocUnsafe(4 + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, 4);
    return out;
  }
  const parts: Buffer[] = [];
  let offset = 0;
  let s = seq;
  // A payload that is an exact multiple of the maximum ends with an empty packet.
  while (true) {
    const n = Math.min(MAX_PACKET_PAYLOAD, payload.length - offset);
    const header = Buffer.allocUnsafe(4);
    header.writeUIntLE(n, 0, 3);
    header[3] = s++ & 0xff;
    parts.push(header, payload.subarray(offset, offset + n));
    offset += n;
    if (n < MAX_PACKET_PAYLOAD) break;
  }
  return Buffer.concat(parts);
}

/** Reads protocol fields from one payload; every read is bounds-checked and throws a ProtocolError. */
export class PayloadReader {
  readonly buffer: Buffer;
  offset: number;

  constructor(buffer: Buffer, offset = 0) {
    this.buffer = buffer;
    this.offset = offset;
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(n: number): void {
    if (this.offset + n > this.buffer.length) throw new ProtocolError('truncated packet');
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buffer.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }

  /** A length-encoded integer; values beyond 2^53 are refused rather than rounded. */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) {
      this.need(3);
      const v = this.buffer.readUIntLE(this.offset, 3);
      this.offset += 3;
      return v;
    }
    if (first === 0xfe) {
      this.need(8);
      const v = this.buffer.readBigUInt64LE(this.offset);
      this.offset += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('length-encoded integer too large');
      return Number(v);
    }
    throw new ProtocolError(`invalid length-encoded integer prefix 0x${first.toString(16)}`);
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenenc());
  }

  /** A NUL-terminated string; `optionalEnd` accepts the end of the payload in place of the NUL. */
  nulBytes(optionalEnd = false): Buffer {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) {
      if (!optionalEnd) throw new ProtocolError('unterminated string in packet');
      return this.bytes(this.remaining);
    }
    const v = this.buffer.subarray(this.offset, end);
    this.offset = end + 1;
    return v;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

/** Builds a payload field by field. */
export class PayloadWriter {
  private readonly parts: Buffer[] = [];

  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  u16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(v, 0);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v >>> 0, 0);
    this.parts.push(b);
    return this;
  }

  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

  zeros(n: number): this {
    this.parts.push(Buffer.alloc(n));
    return this;
  }

  nul(text: string | Buffer): this {
    this.parts.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, Buffer.from([0]));
    return this;
  }

  lenenc(n: number): this {
    if (n < 0xfb) return this.u8(n);
    if (n < 0x10000) return this.u8(0xfc).u16(n);
    if (n < 0x1000000) {
      const b = Buffer.allocUnsafe(4);
      b[0] = 0xfd;
      b.writeUIntLE(n, 1, 3);
      this.parts.push(b);
      return this;
    }
    const b = Buffer.allocUnsafe(9);
    b[0] = 0xfe;
    b.writeBigUInt64LE(BigInt(n), 1);
    this.parts.push(b);
    return this;
  }

  lenencBytes(b: Buffer | string): this {
    const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    return this.lenenc(bytes.length).bytes(bytes);
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}
