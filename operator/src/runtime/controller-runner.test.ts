import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Controller, controllerMetrics } from './controller-runner.ts';
import { WorkQueue } from './work-queue.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('Controller', () => {
  it('retries a failing key with backoff until it succeeds, logging one line per outcome', async () => {
    const { logger, lines } = capture();
    const registry = new Registry();
    const attempts: number[] = [];
    let succeeded!: () => void;
    const done = new Promise<void>((resolve) => {
      succeeded = resolve;
    });
    const controller = new Controller(
      {
        name: 'test',
        async reconcile(key) {
          attempts.push(Date.now());
          if (attempts.length < 3) throw new Error(`not yet: ${key}`);
          succeeded();
          return { outcome: 'Ready' };
        },
      },
      logger,
      controllerMetrics(registry),
      new WorkQueue({ baseDelayMs: 20 }),
    );
    controller.start(2);
    controller.queue.add('ns/a');
    await done;
    await controller.stop();
    expect(attempts).toHaveLength(3);
    // 20 ms then 40 ms of backoff between the attempts.
    expect(attempts[2]! - attempts[0]!).toBeGreaterThanOrEqual(55);
    expect(lines.map((l) => [l['key'], l['outcome']])).toEqual([
      ['ns/a', 'error'],
      ['ns/a', 'error'],
      ['ns/a', 'Ready'],
    ]);
    expect(controller.queue.failures('ns/a')).toBe(0);
    const metrics = await registry.metrics();
    expect(metrics).toContain('gatehouse_operator_reconcile_total{controller="test",result="error"} 2');
    expect(metrics).toContain('gatehouse_operator_reconcile_total{controller="test",result="success"} 1');
  });

  it('requeues after the delay a reconcile asks for, and reports the queue depth', async () => {
    const { logger } = capture();
    const registry = new Registry();
    const seen: number[] = [];
    const controller = new Controller(
      {
        name: 'requeue',
        async reconcile() {
          seen.push(Date.now());
          return seen.length === 1 ? { requeueAfterMs: 30 } : undefined;
        },
      },
      logger,
      controllerMetrics(registry),
    );
    controller.queue.add('k');
    expect(await registry.metrics()).toContain('gatehouse_operator_workqueue_depth{controller="requeue"} 1');
    controller.start(1);
    while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await controller.stop();
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(25);
  });
});
