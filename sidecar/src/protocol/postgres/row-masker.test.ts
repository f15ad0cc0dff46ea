import { describe, expect, it } from 'vitest';
import { createCellMasker } from '../../policy/masking/mask-cell.ts';
import { maskTextFreeform } from '../../policy/masking/mask-text-freeform.ts';
import { createMaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE } from '../../policy/masking/pg-types.ts';
import type { StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import { bindResultFormats, createRowMasker, needsRowInspection, type ResultField } from './row-masker.ts';

const key = createMaskingKey(Buffer.alloc(32, 7));

function dataRow(cells: (Buffer | null)[]): Buffer {
  const parts = cells.map((cell) => {
    const length = Buffer.alloc(4);
    length.writeInt32BE(cell === null ? -1 : cell.length);
    return cell === null ? length : Buffer.concat([length, cell]);
  });
  const body = Buffer.concat([Buffer.from([cells.length >> 8, cells.length & 0xff]), ...parts]);
  const head = Buffer.alloc(5);
  head[0] = 68;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

function cellsOf(frame: Buffer): (string | null)[] {
  const count = frame.readInt16BE(5);
  const out: (string | null)[] = [];
  let offset = 7;
  for (let i = 0; i < count; i++) {
    const length = frame.readInt32BE(offset);
    offset += 4;
    out.push(length < 0 ? null : frame.toString('hex', offset, offset + length));
    if (length > 0) offset += length;
  }
  return out;
}

const field = (typeOid: number, format = 0): ResultField => ({ name: 'c', typeOid, typmod: -1, format });
const redactSecond: StatementMaskPlan = {
  columns: [undefined, { method: 'redact', kind: 'email', reason: 'r' }],
  rest: undefined,
  masked: ['r'],
  withholdsServerText: true,
};

describe('createRowMasker', () => {
  it('masks the planned column, keeps the others byte for byte, and keeps NULLs', () => {
    const mask = createRowMasker(redactSecond, [field(PG_TYPE.int4, 1), field(PG_TYPE.text)], key);
    const id = Buffer.from([0, 0, 0, 42]);
    const out = mask(dataRow([id, Buffer.from('alice@example.com')]));
    expect(cellsOf(out)).toEqual([id.toString('hex'), Buffer.from('****').toString('hex')]);
    const nulls = dataRow([id, null]);
    expect(mask(nulls)).toBe(nulls);
  });

  it('scans clean text cells, masking only what looks sensitive', () => {
    const clean: StatementMaskPlan = { columns: [], rest: undefined, masked: [], withholdsServerText: false };
    const mask = createRowMasker(clean, [field(PG_TYPE.text)], key);
    const plain = dataRow([Buffer.from('printer jammed')]);
    expect(mask(plain)).toBe(plain);
    const out = mask(dataRow([Buffer.from('mail bob@example.com')]));
    expect(Buffer.from(cellsOf(out)[0]!, 'hex').toString()).toBe('mail ****');
  });

  it('makes masked cells NULL when the result columns were never described', () => {
    const mask = createRowMasker(redactSecond, undefined, key);
    expect(cellsOf(mask(dataRow([Buffer.from('1'), Buffer.from('x')])))).toEqual(['31', null]);
  });

  it('masks binary int4 cells with an int4', () => {
    const plan: StatementMaskPlan = {
      columns: [{ method: 'redact', kind: null, reason: 'r' }],
      rest: undefined,
      masked: ['r'],
      withholdsServerText: true,
    };
    const out = createRowMasker(plan, [field(PG_TYPE.int4, 1)], key)(dataRow([Buffer.from([0, 1, 2, 3])]));
    expect(cellsOf(out)).toEqual(['00000000']);
  });
});

describe('createRowMasker on generated rows', () => {
  it('gives each cell what its column masker or the value scan gives it, in a well-formed frame', () => {
    const methods = [undefined, 'redact', 'tokenize', 'nullify', 'hash'] as const;
    const values = [
      '',
      'x',
      'shipped',
      'alice@example.com',
      'mail bob@example.com',
      '123-45-6789',
      'é€😀 Zoë',
      'a'.repeat(300),
    ];
    for (let n = 0; n < 500; n++) {
      const count = 1 + (n % 7);
      const columns = Array.from({ length: count }, (_, i) => methods[(n * 7 + i * 3) % methods.length]);
      const plan: StatementMaskPlan = {
        columns: columns.map((method) => (method ? { method, kind: null, reason: 'r' } : undefined)),
        rest: undefined,
        masked: ['r'],
        withholdsServerText: true,
      };
      const fields = columns.map(() => field(PG_TYPE.text));
      const mask = createRowMasker(plan, fields, key);
      for (let row = 0; row < 5; row++) {
        const cells = columns.map((_, i) =>
          (n + row + i) % 6 === 0 ? null : Buffer.from(values[(n * 5 + row * 3 + i) % values.length]!),
        );
        const out = mask(dataRow(cells));
        expect(out.readInt32BE(1)).toBe(out.length - 1);
        const expected = cells.map((cell, i) => {
          if (cell === null) return null;
          const method = columns[i];
          if (method === undefined) {
            const text = cell.toString();
            return Buffer.from(maskTextFreeform(text)).toString('hex');
          }
          const masked = createCellMasker(method, { key, kind: null, typeOid: PG_TYPE.text, typmod: -1 })(
            cell,
            0,
          );
          return masked === null ? null : Buffer.from(masked).toString('hex');
        });
        expect(cellsOf(out)).toEqual(expected);
      }
    }
  });
});

describe('createRowMasker after a row that failed', () => {
  it('carries nothing of that row into the next', () => {
    const redact = { method: 'redact', kind: null, reason: 'r' } as const;
    const plan: StatementMaskPlan = {
      columns: [redact, redact, redact],
      rest: undefined,
      masked: ['r'],
      withholdsServerText: true,
    };
    const mask = createRowMasker(plan, [field(PG_TYPE.text), field(PG_TYPE.text), field(PG_TYPE.text)], key);
    // A row that claims three cells and holds two: reading the third throws after the second was replaced.
    const truncated = dataRow([null, Buffer.from('secret')]);
    truncated.writeInt16BE(3, 5);
    expect(() => mask(truncated)).toThrow();
    const out = mask(dataRow([Buffer.from('a'), null, Buffer.from('b')]));
    expect(out.readInt32BE(1)).toBe(out.length - 1);
    const stars = Buffer.from('****').toString('hex');
    expect(cellsOf(out)).toEqual([stars, null, stars]);
  });
});

describe('needsRowInspection', () => {
  it('lets results of numbers pass uncopied when nothing is masked', () => {
    const clean: StatementMaskPlan = { columns: [], rest: undefined, masked: [], withholdsServerText: false };
    expect(needsRowInspection(clean, [field(PG_TYPE.int4), field(PG_TYPE.numeric)])).toBe(false);
    expect(needsRowInspection(clean, [field(PG_TYPE.int4), field(PG_TYPE.varchar)])).toBe(true);
    expect(needsRowInspection(clean, undefined)).toBe(true);
    expect(needsRowInspection(redactSecond, [field(PG_TYPE.int4), field(PG_TYPE.int4)])).toBe(true);
  });
});

describe('bindResultFormats', () => {
  it('reads the result formats after the parameters', () => {
    const body = Buffer.concat([
      Buffer.from('p\0s\0'),
      Buffer.from([0, 1, 0, 1]), // one parameter format: binary
      Buffer.from([0, 2, 0, 0, 0, 2, 0x61, 0x62, 0xff, 0xff, 0xff, 0xff]), // two parameters: 'ab', NULL
      Buffer.from([0, 2, 0, 1, 0, 0]), // result formats: binary, text
    ]);
    const frame = Buffer.concat([Buffer.from([66, 0, 0, 0, 0]), body]);
    frame.writeInt32BE(4 + body.length, 1);
    expect(bindResultFormats(frame)).toEqual([1, 0]);
  });
});
