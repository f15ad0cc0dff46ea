import { describe, expect, inject, it } from 'vitest';
import { psql } from '../../../../test/e2e/support/clients.ts';
import { createMaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE } from '../../policy/masking/pg-types.ts';
import type { StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import {
  copyTextSplitsSafely,
  createCopyTextMasker,
  escapeCopyText,
  unescapeCopyText,
} from './copy-text-masker.ts';

const key = createMaskingKey(Buffer.alloc(32, 7));
const server = inject('postgres');

function copyData(row: string): Buffer {
  const body = Buffer.from(row, 'utf8');
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = 100;
  frame.writeInt32BE(4 + body.length, 1);
  body.copy(frame, 5);
  return frame;
}

const rowOf = (frame: Buffer) => frame.toString('utf8', 5);

const redact = { method: 'redact', kind: null, reason: 'r' } as const;
const nullify = { method: 'nullify', kind: null, reason: 'n' } as const;

function plan(
  columns: StatementMaskPlan['columns'],
  copyTypes: StatementMaskPlan['copyTypes'],
): StatementMaskPlan {
  return {
    columns,
    rest: undefined,
    masked: ['x'],
    withholdsServerText: true,
    ...(copyTypes && { copyTypes }),
  };
}

describe('COPY text rows', () => {
  it("unescape and escape agree with PostgreSQL's own COPY text output", async () => {
    const values = [
      'plain',
      'tab\there',
      'new\nline',
      'cr\rlf',
      'back\\slash',
      '\b\f\v\u0001',
      'ünïcödé ✓',
      '\\N',
      '',
    ];
    const dsn = `host=${server.host} port=${server.port} dbname=${server.database} user=${server.admin.user} password=${server.admin.password} sslmode=disable`;
    const literals = values.map((v) => `(${`E'${v.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`})`);
    const out = await psql(dsn, ['-c', `COPY (SELECT * FROM (VALUES ${literals.join(', ')}) v) TO STDOUT`]);
    expect(out.stderr).toBe('');
    const lines = out.stdout.split('\n').slice(0, -1);
    expect(lines).toHaveLength(values.length);
    lines.forEach((line, i) => {
      expect(unescapeCopyText(Buffer.from(line)).toString('utf8')).toBe(values[i]);
      expect(escapeCopyText(Buffer.from(values[i]!)).toString('utf8')).toBe(line);
    });
  });

  it('reads the octal and hex escapes COPY FROM accepts', () => {
    expect(unescapeCopyText(Buffer.from('\\101\\x42\\x4\\7z\\q')).toString('latin1')).toBe('AB\x04\x07zq');
  });

  it('masks the planned columns, keeps NULLs and clear columns, and escapes what it writes', () => {
    const masker = createCopyTextMasker(
      plan([undefined, redact, nullify, redact], [PG_TYPE.int4, PG_TYPE.text, PG_TYPE.text, undefined]),
      { format: 0, columns: 4 },
      key,
    );
    expect(rowOf(masker(copyData('1\tAlice\\tSmith\tsecret\tx\n')))).toBe('1\t****\t\\N\t\\N\n');
    expect(rowOf(masker(copyData('2\t\\N\t\\N\t\\N\n')))).toBe('2\t\\N\t\\N\t\\N\n');
  });

  it('scans clear text fields for values, not masked ones', () => {
    const masker = createCopyTextMasker(
      plan([undefined, redact], [PG_TYPE.text, PG_TYPE.text]),
      { format: 0, columns: 2 },
      key,
    );
    const row = rowOf(masker(copyData('mail alice@example.com now\tx\n')));
    expect(row).not.toContain('alice@example.com');
    expect(row.endsWith('\t****\n')).toBe(true);
  });

  it.each([
    ['no newline', '1\tx'],
    ['two rows in one message', '1\tx\n2\ty\n'],
    ['fewer fields', '1\n'],
    ['more fields', '1\tx\ty\n'],
  ])('throws on a message that is not one row of the planned columns: %s', (_, row) => {
    const masker = createCopyTextMasker(
      plan([undefined, redact], [PG_TYPE.int4, PG_TYPE.text]),
      { format: 0, columns: 2 },
      key,
    );
    expect(() => masker(copyData(row))).toThrow(/COPY/);
  });

  it('refuses binary COPY and a column count other than planned', () => {
    const masks = plan([undefined, redact], [PG_TYPE.int4, PG_TYPE.text]);
    expect(() => createCopyTextMasker(masks, { format: 1, columns: 2 }, key)).toThrow(/binary/);
    expect(() => createCopyTextMasker(masks, { format: 0, columns: 3 }, key)).toThrow(/3 columns/);
  });

  it('splits rows only in client encodings where ASCII bytes are ASCII characters', () => {
    expect(copyTextSplitsSafely('UTF8')).toBe(true);
    expect(copyTextSplitsSafely('LATIN1')).toBe(true);
    expect(copyTextSplitsSafely('SJIS')).toBe(false);
    expect(copyTextSplitsSafely('gb18030')).toBe(false);
    expect(copyTextSplitsSafely(undefined)).toBe(false);
  });
});
