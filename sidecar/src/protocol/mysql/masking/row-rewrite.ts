import { classifyValue } from '../../../policy/masking/classify-value.ts';
import { mayFindSensitive } from '../../../policy/masking/find-sensitive.ts';
import { createCellMasker, TEXT_FORMAT } from '../../../policy/masking/mask-cell.ts';
import { type MaskContext, maskValue } from '../../../policy/masking/mask-methods.ts';
import { maskTextFreeform } from '../../../policy/masking/mask-text-freeform.ts';
import type { MaskingKey } from '../../../policy/masking/masking-key.ts';
import type { ResultMask } from '../../../policy/masking/mysql-result-masks.ts';
import { PG_TYPE } from '../../../policy/masking/pg-types.ts';
import { BINARY_SIZE, type ColumnType, MYSQL_TYPE } from '../binary-cells.ts';
import { PayloadReader, PayloadWriter } from '../packet-io.ts';

const BINARY_CHARSET = 63;

/** The PostgreSQL type whose text format matches MySQL's for the masking functions. */
function pgTypeOf(column: ColumnType): number {
  switch (column.type) {
    case MYSQL_TYPE.TINY:
    case MYSQL_TYPE.SHORT:
    case MYSQL_TYPE.INT24:
    case MYSQL_TYPE.YEAR:
      return PG_TYPE.int4;
    case MYSQL_TYPE.LONG:
    case MYSQL_TYPE.LONGLONG:
      return PG_TYPE.int8;
    case MYSQL_TYPE.DECIMAL:
    case MYSQL_TYPE.NEWDECIMAL:
      return PG_TYPE.numeric;
    case MYSQL_TYPE.FLOAT:
    case MYSQL_TYPE.DOUBLE:
      return PG_TYPE.float8;
    case MYSQL_TYPE.DATE:
    case MYSQL_TYPE.NEWDATE:
      return PG_TYPE.date;
    case MYSQL_TYPE.DATETIME:
    case MYSQL_TYPE.TIMESTAMP:
      return PG_TYPE.timestamp;
    case MYSQL_TYPE.TIME:
      return PG_TYPE.time;
    case MYSQL_TYPE.JSON:
      return PG_TYPE.json;
    default:
      return PG_TYPE.text;
  }
}

export interface RowMasking {
  readonly key: MaskingKey;
  readonly scanValues: boolean;
}

/** A cell's bytes to what replaces them (null: SQL NULL), or undefined to keep them. */
type CellRewrite = (bytes: Buffer) => Uint8Array | null | undefined;

interface Prepared {
  readonly mask: ResultMask;
  readonly masking: RowMasking;
  readonly rewrites: readonly (CellRewrite | undefined)[];
}

/** Per result (its column list, kept by the session for all its rows): the cell rewriters. */
const prepared = new WeakMap<readonly ColumnType[], Prepared>();

/**
 * The plan as it applies to a result of these columns: a plan of one mask per column that the result
 * does not match (the server re-prepared the statement to another shape since it was planned, or a
 * table gained columns since the session's catalog was read) tells no column apart, so every one is
 * masked. An empty plan masks nothing, whatever the columns.
 */
function fitted(columns: readonly ColumnType[], mask: ResultMask): ResultMask {
  return mask !== 'all' && mask.length > 0 && mask.length !== columns.length ? 'all' : mask;
}

function rewritesFor(
  columns: readonly ColumnType[],
  mask: ResultMask,
  masking: RowMasking,
): readonly (CellRewrite | undefined)[] {
  const known = prepared.get(columns);
  if (known && known.mask === mask && known.masking === masking && known.rewrites.length === columns.length)
    return known.rewrites;
  const rewrites = columns.map((column, i) => cellRewrite(column, mask, i, masking));
  prepared.set(columns, { mask, masking, rewrites });
  return rewrites;
}

/**
 * One column's cells: the column's mask when it has one (PostgreSQL's cell maskers, on the text
 * MySQL sends for both protocols' string-like values), else (autoDetect) the value scan, which a
 * pass over the bytes mostly answers before anything is decoded.
 */
function cellRewrite(
  column: ColumnType,
  mask: ResultMask,
  index: number,
  masking: RowMasking,
): CellRewrite | undefined {
  const columnMask = mask === 'all' ? { method: 'redact' as const, kind: null } : mask[index];
  // An exempt pass-through is shown as approved: neither masked nor value-scanned.
  if (columnMask?.exempt !== undefined && Date.now() < columnMask.exempt.until) return undefined;
  const typeOid = pgTypeOf(column);
  const binaryCharset = column.charset === BINARY_CHARSET;
  if (columnMask) {
    if (binaryCharset) {
      // Bytes, not UTF-8: masked as Latin-1 text so that every byte survives the round trip.
      const context: MaskContext = { key: masking.key, kind: columnMask.kind, typeOid };
      return (bytes) => {
        const masked = maskValue(bytes.toString('latin1'), columnMask.method, context);
        return masked === null ? null : Buffer.from(masked, 'latin1');
      };
    }
    const masker = createCellMasker(columnMask.method, { key: masking.key, kind: columnMask.kind, typeOid });
    return (bytes) => masker(bytes, TEXT_FORMAT);
  }
  if (!masking.scanValues) return undefined;
  if (typeOid === PG_TYPE.text || typeOid === PG_TYPE.json) {
    if (binaryCharset) return undefined;
    return (bytes) => {
      if (!mayFindSensitive(bytes)) return undefined;
      const text = bytes.toString('utf8');
      const scrubbed = maskTextFreeform(text, { key: masking.key });
      return scrubbed === text ? undefined : Buffer.from(scrubbed, 'utf8');
    };
  }
  // A number can be a card or an SSN too.
  if (typeOid === PG_TYPE.int8 || typeOid === PG_TYPE.numeric) {
    return (bytes) => {
      const text = bytes.toString('latin1');
      if (!classifyValue(text)) return undefined;
      return Buffer.from(maskValue(text, 'redact', { key: masking.key, typeOid }) ?? '0', 'latin1');
    };
  }
  return undefined;
}

/** A text-protocol row with its cells masked; the input itself when nothing changed. */
export function maskTextRow(
  payload: Buffer,
  columns: readonly ColumnType[],
  mask: ResultMask,
  masking: RowMasking,
): Buffer {
  const rewrites = rewritesFor(columns, fitted(columns, mask), masking);
  const r = new PayloadReader(payload);
  let out: PayloadWriter | undefined;
  let copied = 0;
  for (let i = 0; i < columns.length; i++) {
    if (payload[r.offset] === 0xfb) {
      r.skip(1);
      continue;
    }
    const start = r.offset;
    const bytes = r.lenencBytes();
    const rewrite = rewrites[i];
    const masked = rewrite?.(bytes);
    if (masked === undefined) continue;
    // The first change starts the new row: everything before it is copied as it came.
    out ??= new PayloadWriter();
    out.bytes(payload.subarray(copied, start));
    copied = r.offset;
    if (masked === null) out.u8(0xfb);
    else out.lenencBytes(Buffer.from(masked.buffer, masked.byteOffset, masked.byteLength));
  }
  if (!out) return payload;
  out.bytes(payload.subarray(copied));
  return out.build();
}

/**
 * A binary-protocol row (COM_STMT_EXECUTE) with its cells masked. String-like values are masked as
 * text; a masked value of a fixed-size or temporal type becomes NULL (its binary form cannot carry the
 * masks' text).
 */
export function maskBinaryRow(
  payload: Buffer,
  columns: readonly ColumnType[],
  planned: ResultMask,
  masking: RowMasking,
): Buffer {
  const mask = fitted(columns, planned);
  const rewrites = rewritesFor(columns, mask, masking);
  const bitmapLength = (columns.length + 7 + 2) >> 3;
  const r = new PayloadReader(payload, 1);
  const bitmap = Buffer.from(r.bytes(bitmapLength));
  const values: Buffer[] = [];
  let changed = false;
  for (let i = 0; i < columns.length; i++) {
    const bit = i + 2;
    if (bitmap[bit >> 3]! & (1 << (bit & 7))) continue;
    const column = columns[i]!;
    const size = BINARY_SIZE[column.type];
    const start = r.offset;
    if (size === undefined) {
      const bytes = r.lenencBytes();
      const masked = rewrites[i]?.(bytes);
      if (masked === undefined) values.push(payload.subarray(start, r.offset));
      else {
        changed = true;
        if (masked === null) bitmap[bit >> 3]! |= 1 << (bit & 7);
        else
          values.push(
            new PayloadWriter()
              .lenencBytes(Buffer.from(masked.buffer, masked.byteOffset, masked.byteLength))
              .build(),
          );
      }
      continue;
    }
    r.skip(size >= 0 ? size : r.u8());
    const masked =
      mask === 'all' || mask[i] !== undefined || sensitiveNumber(payload, start, column, masking);
    if (masked) {
      changed = true;
      bitmap[bit >> 3]! |= 1 << (bit & 7);
    } else values.push(payload.subarray(start, r.offset));
  }
  if (!changed) return payload;
  return Buffer.concat([payload.subarray(0, 1), bitmap, ...values]);
}

/** A BIGINT that the value scan takes for a card number or an SSN. */
function sensitiveNumber(payload: Buffer, at: number, column: ColumnType, masking: RowMasking): boolean {
  if (!masking.scanValues || column.type !== MYSQL_TYPE.LONGLONG) return false;
  return classifyValue(payload.readBigInt64LE(at).toString()) !== null;
}
