import type { EvidenceRecord } from './evidence-input.ts';

/** Where a row came from: enough to find its line again (`gatehouse audit verify`, `jq 'select(.seq==N)'`). */
export interface RowOrigin {
  readonly source: string;
  readonly seq: number;
  readonly time: string;
  /** False when the source's chain did not verify up to this record. */
  readonly verified: boolean;
}

export function originOf(record: EvidenceRecord): RowOrigin {
  return { source: record.source, seq: record.seq, time: record.time, verified: record.verified };
}

/** A record field as a string, null when absent or of another type (records are read, never trusted for shape). */
export function text(record: EvidenceRecord, name: string): string | null {
  const value = record.fields[name];
  return typeof value === 'string' ? value : null;
}

export function texts(record: EvidenceRecord, name: string): string[] {
  const value = record.fields[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** `schema.table.column` -> `clear` or a masking method, from a statement record. */
export function columnsOf(record: EvidenceRecord): Record<string, string> {
  const value = record.fields['columns'];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const columns: Record<string, string> = {};
  for (const [name, how] of Object.entries(value)) if (typeof how === 'string') columns[name] = how;
  return columns;
}

/** Sorted copy, so that section files are the same bytes for the same records. */
export function sorted<T>(values: Iterable<T>, key: (value: T) => string): T[] {
  return [...values].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
