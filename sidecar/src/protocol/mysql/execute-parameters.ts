import { parametersHash } from '../../approvals/approval-request.ts';
import { PayloadReader } from './packet-io.ts';
import { ProtocolError } from './protocol-error.ts';

/**
 * The bound parameters of a COM_STMT_EXECUTE, read so that an approval can be bound to them: the same
 * values sent with the same types give the same digest (approval-request.ts parametersHash, the one
 * PostgreSQL's Bind uses), and any other values or types another.
 *
 * Canonical form, per parameter: its type as a 16-bit code (the type byte, and the flags byte, 0x80 for
 * unsigned, shifted left 8) in place of PostgreSQL's format code, and its value: NULL (from the null
 * bitmap) apart from every value; the bytes after the length prefix for strings, decimals, blobs and
 * JSON; the little-endian bytes as sent for numbers; a DATE, DATETIME or TIMESTAMP padded with zero
 * bytes to its 11-byte form and a TIME to its 12-byte form, since the protocol lets a client drop
 * trailing zero fields (a midnight DATETIME may be 4 bytes or 11), and the server reads both alike.
 */

/** MySQL binary-protocol types, and how their values are laid out. */
const FIXED_LENGTH: ReadonlyMap<number, number> = new Map([
  [0x01, 1], // TINY
  [0x02, 2], // SHORT
  [0x03, 4], // LONG
  [0x04, 4], // FLOAT
  [0x05, 8], // DOUBLE
  [0x06, 0], // NULL
  [0x08, 8], // LONGLONG
  [0x09, 4], // INT24
  [0x0d, 2], // YEAR
]);
/** DATE, TIMESTAMP and DATETIME: a length byte, then 0, 4, 7 or 11 bytes. */
const DATE_TYPES: ReadonlySet<number> = new Set([0x07, 0x0a, 0x0c]);
const DATE_LENGTHS: ReadonlySet<number> = new Set([0, 4, 7, 11]);
/** TIME: a length byte, then 0, 8 or 12 bytes. */
const TIME_TYPE = 0x0b;
const TIME_LENGTHS: ReadonlySet<number> = new Set([0, 8, 12]);
/** Length-encoded strings: DECIMAL, VARCHAR, BIT, JSON, NEWDECIMAL, ENUM, SET, the BLOBs, VAR_STRING, STRING, GEOMETRY. */
const LENGTH_ENCODED: ReadonlySet<number> = new Set([
  0x00, 0x0f, 0x10, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
]);

/** Flags of COM_STMT_EXECUTE that change its layout or what it does (cursors, a parameter count). */
const LAYOUT_FLAGS = 0x0f;

export interface ExecuteParameters {
  /** The digest an approval of this execution is bound to ('' without parameters). */
  readonly hash: string;
  /** The types the parameters were read with (type | flags << 8): what the server uses for them. */
  readonly types: readonly number[];
  /**
   * The command rewritten to carry those types itself, when the client relied on types bound by an
   * earlier execution: the server then reads the values exactly as they were hashed.
   */
  readonly rebound?: Buffer;
}

/**
 * Reads the parameters of a COM_STMT_EXECUTE `payload` for a statement of `count` parameters.
 * `bound` are the types the client last sent for this statement, used when this execution sends
 * none. A string says why they cannot be read (the execution is then refused, never guessed at).
 */
export function executeParameters(
  payload: Buffer,
  count: number,
  bound: readonly number[] | undefined,
): ExecuteParameters | string {
  try {
    return readParameters(payload, count, bound);
  } catch (error) {
    if (error instanceof ProtocolError) return `its parameters could not be read (${error.message})`;
    throw error;
  }
}

function readParameters(
  payload: Buffer,
  count: number,
  bound: readonly number[] | undefined,
): ExecuteParameters | string {
  const r = new PayloadReader(payload, 1);
  r.skip(4); // statement id
  const flags = r.u8();
  if (flags & LAYOUT_FLAGS) return `its flags 0x${flags.toString(16)} are not read by Gatehouse`;
  r.skip(4); // iteration count
  if (count === 0) {
    if (r.remaining > 0) return 'it carries parameters its statement does not have';
    return { hash: '', types: [] };
  }
  const nulls = r.bytes((count + 7) >> 3);
  const typesStart = r.offset;
  const newTypes = r.u8();
  let types: number[];
  let rebound: Buffer | undefined;
  if (newTypes === 1) {
    types = [];
    for (let i = 0; i < count; i++) types.push(r.u16());
  } else if (newTypes === 0) {
    if (!bound || bound.length !== count) return 'it relies on parameter types no earlier execution bound';
    types = [...bound];
    const typeBytes = Buffer.alloc(1 + 2 * count);
    typeBytes[0] = 1;
    for (const [i, type] of types.entries()) typeBytes.writeUInt16LE(type, 1 + 2 * i);
    rebound = Buffer.concat([payload.subarray(0, typesStart), typeBytes, payload.subarray(typesStart + 1)]);
  } else return `its new-params-bound flag ${newTypes} is neither 0 nor 1`;
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) {
    if (nulls[i >> 3]! & (1 << (i & 7))) {
      values.push(null);
      continue;
    }
    const value = readValue(r, types[i]! & 0xff);
    if (typeof value === 'string') return value;
    values.push(value);
  }
  if (r.remaining > 0) return 'it carries bytes after its last parameter';
  return { hash: parametersHash(values, types), types, ...(rebound && { rebound }) };
}

function readValue(r: PayloadReader, type: number): Buffer | string {
  const fixed = FIXED_LENGTH.get(type);
  if (fixed !== undefined) return Buffer.from(r.bytes(fixed));
  if (LENGTH_ENCODED.has(type)) return Buffer.from(r.lenencBytes());
  if (DATE_TYPES.has(type) || type === TIME_TYPE) {
    const length = r.u8();
    const lengths = type === TIME_TYPE ? TIME_LENGTHS : DATE_LENGTHS;
    if (!lengths.has(length)) return `a temporal parameter of ${length} bytes`;
    const full = Buffer.alloc(type === TIME_TYPE ? 12 : 11);
    r.bytes(length).copy(full);
    return full;
  }
  return `a parameter of type 0x${type.toString(16)}, which Gatehouse does not read`;
}
