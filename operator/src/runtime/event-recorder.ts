import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type KubeClient, type KubeObject, resourcePath } from './kube-api.ts';

/**
 * Writes core/v1 Events about our objects (`kubectl describe` and `kubectl get events` show them).
 * Best effort: an event that cannot be written is logged, never fails a reconcile.
 */
export class EventRecorder {
  readonly #api: KubeClient;
  readonly #component: string;
  readonly #logger: Logger;

  constructor(api: KubeClient, component: string, logger: Logger) {
    this.#api = api;
    this.#component = component;
    this.#logger = logger;
  }

  async record(
    object: KubeObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const { namespace, name, uid, resourceVersion } = object.metadata;
    const now = new Date().toISOString();
    try {
      await this.#api.create(resourcePath('v1', 'events', namespace), {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${name}.${randomBytes(8).toString('hex')}`, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name,
          namespace,
          uid,
          resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.#component },
        reportingComponent: this.#component,
        reportingInstance: this.#component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (error) {
      this.#logger.warn(
        {
          object: `${namespace}/${name}`,
          reason,
          err: error instanceof Error ? error.message : String(error),
        },
        'could not record an event',
      );
    }
  }
}
