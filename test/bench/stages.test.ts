import { describe, expect, it } from 'vitest';
import { formatStageTable } from './stages.ts';

describe('formatStageTable', () => {
  it('prints one aligned row per stage: p50 and p99 in µs, calls per second', () => {
    const table = formatStageTable([
      {
        stage: 'framing: client Query',
        on: 'select-only',
        p50Us: 0.1,
        p99Us: 0.87,
        callsPerSecond: 556150.4,
      },
      {
        stage: 'masking rows',
        on: 'masked-rows (100)',
        p50Us: 1281.76,
        p99Us: 2152.36,
        callsPerSecond: 778.4,
      },
    ]).split('\n');
    expect(table[0]).toMatch(/^\| stage +\| statement +\| µs per statement \(p50\) \| +p99 \| +calls\/s \|$/);
    expect(table[2]).toMatch(
      /^\| framing: client Query +\| select-only +\| +0\.10 \| +0\.87 \| +556,150 \|$/,
    );
    expect(table[3]).toMatch(/\| +1281\.76 \| +2152\.36 \| +778 \|$/);
    expect(new Set(table.map((line) => line.length)).size).toBe(1);
  });
});
