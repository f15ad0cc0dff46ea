import { BINARY_FORMAT, type CellMasker, createCellMasker } from '../../policy/masking/mask-cell.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import type { MaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE, typeFamily } from '../../policy/masking/pg-types.ts';
import type { StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
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

/** Per cell: the replacement (null for SQL NULL), or undefined to keep it. */
type CellRewrite = (cell: Buffer, format: number) => Uint8Array | null | undefined;

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
 */
export function createRowMasker(
  plan: StatementMaskPlan,
  fields: readonly ResultField[] | undefined,
  key: MaskingKey,
): RowMasker {
  const rewrites: CellRewrite[] = [];
  const count = fields?.length ?? 0;
  const rewriteAt = (i: number): CellRewrite => {
    let rewrite = rewrites[i];
    if (!rewrite) {
      rewrite = cellRewrite(
        plan.columns[i] ?? (i >= plan.columns.length ? plan.rest : undefined),
        fields?.[i],
        key,
      );
      rewrites[i] = rewrite;
    }
    return rewrite;
  };
  for (let i = 0; i < count; i++) rewriteAt(i);
  return (frame) => {
    const columns = frame.readInt16BE(5);
    let offset = 7;
    let changed: (Uint8Array | null | undefined)[] | undefined;
    for (let i = 0; i < columns; i++) {
      const length = frame.readInt32BE(offset);
      offset += 4;
      if (length < 0) continue;
      const cell = frame.subarray(offset, offset + length);
      offset += length;
      const format = fields?.[i]?.format ?? 0;
      const replacement = rewriteAt(i)(cell, format);
      if (replacement !== undefined) {
        changed ??= new Array(columns);
        changed[i] = replacement;
      }
    }
    return changed ? rebuild(frame, columns, changed) : frame;
  };
}

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
    return (cell, format) => masker(cell, format);
  }
  const family = field ? typeFamily(field.typeOid) : 'text';
  if (NOT_SCANNED.has(family)) return () => undefined;
  const jsonbBinary = field?.typeOid === PG_TYPE.jsonb;
  const textual = family === 'text' || family === 'bpchar' || family === 'json';
  return (cell, format) => {
    // Binary cells of text types are UTF-8 text too (jsonb behind a version byte); other binary
    // layouts (arrays, composites) are not text and are left to lineage.
    if (format === BINARY_FORMAT && !textual) return undefined;
    if (!mayHoldPii(cell)) return undefined;
    const skip = format === BINARY_FORMAT && jsonbBinary ? 1 : 0;
    const text = cell.toString('utf8', skip);
    const scrubbed = maskTextFreeform(text);
    if (scrubbed === text) return undefined;
    const masked = Buffer.from(scrubbed, 'utf8');
    return skip === 1 ? Buffer.concat([cell.subarray(0, 1), masked]) : masked;
  };
}

/** The shortest value a detector finds is 5 characters (`a@b.c`); blank padding holds nothing. */
function mayHoldPii(cell: Buffer): boolean {
  if (cell.length < 5) return false;
  for (let i = 0; i < cell.length; i++) if (cell[i] !== 0x20) return true;
  return false;
}

function rebuild(
  frame: Buffer,
  columns: number,
  changed: readonly (Uint8Array | null | undefined)[],
): Buffer {
  let size = 7;
  let offset = 7;
  const cells: { length: number; bytes: Uint8Array | undefined }[] = [];
  for (let i = 0; i < columns; i++) {
    const length = frame.readInt32BE(offset);
    offset += 4;
    const original = length < 0 ? undefined : frame.subarray(offset, offset + length);
    if (length > 0) offset += length;
    const replacement = changed[i];
    if (replacement === undefined) cells.push({ length, bytes: original });
    else if (replacement === null) cells.push({ length: -1, bytes: undefined });
    else cells.push({ length: replacement.length, bytes: replacement });
    size += 4 + Math.max(0, cells[i]!.length);
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = 68;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(columns, 5);
  let at = 7;
  for (const cell of cells) {
    out.writeInt32BE(cell.length, at);
    at += 4;
    if (cell.bytes && cell.length > 0) {
      out.set(cell.bytes, at);
      at += cell.length;
    }
  }
  return out;
}
