import { mayFindSensitive } from '../../policy/masking/find-sensitive.ts';
import { BINARY_FORMAT, type CellMasker, createCellMasker } from '../../policy/masking/mask-cell.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import type { MaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE, typeFamily } from '../../policy/masking/pg-types.ts';
import { exemptInForce, type StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import { readCString } from './message-fields.ts';

/** One column of a RowDescription, as masking needs it. */
export interface ResultField {
  readonly name: string;
  readonly typeOid: number;
  readonly typmod: number;
  /** 0 text, 1 binary; from Describe of a statement always 0, so Bind's formats decide. */
  readonly format: number;
}

/** Rewrites one DataRow message; returns the frame itself when no cell changed. */
export type RowMasker = (frame: Buffer) => Buffer;

/** Per cell frame[start..end): the replacement (null for SQL NULL), or undefined to keep it. */
type CellRewrite = (
  frame: Buffer,
  start: number,
  end: number,
  format: number,
) => Uint8Array | null | undefined;

export function rowDescriptionFields(frame: Buffer): ResultField[] {
  const count = frame.readInt16BE(5);
  const fields: ResultField[] = [];
  let offset = 7;
  for (let i = 0; i < count; i++) {
    const [name, next] = readCString(frame, offset);
    offset = next;
    fields.push({
      name,
      typeOid: frame.readUInt32BE(offset + 6),
      typmod: frame.readInt32BE(offset + 12),
      format: frame.readInt16BE(offset + 16),
    });
    offset += 18;
  }
  return fields;
}

/**
 * Result formats from a Bind message: none means all text, one applies to every column, else one
 * per column.
 */
export function bindResultFormats(frame: Buffer): number[] {
  let offset = frame.indexOf(0, 5) + 1; // portal
  offset = frame.indexOf(0, offset) + 1; // statement
  const paramFormats = frame.readInt16BE(offset);
  offset += 2 + 2 * paramFormats;
  const params = frame.readInt16BE(offset);
  offset += 2;
  for (let i = 0; i < params; i++) {
    const length = frame.readInt32BE(offset);
    offset += 4 + Math.max(length, 0);
  }
  const count = frame.readInt16BE(offset);
  offset += 2;
  const formats: number[] = [];
  for (let i = 0; i < count; i++) formats.push(frame.readInt16BE(offset + 2 * i));
  return formats;
}

/** The format of column `i` under Bind's result-format list. */
export function formatAt(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

/** Types whose values are numbers, dates, addresses or flags: the value scan has nothing to find there. */
const NOT_SCANNED = new Set(['integer', 'numeric', 'float', 'uuid', 'inet', 'date', 'timestamp', 'bool']);

/** Whether the value scan reads cells of this type (unknown types: yes). */
export function isScannedType(typeOid: number | undefined): boolean {
  return typeOid === undefined || !NOT_SCANNED.has(typeFamily(typeOid));
}

/**
 * Whether a result needs its rows read at all: some column is masked, or may hold text the value
 * scan must look at. Results of numbers and dates only, with no masked column, pass uncopied.
 */
export function needsRowInspection(
  plan: StatementMaskPlan,
  fields: readonly ResultField[] | undefined,
): boolean {
  // Unknown columns: their types may be text, which the value scan reads.
  if (!fields) return true;
  if (plan.columns.some((mask) => mask !== undefined)) return true;
  if (plan.rest && fields.length > plan.columns.length) return true;
  return fields.some((field) => !NOT_SCANNED.has(typeFamily(field.typeOid)));
}

/**
 * The DataRow rewriter for one result. `fields` may be unknown (an Execute whose portal was never
 * described): masked columns then become NULL, which every type accepts, and text cells are scanned.
 * A row allocates nothing unless a cell changes, and then only the new frame.
 */
export function createRowMasker(
  plan: StatementMaskPlan,
  fields: readonly ResultField[] | undefined,
  key: MaskingKey,
): RowMasker {
  const rewrites: CellRewrite[] = [];
  const formats: number[] = [];
  const rewriteAt = (i: number): CellRewrite => {
    let rewrite = rewrites[i];
    if (!rewrite) {
      // An exempt pass-through is shown as approved: neither masked nor value-scanned.
      rewrite = exemptInForce(plan, i)
        ? keep
        : cellRewrite(
            plan.columns[i] ?? (i >= plan.columns.length ? plan.rest : undefined),
            fields?.[i],
            key,
          );
      rewrites[i] = rewrite;
      formats[i] = fields?.[i]?.format ?? 0;
    }
    return rewrite;
  };
  for (let i = 0; i < (fields?.length ?? 0); i++) rewriteAt(i);
  // Per column, reused row after row: the replacement and where the original cell's length sits.
  const replacements: (Uint8Array | null | undefined)[] = [];
  const at: number[] = [];
  // Set while a row's replacements are pending: a row that threw halfway leaves none for the next.
  let pending = false;
  return (frame) => {
    if (pending) replacements.fill(undefined);
    const columns = frame.readInt16BE(5);
    let offset = 7;
    let first = -1;
    let size = frame.length;
    for (let i = 0; i < columns; i++) {
      const length = frame.readInt32BE(offset);
      const start = offset;
      offset += 4;
      if (length < 0) continue;
      offset += length;
      const replacement = rewriteAt(i)(frame, offset - length, offset, formats[i]!);
      if (replacement === undefined) continue;
      if (first < 0) first = i;
      pending = true;
      replacements[i] = replacement;
      at[i] = start;
      size += (replacement === null ? 0 : replacement.length) - length;
    }
    if (first < 0) return frame;
    const out = rebuild(frame, columns, first, size, replacements, at);
    pending = false;
    return out;
  };
}

/**
 * The frame with the replaced cells (from `first` on; replacements[i] set for each, then cleared)
 * written over, the unchanged runs between them copied whole. Byte loops and shifts, not Buffer's
 * copy and writeInt32BE, whose argument checks cost more than the few bytes a row moves.
 */
function rebuild(
  frame: Buffer,
  columns: number,
  first: number,
  size: number,
  replacements: (Uint8Array | null | undefined)[],
  at: readonly number[],
): Buffer {
  const out = Buffer.allocUnsafe(size);
  let copied = 0;
  let written = 0;
  for (let i = first; i < columns; i++) {
    const replacement = replacements[i];
    if (replacement === undefined) continue;
    replacements[i] = undefined;
    const start = at[i]!;
    written = copyBytes(frame, copied, start, out, written);
    const length =
      (frame[start]! << 24) | (frame[start + 1]! << 16) | (frame[start + 2]! << 8) | frame[start + 3]!;
    copied = start + 4 + Math.max(0, length);
    written = writeInt32(out, written, replacement === null ? -1 : replacement.length);
    if (replacement !== null) written = copyBytes(replacement, 0, replacement.length, out, written);
  }
  copyBytes(frame, copied, frame.length, out, written);
  writeInt32(out, 1, size - 1);
  return out;
}

function copyBytes(from: Uint8Array, start: number, end: number, to: Uint8Array, at: number): number {
  if (end - start > 64) {
    to.set(from.subarray(start, end), at);
    return at + end - start;
  }
  for (let i = start; i < end; i++) to[at++] = from[i]!;
  return at;
}

function writeInt32(to: Uint8Array, at: number, value: number): number {
  to[at] = value >>> 24;
  to[at + 1] = value >>> 16;
  to[at + 2] = value >>> 8;
  to[at + 3] = value;
  return at + 4;
}

const keep: CellRewrite = () => undefined;

function cellRewrite(
  mask: StatementMaskPlan['rest'],
  field: ResultField | undefined,
  key: MaskingKey,
): CellRewrite {
  if (mask) {
    if (!field) return () => null;
    const masker: CellMasker = createCellMasker(mask.method, {
      key,
      kind: mask.kind,
      typeOid: field.typeOid,
      typmod: field.typmod,
    });
    return (frame, start, end, format) => masker(frame.subarray(start, end), format);
  }
  const family = field ? typeFamily(field.typeOid) : 'text';
  if (NOT_SCANNED.has(family)) return () => undefined;
  const jsonbBinary = field?.typeOid === PG_TYPE.jsonb;
  const textual = family === 'text' || family === 'bpchar' || family === 'json';
  return (frame, start, end, format) => {
    // Binary cells of text types are UTF-8 text too (jsonb behind a version byte); other binary
    // layouts (arrays, composites) are not text and are left to lineage.
    if (format === BINARY_FORMAT && !textual) return undefined;
    const skip = format === BINARY_FORMAT && jsonbBinary ? 1 : 0;
    // Most cells are told apart from anything sensitive by one pass over their bytes.
    if (!mayFindSensitive(frame, start + skip, end)) return undefined;
    const cell = frame.subarray(start, end);
    const text = cell.toString('utf8', skip);
    const scrubbed = maskTextFreeform(text);
    if (scrubbed === text) return undefined;
    const masked = Buffer.from(scrubbed, 'utf8');
    return skip === 1 ? Buffer.concat([cell.subarray(0, 1), masked]) : masked;
  };
}
