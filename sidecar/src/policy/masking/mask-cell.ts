import { decodeBinary, encodeBinary } from './binary-codecs.ts';
import { MASK_FUNCTIONS, type MaskContext, type MaskMethod, REDACTED } from './mask-methods.ts';
import { arrayElementType, PG_TYPE, typeFamily } from './pg-types.ts';
import { prfOfBytes, TAG_VALUE } from './prf.ts';
import { tokenizeAsciiBytes } from './tokenize.ts';

/** PostgreSQL's format codes in Bind and RowDescription. */
export const TEXT_FORMAT = 0;
export const BINARY_FORMAT = 1;

/**
 * Masks one cell of a DataRow: the bytes of a value in the column's format, to the bytes to send
 * instead, or null to send SQL NULL (length -1). The returned bytes may be shared between calls and
 * must not be modified.
 */
export type CellMasker = (cell: Uint8Array, format: number) => Uint8Array | null;

/** Types whose binary form is their text form in UTF-8. */
const TEXT_LIKE = new Set<number>([
  PG_TYPE.text,
  PG_TYPE.varchar,
  PG_TYPE.name,
  PG_TYPE.unknown,
  PG_TYPE.bpchar,
  PG_TYPE.char,
]);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Characters in UTF-8 bytes: every byte that does not continue a sequence starts one. */
function utf8Characters(bytes: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < bytes.length; i++) if ((bytes[i]! & 0xc0) !== 0x80) count++;
  return count;
}

const starRuns: Buffer[] = [];

/** `*` repeated, shared per length up to 256 so that same-length redaction allocates nothing. */
function starsOf(count: number): Buffer {
  if (count > 256) return Buffer.alloc(count, '*');
  let run = starRuns[count];
  if (run === undefined) {
    run = Buffer.alloc(count, '*');
    starRuns[count] = run;
  }
  return run;
}

/**
 * A masker for one column, prepared once per RowDescription: the method, and a context naming the
 * column's type OID and typmod. Text-like columns redacted to a constant or to their own length
 * never decode the cell; other cells are decoded (binary ones through their type's send format),
 * masked as text by the method and encoded back. Binary cells of types without a codec here
 * (user-defined types, bool, time, interval, ...) become NULL.
 */
export function createCellMasker(method: MaskMethod, context: MaskContext): CellMasker {
  if (method === 'nullify') return () => null;
  const oid = context.typeOid ?? PG_TYPE.text;
  const mask = MASK_FUNCTIONS[method];
  if (method === 'redact' && TEXT_LIKE.has(oid)) {
    if (oid === PG_TYPE.bpchar || oid === PG_TYPE.char || context.redactStyle === 'same-length') {
      return (cell) => starsOf(utf8Characters(cell));
    }
    const constant = Buffer.from(mask(REDACTED, context) ?? REDACTED, 'utf8');
    return () => constant;
  }
  const maskText = (cell: Uint8Array): Uint8Array | null => {
    const masked = mask(asBuffer(cell).toString('utf8'), context);
    return masked === null ? null : Buffer.from(masked, 'utf8');
  };
  const family = typeFamily(oid);
  let maskBinary: CellMasker;
  if (family === 'bytea') maskBinary = byteaMasker(method, context);
  else if (family === 'array') maskBinary = arrayMasker(method, context);
  else maskBinary = (cell) => maskViaText(cell, oid, mask, context);
  const masker: CellMasker = (cell, format) =>
    format === BINARY_FORMAT ? maskBinary(cell, format) : maskText(cell);
  if (method === 'tokenize' && TEXT_LIKE.has(oid)) {
    // Both formats of these types are the UTF-8 text; ASCII values are tokenized as bytes, others
    // take the text path. char(n) trailing blanks are not part of the value (see `significant`).
    const mac = context.key.tokenize;
    const padded = family === 'bpchar';
    return (cell, format) => {
      let end = cell.length;
      if (padded) while (end > 0 && cell[end - 1] === 32) end--;
      return tokenizeAsciiBytes(asBuffer(cell), end, mac) ?? masker(cell, format);
    };
  }
  return masker;
}

/** One-off masking of a cell; prefer createCellMasker for a column's every row. */
export function maskCell(
  cell: Uint8Array,
  format: number,
  method: MaskMethod,
  context: MaskContext,
): Uint8Array | null {
  return createCellMasker(method, context)(cell, format);
}

function maskViaText(
  cell: Uint8Array,
  oid: number,
  mask: (value: string, context: MaskContext) => string | null,
  context: MaskContext,
): Uint8Array | null {
  const text = decodeBinary(oid, cell);
  if (text === null) return null;
  const masked = mask(text, context);
  return masked === null ? null : encodeBinary(oid, masked);
}

/** Binary bytea is the raw bytes: redact and partial empty them, hash and tokenize replace them. */
function byteaMasker(method: MaskMethod, context: MaskContext): CellMasker {
  switch (method) {
    case 'hash':
      return (cell) => context.key.hash.digest(cell);
    case 'tokenize':
      return (cell) =>
        prfOfBytes(context.key.tokenize, TAG_VALUE, cell, 0, cell.length, cell.length).slice(0, cell.length);
    default: {
      const empty = Buffer.alloc(0);
      return () => empty;
    }
  }
}

/**
 * array_send: dimensions, a has-nulls flag, the element type, each dimension's size and lower bound,
 * then each element as a 32-bit length (-1 for NULL) and its bytes. Elements are masked with the
 * element type's binary masker; the layout is kept.
 */
function arrayMasker(method: MaskMethod, context: MaskContext): CellMasker {
  const elementOid = arrayElementType(context.typeOid ?? PG_TYPE.text);
  if (elementOid === undefined) return () => null;
  const element = createCellMasker(method, { ...context, typeOid: elementOid });
  return (cell) => {
    const b = asBuffer(cell);
    if (b.length < 12) return null;
    const dimensions = b.readInt32BE(0);
    if (b.readUInt32BE(8) !== elementOid || dimensions < 0 || dimensions > 6) return null;
    let offset = 12;
    let count = dimensions === 0 ? 0 : 1;
    for (let d = 0; d < dimensions; d++) {
      count *= b.readInt32BE(offset);
      offset += 8;
    }
    const parts: Uint8Array[] = [b.subarray(0, offset)];
    let hasNull = false;
    for (let i = 0; i < count; i++) {
      if (offset + 4 > b.length) return null;
      const length = b.readInt32BE(offset);
      offset += 4;
      const masked = length < 0 ? null : element(b.subarray(offset, offset + length), BINARY_FORMAT);
      if (length > 0) offset += length;
      const header = Buffer.alloc(4);
      header.writeInt32BE(masked === null ? -1 : masked.length);
      parts.push(header);
      if (masked === null) hasNull = true;
      else parts.push(masked);
    }
    const out = Buffer.concat(parts);
    out.writeInt32BE(hasNull ? 1 : 0, 4);
    return out;
  };
}
