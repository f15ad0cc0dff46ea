import { mayFindSensitive } from '../../policy/masking/find-sensitive.ts';
import { createCellMasker, TEXT_FORMAT } from '../../policy/masking/mask-cell.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import type { MaskingKey } from '../../policy/masking/masking-key.ts';
import type { StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import { isScannedType } from './row-masker.ts';

/** Rewrites one CopyData message of a COPY ... TO STDOUT; returns the frame itself when nothing changed. */
export type CopyRowMasker = (frame: Buffer) => Buffer;

const COPY_DATA = 100;
const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
/** `\N`, the text format's NULL (the plan only allows COPY without a NULL option). */
const NULL_MARKER = Buffer.from('\\N');

/**
 * Client encodings in which a byte below 0x80 may be the second byte of a character, so that a tab,
 * newline or backslash byte need not be one: rows in them cannot be split by bytes. Every server
 * encoding is safe; these are the client-only ones.
 */
const ASCII_UNSAFE_ENCODINGS = new Set(['SJIS', 'SHIFT_JIS_2004', 'BIG5', 'GBK', 'UHC', 'GB18030', 'JOHAB']);

/** Whether COPY text rows in this client encoding split into fields by their tab bytes. */
export function copyTextSplitsSafely(clientEncoding: string | undefined): boolean {
  if (clientEncoding === undefined) return false;
  return !ASCII_UNSAFE_ENCODINGS.has(clientEncoding.toUpperCase().replaceAll('-', '_'));
}

/** The overall format (0 text, 1 binary) and column count of a CopyOutResponse. */
export function copyOutLayout(frame: Buffer): { format: number; columns: number } {
  return { format: frame[5]!, columns: frame.readInt16BE(6) };
}

/** Per field: the replacement bytes (null for NULL), or undefined to keep the field as it came. */
type FieldRewrite = (value: Buffer) => Uint8Array | null | undefined;

/**
 * The masker for the rows of one COPY ... TO STDOUT in PostgreSQL's text format with default
 * options, which the statement's plan allowed only in that case (see planStatementMasking).
 * PostgreSQL sends each row as one CopyData message: its fields separated by tabs, ended by a
 * newline, with tabs, newlines and backslashes inside values escaped, and `\N` for NULL. Each
 * masked field is unescaped, masked by the same cell masker a SELECT's text cell of that column
 * gets, and escaped again; a masked column whose type is not known becomes `\N`, which every type
 * accepts. Clear fields get the value scan a SELECT's clear cells get (masked ones do not: a
 * tokenized email must stay one). Anything that is not such a row (a message with no or another
 * newline, a different number of fields) throws, which ends the session rather than let a value
 * through unmasked.
 */
export function createCopyTextMasker(
  plan: StatementMaskPlan,
  layout: { format: number; columns: number },
  key: MaskingKey,
): CopyRowMasker {
  if (layout.format !== TEXT_FORMAT) throw new Error('COPY of masked columns answered in binary format');
  if (layout.columns !== plan.columns.length)
    throw new Error(
      `COPY answered with ${layout.columns} columns where Gatehouse planned masking for ${plan.columns.length}`,
    );
  const rewrites = plan.columns.map((mask, i): FieldRewrite | undefined => {
    const typeOid = plan.copyTypes?.[i];
    if (!mask) return isScannedType(typeOid) ? scanField : undefined;
    if (mask.method === 'nullify' || typeOid === undefined) return () => null;
    const masker = createCellMasker(mask.method, { key, kind: mask.kind, typeOid, typmod: -1 });
    return (value) => masker(value, TEXT_FORMAT);
  });
  return (frame) => {
    const end = frame.length - 1;
    if (end < 5 || frame[end] !== NEWLINE || frame.indexOf(NEWLINE, 5) !== end)
      throw new Error('COPY data message is not one row of the text format');
    const parts: Buffer[] = [];
    let changed = false;
    let start = 5;
    for (let i = 0; i < rewrites.length; i++) {
      const last = i === rewrites.length - 1;
      const tab = frame.indexOf(TAB, start);
      const tabInRow = tab >= 0 && tab < end;
      if (last && tabInRow) throw new Error('COPY row has more fields than columns');
      if (!last && !tabInRow) throw new Error('COPY row has fewer fields than columns');
      const stop = last ? end : tab;
      const field = frame.subarray(start, stop);
      const rewrite = rewrites[i];
      const replacement =
        rewrite && !field.equals(NULL_MARKER) ? rewrite(unescapeCopyText(field)) : undefined;
      if (replacement === undefined) parts.push(field);
      else {
        changed = true;
        parts.push(replacement === null ? NULL_MARKER : escapeCopyText(replacement));
      }
      parts.push(frame.subarray(stop, stop + 1));
      start = stop + 1;
    }
    if (!changed) return frame;
    const body = Buffer.concat(parts);
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = COPY_DATA;
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  };
}

/** The value scan of a clear field, as for a SELECT's clear text cell. */
function scanField(value: Buffer): Uint8Array | undefined {
  if (!mayFindSensitive(value)) return undefined;
  const text = value.toString('utf8');
  const scrubbed = maskTextFreeform(text);
  return scrubbed === text ? undefined : Buffer.from(scrubbed, 'utf8');
}

const ESCAPED: Record<number, number> = { 98: 8, 102: 12, 110: 10, 114: 13, 116: 9, 118: 11 };

/** A text-format field's bytes as PostgreSQL's COPY FROM would read them (octal and hex escapes too). */
export function unescapeCopyText(field: Uint8Array): Buffer {
  if (!field.includes(BACKSLASH)) return Buffer.from(field);
  const out: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const byte = field[i]!;
    if (byte !== BACKSLASH || i + 1 >= field.length) {
      out.push(byte);
      continue;
    }
    const next = field[++i]!;
    if (next >= 0x30 && next <= 0x37) {
      let value = next - 0x30;
      for (let n = 0; n < 2 && i + 1 < field.length && field[i + 1]! >= 0x30 && field[i + 1]! <= 0x37; n++)
        value = value * 8 + (field[++i]! - 0x30);
      out.push(value & 0xff);
    } else if (next === 0x78 && i + 1 < field.length && isHex(field[i + 1]!)) {
      let value = hexValue(field[++i]!);
      if (i + 1 < field.length && isHex(field[i + 1]!)) value = value * 16 + hexValue(field[++i]!);
      out.push(value);
    } else out.push(ESCAPED[next] ?? next);
  }
  return Buffer.from(out);
}

/** Bytes as a text-format field: backslash, tab, newline, carriage return and the other controls escaped. */
export function escapeCopyText(value: Uint8Array): Buffer {
  const out: number[] = [];
  for (const byte of value) {
    const letter = ESCAPE_LETTER[byte];
    if (letter !== undefined) out.push(BACKSLASH, letter);
    else out.push(byte);
  }
  return Buffer.from(out);
}

const ESCAPE_LETTER: Record<number, number> = { 8: 98, 9: 116, 10: 110, 11: 118, 12: 102, 13: 114, 92: 92 };

function isHex(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66);
}

function hexValue(byte: number): number {
  return byte <= 0x39 ? byte - 0x30 : (byte & 0x5f) - 0x41 + 10;
}
