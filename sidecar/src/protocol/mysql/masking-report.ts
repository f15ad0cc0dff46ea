import type { ResultMask } from '../../policy/masking/mysql-result-masks.ts';
import { PayloadReader, PayloadWriter } from './packet-io.ts';

/**
 * The connection attribute by which a client asks to be told which output columns were masked for
 * it (`gatehouse mcp`'s describe_table does), as PostgreSQL clients ask by the startup parameter
 * `gatehouse.report_masking`. MySQL has no notice to carry a list, so the mark goes where the column
 * is described: the catalog of a masked column's definition reads `gatehouse:masked` instead of `def`
 * (every MySQL and MariaDB server sends `def`; clients print it nowhere). Off by default; what it
 * tells is the plan the audit record names, about the client's own results: policy, never a value.
 */
export const REPORT_MASKING_ATTRIBUTE = 'gatehouse.report_masking';

export const MASKED_CATALOG = 'gatehouse:masked';

/** Whether the attribute's value asks for the marks. */
export function wantsMaskingReport(value: string | undefined): boolean {
  const v = value?.toLowerCase();
  return v === 'on' || v === 'true' || v === '1';
}

/** A column definition payload (protocol 4.1) with its catalog replaced by the mark. */
export function markedMasked(definition: Buffer): Buffer {
  const r = new PayloadReader(definition);
  r.lenencBytes();
  return Buffer.concat([
    new PayloadWriter().lenencBytes(MASKED_CATALOG).build(),
    definition.subarray(r.offset),
  ]);
}

/** Whether the result's mask hides column `index` now (an exemption in force shows it clear, as the rows do). */
export function masksColumn(mask: ResultMask, index: number): boolean {
  if (mask === 'all') return true;
  const column = mask[index];
  if (!column) return false;
  return column.exempt === undefined || Date.now() >= column.exempt.until;
}
