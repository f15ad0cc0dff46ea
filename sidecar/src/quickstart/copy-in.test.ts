import { describe, expect, it } from 'vitest';
import { copyFromStdin } from './copy-in.ts';

describe('copyFromStdin', () => {
  it.each([
    ['COPY orders (customer_id, amount) FROM STDIN CSV', 'alone'],
    ['copy orders from stdin with (format binary)', 'alone'],
    ['/* load */ COPY orders FROM stdin', 'alone'],
    ['COPY orders FROM STDIN; SELECT 1', 'with-others'],
    ['SELECT 1; COPY orders FROM STDIN', 'with-others'],
    ['COPY orders TO STDOUT', 'none'],
    ["COPY (SELECT 'copy from stdin') TO STDOUT", 'none'],
    ["COPY orders FROM '/tmp/stdin.csv'", 'none'],
    ["SELECT 'COPY t FROM STDIN'", 'none'],
    ['COPY orders FROM STDIN WITH (nonsense', 'none'],
    ['SELECT 1', 'none'],
  ])('%s: %s', async (sql, kind) => {
    expect(await copyFromStdin(sql)).toBe(kind);
  });
});
