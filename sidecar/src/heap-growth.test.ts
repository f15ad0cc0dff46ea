import { describe, expect, it } from 'vitest';
import { userChoseHeapGrowth } from './heap-growth.ts';

describe('userChoseHeapGrowth', () => {
  it.each([
    [['--liftoff-only'], '', false],
    [[], '', false],
    [['--heap-growing-percent=20'], '', true],
    [['--heap_growing_percent=20'], '', true],
    [['--heap-growing-percent'], '', true],
    [[], '--max-old-space-size=256 --heap-growing-percent=10', true],
    [[], '--heap-growing-percents=10', false],
    [['--heap-growing'], '--max-semi-space-size=8', false],
  ])('%j with NODE_OPTIONS %j: %s', (execArgv, nodeOptions, chose) => {
    expect(userChoseHeapGrowth(execArgv, nodeOptions)).toBe(chose);
  });
});
