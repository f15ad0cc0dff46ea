import { describe, expect, it } from 'vitest';
import { Lru } from './lru.ts';

describe('Lru', () => {
  it('keeps recently used entries and drops those unused for two generations', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2); // young generation full: {a, b} become old
    lru.set('c', 3);
    expect(lru.get('a')).toBe(1); // used again: moves to the young generation, which fills: {c, a} old
    lru.set('d', 4);
    lru.set('e', 5); // {d, e} become old, {c, a} are dropped; b was never used again
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('c')).toBeUndefined();
    expect(lru.get('d')).toBe(4);
    expect(lru.get('e')).toBe(5);
  });

  it('never holds more than twice its capacity', () => {
    const lru = new Lru<number, number>(10);
    for (let i = 0; i < 1000; i++) {
      lru.set(i, i);
      expect(lru.size).toBeLessThanOrEqual(20);
    }
    expect(lru.get(999)).toBe(999);
  });

  it('replaces a value without growing', () => {
    const lru = new Lru<string, number>(4);
    lru.set('a', 1);
    lru.set('a', 2);
    expect(lru.size).toBe(1);
    expect(lru.get('a')).toBe(2);
  });

  it('rejects a capacity that cannot hold anything', () => {
    expect(() => new Lru(0)).toThrow(RangeError);
  });

  it('with a budget, holds at most twice the budget plus two entries, however heavy the entries', () => {
    const lru = new Lru<string, string>(1000, { budget: 100, weigh: (key) => key.length });
    let held = 0;
    for (let i = 0; i < 500; i++) {
      const key = `${i}:${'x'.repeat(i % 37)}`;
      lru.set(key, key);
      held = 0;
      for (let j = 0; j <= i; j++) {
        const k = `${j}:${'x'.repeat(j % 37)}`;
        if (lru.get(k) !== undefined) held += k.length;
      }
      // get() moves old entries back into the young generation, which the bound also covers.
      expect(held, `after ${i + 1} entries`).toBeLessThanOrEqual(2 * 100 + 2 * 40);
    }
    expect(lru.size).toBeLessThan(50);
  });

  it('with a budget, still keeps recent entries under it', () => {
    const lru = new Lru<string, number>(1000, { budget: 1000, weigh: () => 10 });
    for (let i = 0; i < 50; i++) lru.set(`k${i}`, i);
    for (let i = 0; i < 50; i++) expect(lru.get(`k${i}`)).toBe(i);
  });

  it('refuses a budget that is not positive', () => {
    expect(() => new Lru(10, { budget: 0, weigh: () => 1 })).toThrow(RangeError);
  });
});
