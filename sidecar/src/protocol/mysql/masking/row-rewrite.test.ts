import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { classifyValue } from '../../../policy/masking/classify-value.ts';
import { maskValue } from '../../../policy/masking/mask-methods.ts';
import { maskTextFreeform } from '../../../policy/masking/mask-text-freeform.ts';
import { createMaskingKey } from '../../../policy/masking/masking-key.ts';
import { PG_TYPE } from '../../../policy/masking/pg-types.ts';
import type { ColumnType } from '../binary-cells.ts';
import { PayloadReader, PayloadWriter } from '../packet-io.ts';
import { maskBinaryRow, maskTextRow } from './row-rewrite.ts';

const key = createMaskingKey(randomBytes(32));
const UTF8 = 45;
const BINARY = 63;
const INT: ColumnType = { type: 3, charset: BINARY };
const TEXT: ColumnType = { type: 253, charset: UTF8 };
const DATETIME: ColumnType = { type: 12, charset: BINARY };
const BIGINT: ColumnType = { type: 8, charset: BINARY };
const columns = [INT, TEXT, DATETIME, BIGINT, TEXT];

/** id 7, 'alice@example.com', 2024-01-02 03:04:05, 4111111111111111, NULL. */
function binaryRow(): Buffer {
  const datetime = Buffer.from([7, 0xe8, 0x07, 1, 2, 3, 4, 5]);
  const bigint = Buffer.alloc(8);
  bigint.writeBigInt64LE(4111111111111111n);
  return new PayloadWriter()
    .u8(0)
    .bytes(Buffer.from([0b0100_0000])) // (5 + 7 + 2) / 8 = 1 byte; bit 2 + 4: column 4 is NULL
    .u32(7)
    .lenencBytes('alice@example.com')
    .bytes(datetime)
    .bytes(bigint)
    .build();
}

describe('maskBinaryRow', () => {
  it('masks string cells as text and nulls masked fixed-size cells, keeping the rest byte for byte', () => {
    const out = maskBinaryRow(
      binaryRow(),
      columns,
      [
        undefined,
        { method: 'partial', kind: 'email' },
        { method: 'redact', kind: null },
        undefined,
        undefined,
      ],
      {
        key,
        scanValues: true,
      },
    );
    const r = new PayloadReader(out, 1);
    const bitmap = r.bytes(1);
    // Column 2 (DATETIME, masked) and column 3 (a card number found by the value scan) became NULL.
    expect([...bitmap]).toEqual([0b0111_0000]);
    expect(r.u32()).toBe(7);
    expect(r.lenencBytes().toString()).toBe('a***@example.com');
    expect(r.remaining).toBe(0);
  });

  it('returns the very same buffer when nothing is masked', () => {
    const row = binaryRow();
    expect(maskBinaryRow(row, columns, [], { key, scanValues: false })).toBe(row);
  });

  it('masks every cell when the result has another number of columns than the plan', () => {
    // The server re-prepared the statement to another shape since its masks were planned: no column
    // can be told apart, fewer planned or more.
    for (const plan of [[undefined], [undefined, undefined, undefined, undefined, undefined, undefined]]) {
      const out = maskBinaryRow(binaryRow(), columns, plan, { key, scanValues: false });
      const r = new PayloadReader(out, 1);
      // Fixed-size cells become NULL (columns 0, 2, 3; column 4 was NULL already).
      expect([...r.bytes(1)]).toEqual([0b0111_0100]);
      expect(r.lenencBytes().toString()).not.toContain('alice');
      expect(r.remaining).toBe(0);
    }
  });
});

describe('maskTextRow', () => {
  it('masks by column, scans the others, keeps NULLs', () => {
    const row = new PayloadWriter()
      .lenencBytes('7')
      .lenencBytes('123-45-6789')
      .u8(0xfb)
      .lenencBytes('write to bob@example.com today')
      .build();
    const out = maskTextRow(
      row,
      [INT, TEXT, TEXT, TEXT],
      [undefined, { method: 'redact', kind: 'ssn' }, undefined, undefined],
      { key, scanValues: true },
    );
    const r = new PayloadReader(out);
    expect(r.lenencBytes().toString()).toBe('7');
    expect(r.lenencBytes().toString()).toBe('****');
    expect(r.u8()).toBe(0xfb);
    const scanned = r.lenencBytes().toString();
    expect(scanned).toMatch(/^write to .* today$/);
    expect(scanned).not.toContain('bob@example.com');
  });
});

describe('maskTextRow on generated rows', () => {
  /** What each cell must become: the column's mask on its text, or the value scan's scrubbing. */
  function expected(
    text: string,
    column: ColumnType,
    method: 'redact' | 'tokenize' | 'hash' | 'partial' | undefined,
    scanValues: boolean,
  ): string | null {
    const typeOid = column.type === 3 ? PG_TYPE.int8 : PG_TYPE.text;
    if (method) return maskValue(text, method, { key, kind: null, typeOid });
    if (!scanValues) return text;
    if (column.type === 253) return column.charset === BINARY ? text : maskTextFreeform(text, { key });
    // A BIGINT can hold a card number or an SSN: what the value scan takes for one is zeroed.
    return classifyValue(text) ? '0' : text;
  }

  it('gives every cell its mask or the value scan, copying the rest byte for byte', () => {
    const BLOB: ColumnType = { type: 252, charset: BINARY };
    const kinds = [INT, TEXT, TEXT, BLOB, TEXT];
    const methods = [undefined, 'redact', 'tokenize', 'hash', 'partial'] as const;
    const values = [
      '7',
      'shipped',
      'alice@example.com',
      'call 555-010-0100',
      'Zoë Ångström',
      '',
      'x'.repeat(300),
    ];
    for (let n = 0; n < 300; n++) {
      const count = 1 + (n % 5);
      const cols = Array.from({ length: count }, (_, i) => kinds[(n + i) % kinds.length]!);
      const mask = cols.map((_, i) => {
        const method = methods[(n * 3 + i) % methods.length];
        return method && { method, kind: null };
      });
      const scanValues = n % 2 === 0;
      const cells = cols.map((_, i) => ((n + i) % 7 === 0 ? null : values[(n * 5 + i) % values.length]!));
      const w = new PayloadWriter();
      for (const cell of cells) {
        if (cell === null) w.u8(0xfb);
        else w.lenencBytes(cell);
      }
      const out = maskTextRow(w.build(), cols, mask, { key, scanValues });
      const r = new PayloadReader(out);
      const got = cols.map((column) => {
        if (out[r.offset] === 0xfb) {
          r.skip(1);
          return null;
        }
        return r.lenencBytes().toString(column.charset === BINARY ? 'latin1' : 'utf8');
      });
      expect(r.remaining).toBe(0);
      // Binary-charset cells are bytes, read as Latin-1 on both sides.
      const want = cells.map((cell, i) =>
        cell === null
          ? null
          : expected(
              cols[i]!.charset === BINARY ? Buffer.from(cell).toString('latin1') : cell,
              cols[i]!,
              mask[i]?.method,
              scanValues,
            ),
      );
      expect([n, got]).toEqual([n, want]);
    }
  });
});
