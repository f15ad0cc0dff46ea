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
});
