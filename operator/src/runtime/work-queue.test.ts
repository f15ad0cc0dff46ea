import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { WorkQueue } from './work-queue.ts';

describe('WorkQueue', () => {
  it('hands out each key once however often it is added', async () => {
    const queue = new WorkQueue();
    for (const key of ['a', 'b', 'a', 'a', 'b', 'c']) queue.add(key);
    expect(queue.length).toBe(3);
    expect([await queue.get(), await queue.get(), await queue.get()]).toEqual(['a', 'b', 'c']);
    expect(queue.length).toBe(0);
  });

  it('never gives a key being processed to a second worker, and requeues it when added meanwhile', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const first = await queue.get();
    queue.add('a');
    queue.add('a');
    expect(queue.length).toBe(0);
    let second: string | undefined;
    void queue.get().then((key) => {
      second = key;
    });
    await sleep(5);
    expect(second).toBeUndefined();
    queue.done(first!);
    await sleep(0);
    expect(second).toBe('a');
    queue.done('a');
    expect(queue.length).toBe(0);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add('x');
    expect(await waiting).toBe('x');
  });

  it('backs off exponentially per key until forgotten', async () => {
    const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 35 });
    expect([1, 2, 3, 4].map(() => queue.addRateLimited('k'))).toEqual([10, 20, 35, 35]);
    expect(queue.addRateLimited('other')).toBe(10);
    queue.forget('k');
    expect(queue.addRateLimited('k')).toBe(10);
    const started = Date.now();
    expect(await queue.get()).toBe('k');
    expect(Date.now() - started).toBeGreaterThanOrEqual(8);
  });

  it('keeps the earliest of several delayed adds', async () => {
    const queue = new WorkQueue();
    queue.addAfter('k', 1000);
    queue.addAfter('k', 5);
    queue.addAfter('k', 500);
    const started = Date.now();
    expect(await queue.get()).toBe('k');
    expect(Date.now() - started).toBeLessThan(400);
  });

  it('shuts down: waiting workers get undefined, and shutDown waits for keys in progress', async () => {
    const queue = new WorkQueue();
    queue.add('busy');
    const key = await queue.get();
    const waiting = queue.get();
    let drained = false;
    const stopping = queue.shutDown().then(() => {
      drained = true;
    });
    expect(await waiting).toBeUndefined();
    queue.add('late');
    expect(queue.length).toBe(0);
    await sleep(5);
    expect(drained).toBe(false);
    queue.done(key!);
    await stopping;
    expect(drained).toBe(true);
    expect(await queue.get()).toBeUndefined();
  });
});
