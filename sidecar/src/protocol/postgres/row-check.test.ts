import { describe, expect, it } from 'vitest';
import {
  checkColumn,
  checkCount,
  checkFailure,
  firstColumnName,
  rowCheckMessages,
  withRowCheck,
} from './row-check.ts';

const text = (query: Buffer) => query.toString('utf8', 5, query.length - 1);

describe('row check', () => {
  it('follows the client text on a line of its own, so a trailing comment cannot swallow it', () => {
    const sql = text(withRowCheck('DELETE FROM t WHERE id = 1 -- the end', 'gatehouse_rows_x', 10));
    expect(sql.startsWith('DELETE FROM t WHERE id = 1 -- the end\n;SELECT ')).toBe(true);
    expect(sql).toContain('AS "gatehouse_rows_x"');
    expect(sql).toContain('(10)::pg_catalog.int8');
  });

  it('names nothing a search_path can redirect: functions, operators and types are schema-qualified', () => {
    const sql = text(withRowCheck('SELECT 1', 'c', 1));
    const unqualifiedCalls = [...sql.matchAll(/(?<![.\w])([a-z_]+)\(/gi)]
      .map((m) => m[1]!.toUpperCase())
      .filter((name) => !['COALESCE', 'ANY', 'OPERATOR', 'SELECT'].includes(name));
    expect(unqualifiedCalls).toEqual([]);
    expect(sql).not.toMatch(/[^)] [<>=+|]+ /);
    expect(sql).not.toMatch(/::(?!pg_catalog\.)/);
  });

  it('measures without a cap for warn and dryRun limits', () => {
    expect(text(withRowCheck('SELECT 1', 'c', undefined))).toContain('(-1)::pg_catalog.int8');
  });

  it('gives every check a new column and statement name', () => {
    expect(checkColumn()).not.toBe(checkColumn());
    expect(rowCheckMessages(1).statement).not.toBe(rowCheckMessages(1).statement);
  });

  it('reads the count from the DataRow and from the error that refuses', () => {
    const value = Buffer.from('1234');
    const row = Buffer.alloc(11 + value.length);
    row.write('D', 0, 'latin1');
    row.writeInt32BE(row.length - 1, 1);
    row.writeInt16BE(1, 5);
    row.writeInt32BE(value.length, 7);
    value.copy(row, 11);
    expect(checkCount(row)).toBe(1234);
    expect(checkFailure('invalid input syntax for type bigint: "Gatehouse row limit: count 3000"')).toEqual({
      count: 3000,
    });
    expect(
      checkFailure(
        'invalid input syntax for type bigint: "Gatehouse row limit: track_counts is off, count 0"',
      ),
    ).toEqual({ count: 0, trackCountsOff: true });
    expect(checkFailure('canceling statement due to statement timeout')).toEqual({});
  });

  it('reads the first column name of a RowDescription', () => {
    const body = Buffer.concat([Buffer.from([0, 1]), Buffer.from('gatehouse_rows_ab\0'), Buffer.alloc(18)]);
    const frame = Buffer.concat([Buffer.from('T'), Buffer.alloc(4), body]);
    frame.writeInt32BE(frame.length - 1, 1);
    expect(firstColumnName(frame)).toBe('gatehouse_rows_ab');
  });
});
