import { describe, expect, it } from 'vitest';
import { columnType } from './binary-cells.ts';
import { MASKED_CATALOG, markedMasked, masksColumn } from './masking-report.ts';
import { PayloadReader, PayloadWriter } from './packet-io.ts';

function definition(name: string): Buffer {
  const w = new PayloadWriter();
  for (const part of ['def', 'shop', 'customers', 'customers', name, name]) w.lenencBytes(part);
  return Buffer.concat([
    w.build(),
    Buffer.from([0x0c, 0x21, 0x00, 0xff, 0xff, 0x00, 0x00, 0xfc, 0x10, 0x00, 0x00, 0x00, 0x00]),
  ]);
}

describe('markedMasked', () => {
  it('replaces the catalog only: the name, type and character set stay', () => {
    const original = definition('email');
    const marked = markedMasked(original);
    const r = new PayloadReader(marked);
    expect(r.lenencBytes().toString()).toBe(MASKED_CATALOG);
    const parts = Array.from({ length: 5 }, () => r.lenencBytes().toString());
    expect(parts).toEqual(['shop', 'customers', 'customers', 'email', 'email']);
    expect(columnType(marked)).toEqual(columnType(original));
  });
});

describe('masksColumn', () => {
  it('marks every column of an untraced result, a column with a mask, not one without', () => {
    expect(masksColumn('all', 3)).toBe(true);
    const mask = [undefined, { method: 'redact', kind: null }] as never;
    expect(masksColumn(mask, 0)).toBe(false);
    expect(masksColumn(mask, 1)).toBe(true);
  });

  it('shows a column clear while an exemption is in force, as its rows are', () => {
    const now = Date.now();
    expect(masksColumn([{ method: 'redact', kind: null, exempt: { until: now + 60_000 } }] as never, 0)).toBe(
      false,
    );
    expect(masksColumn([{ method: 'redact', kind: null, exempt: { until: now - 1 } }] as never, 0)).toBe(
      true,
    );
  });
});
