import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { WorkQueue } from './work-queue.ts';

/** What a reconcile asks of the queue when it succeeds: nothing, or another look after a delay. */
export type ReconcileResult = { requeueAfterMs?: number; outcome?: string } | undefined;

export interface Reconciler {
  readonly name: string;
  reconcile(key: string): Promise<ReconcileResult>;
}

export interface ControllerMetrics {
  readonly reconciles: Counter<'controller' | 'result'>;
  readonly duration: Histogram<'controller'>;
  /** Queues whose depth is reported, by controller name; read at each scrape. */
  readonly queues: Map<string, WorkQueue>;
}

export function controllerMetrics(registry: Registry): ControllerMetrics {
  const metrics: ControllerMetrics = {
    queues: new Map(),
    reconciles: new Counter({
      name: 'gatehouse_operator_reconcile_total',
      help: 'Reconciles by controller and result (success, requeue, error).',
      labelNames: ['controller', 'result'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'gatehouse_operator_reconcile_duration_seconds',
      help: 'Time spent in one reconcile.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
  new Gauge({
    name: 'gatehouse_operator_workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['controller'],
    registers: [registry],
    collect() {
      for (const [controller, queue] of metrics.queues) this.set({ controller }, queue.length);
    },
  });
  return metrics;
}

/**
 * Runs a reconciler over its queue with `workers` concurrent workers: each key is reconciled by one
 * worker at a time; a failure is retried with the key's exponential backoff (never by sleeping in
 * the reconcile); a success resets the backoff. One log line per outcome, with the key.
 */
export class Controller {
  readonly queue: WorkQueue;
  readonly #reconciler: Reconciler;
  readonly #logger: Logger;
  readonly #metrics: ControllerMetrics;
  readonly #workers: Promise<void>[] = [];

  constructor(reconciler: Reconciler, logger: Logger, metrics: ControllerMetrics, queue = new WorkQueue()) {
    this.#reconciler = reconciler;
    this.queue = queue;
    this.#logger = logger.child({ controller: reconciler.name });
    this.#metrics = metrics;
    metrics.queues.set(reconciler.name, queue);
  }

  get name(): string {
    return this.#reconciler.name;
  }

  start(workers = 2): void {
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work());
  }

  /** Stops taking keys and waits for reconciles in progress. */
  async stop(): Promise<void> {
    await this.queue.shutDown();
    await Promise.all(this.#workers);
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await this.#reconciler.reconcile(key);
        this.queue.forget(key);
        const durationMs = Math.round(performance.now() - started);
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        const requeued = result?.requeueAfterMs !== undefined;
        this.#metrics.reconciles.inc({ controller: this.name, result: requeued ? 'requeue' : 'success' });
        this.#logger.info(
          {
            key,
            outcome: result?.outcome ?? 'reconciled',
            durationMs,
            ...(requeued && { requeueAfterMs: result.requeueAfterMs }),
          },
          'reconciled',
        );
      } catch (error) {
        const retryInMs = this.queue.addRateLimited(key);
        this.#metrics.reconciles.inc({ controller: this.name, result: 'error' });
        this.#logger.warn(
          {
            key,
            outcome: 'error',
            err: error instanceof Error ? error.message : String(error),
            retryInMs,
            durationMs: Math.round(performance.now() - started),
          },
          'reconcile failed; will retry',
        );
      } finally {
        this.#metrics.duration.observe({ controller: this.name }, (performance.now() - started) / 1000);
        this.queue.done(key);
      }
    }
  }
}
