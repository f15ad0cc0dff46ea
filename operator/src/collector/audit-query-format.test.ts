import { describe, expect, it } from 'vitest';
import { FollowTable, table } from './audit-query-format.ts';

const statement = (subject: string, text: string) => ({
  time: '2026-12-07T09:00:00.000Z',
  subject,
  database: 'app',
  outcome: 'ok',
  rows: 1,
  statement: text,
  columns: { 'public.customers.ssn': 'redact' },
  reason: null,
});

describe('audit query in a terminal', () => {
  it('sizes a table by its widest cells and says when there is nothing', () => {
    const lines = table('statements', [statement('local:demo', 'SELECT $1')]).split('\n');
    expect(lines[0]).toMatch(/^time +subject +database +outcome +rows +statement +touched +reason$/);
    expect(lines[1]).toContain(
      'local:demo  app       ok       1     SELECT $1  public.customers.ssn (redact)',
    );
    expect(table('sessions', [])).toBe('no sessions');
  });

  it('follows with one header and the same columns however wide the rows that come later', () => {
    const follow = new FollowTable('statements');
    const first = follow.lines([statement('local:demo', 'SELECT $1')]);
    expect(first).toHaveLength(2);
    const later = follow.lines([
      statement('system:serviceaccount:shop:orders', `SELECT ${'x, '.repeat(40)}y`),
    ]);
    expect(later).toHaveLength(1);
    const start = (line: string, word: string) => line.indexOf(word);
    // The statement column starts where the header put it, and a long one ends in an ellipsis.
    expect(start(later[0]!, 'SELECT')).toBe(start(first[0]!, 'statement'));
    expect(later[0]).toContain('…');
    expect(follow.lines([])).toEqual([]);
  });
});
