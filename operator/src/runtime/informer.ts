import { type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeApi, KubeList, KubeObject } from './kube-api.ts';

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, object: T) => void;

/** What a reconcile reads: the cache, never the API server, so reads cost nothing and see one moment. */
export interface ObjectCache<T extends KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  /** Every object, or those of one namespace. */
  list(namespace?: string): readonly T[];
}

const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;

/**
 * A cache of one resource kept current by list+watch (client-node's ListWatch, which relists when
 * the API server answers 410 Gone and resumes from the last resourceVersion after a timeout). What
 * ListWatch does not do is come back after any other failure (a dropped connection, a 5xx, a list
 * that failed): this class restarts it with exponential backoff, so a controller never silently
 * stops seeing changes.
 */
export class Informer<T extends KubeObject> implements ObjectCache<T> {
  readonly path: string;
  readonly #listWatch: ListWatch<KubernetesObject>;
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #logger: Logger;
  #synced = false;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #failures = 0;

  /** `path` is a collection: `/api/v1/pods` (every namespace) or `/api/v1/namespaces/NS/pods`. */
  constructor(api: KubeApi, path: string, logger: Logger, options: { labelSelector?: string } = {}) {
    this.path = path;
    this.#logger = logger.child({ informer: path });
    const list = async () => {
      const result = await api.list<T>(
        path,
        options.labelSelector ? { labelSelector: options.labelSelector } : {},
      );
      this.#failures = 0;
      return result as KubeList<T> as never;
    };
    this.#listWatch = new ListWatch<KubernetesObject>(
      path,
      new Watch(api.config),
      list,
      false,
      options.labelSelector,
    );
    for (const event of ['add', 'update', 'delete'] as const) {
      this.#listWatch.on(event, (object) => {
        for (const handler of this.#handlers) handler(event, object as unknown as T);
      });
    }
    this.#listWatch.on('error', (error: unknown) => this.#scheduleRestart(error));
  }

  on(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** True once the first list has filled the cache. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Lists, starts watching, and resolves once the cache holds the first list (retrying until then). */
  async start(): Promise<void> {
    this.#stopped = false;
    while (!this.#stopped && !this.#synced) {
      let failed = false;
      const onError = () => {
        failed = true;
      };
      this.#listWatch.on('error', onError);
      await this.#listWatch.start();
      this.#listWatch.off('error', onError);
      if (!failed) this.#synced = true;
      else await new Promise((resolve) => setTimeout(resolve, this.#backoff()));
    }
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#listWatch.get(name, namespace) as unknown as T | undefined;
  }

  list(namespace?: string): readonly T[] {
    return this.#listWatch.list(namespace) as unknown as readonly T[];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    await this.#listWatch.stop();
  }

  #backoff(): number {
    this.#failures++;
    return Math.min(RESTART_BASE_MS * 2 ** (this.#failures - 1), RESTART_MAX_MS);
  }

  #scheduleRestart(error: unknown): void {
    if (this.#stopped || !this.#synced) return;
    const delay = this.#backoff();
    this.#logger.warn(
      { err: error instanceof Error ? error.message : String(error), retryInMs: delay },
      'list/watch failed; restarting',
    );
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (!this.#stopped) void this.#listWatch.start();
    }, delay);
    this.#restartTimer.unref();
  }
}
