import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient, resourcePath } from './kube-api.ts';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  readonly api: KubeClient;
  readonly namespace: string;
  readonly name: string;
  /** Unique per process: hostname (the pod name) and a random suffix. */
  readonly identity: string;
  readonly logger: Logger;
  /** How long a lease holds without renewal before another candidate may take it. */
  readonly leaseDurationMs?: number;
  /** The leader gives up leading when it could not renew for this long (< leaseDurationMs). */
  readonly renewDeadlineMs?: number;
  /** Between attempts to acquire or renew. */
  readonly retryPeriodMs?: number;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: the
 * holder renews `renewTime` every retry period; a candidate takes the lease once `renewTime +
 * leaseDurationSeconds` has passed; every write carries the resourceVersion it read, so two
 * candidates racing for an expired lease cannot both win. A leader that cannot renew within the
 * renew deadline stops leading before its lease can expire, so two leaders never overlap.
 */
export class LeaderElector {
  readonly #o: Required<LeaderElectionOptions>;
  readonly #path: string;
  #leading = false;
  #stopped = false;
  #lastRenewMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #onLost: (() => void) | undefined;

  constructor(options: LeaderElectionOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
    };
    this.#path = resourcePath('coordination.k8s.io/v1', 'leases', options.namespace, options.name);
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Resolves once this process holds the lease (or undefined if stop() came first), then keeps
   * renewing it; `onLost` is called once if leadership is lost without stop().
   */
  async acquire(onLost: () => void): Promise<boolean> {
    this.#onLost = onLost;
    while (!this.#stopped) {
      if (await this.#tryAcquireOrRenew()) {
        this.#leading = true;
        this.#o.logger.info({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'became the leader');
        this.#scheduleRenew();
        return true;
      }
      await this.#sleep(this.#o.retryPeriodMs);
    }
    return false;
  }

  /** Stops renewing; when leading, releases the lease so a successor need not wait for it to expire. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#o.api.get<Lease>(this.#path);
      if (lease.spec.holderIdentity !== this.#o.identity) return;
      await this.#o.api.replace(this.#path, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: null,
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
      this.#o.logger.info('released the leader lease');
    } catch (error) {
      this.#o.logger.warn(
        { err: errorText(error) },
        'could not release the leader lease; it expires on its own',
      );
    }
  }

  #scheduleRenew(): void {
    this.#timer = setTimeout(async () => {
      if (this.#stopped) return;
      const renewed = await this.#tryAcquireOrRenew();
      if (this.#stopped) return;
      if (!renewed && Date.now() - this.#lastRenewMs > this.#o.renewDeadlineMs) {
        this.#leading = false;
        this.#o.logger.error('lost the leader lease');
        this.#onLost?.();
        return;
      }
      this.#scheduleRenew();
    }, this.#o.retryPeriodMs);
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const { api, identity } = this.#o;
    const durationSeconds = Math.ceil(this.#o.leaseDurationMs / 1000);
    try {
      const lease = await api.getOptional<Lease>(this.#path);
      if (!lease) {
        await api.create(resourcePath('coordination.k8s.io/v1', 'leases', this.#o.namespace), {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        } satisfies Lease);
        this.#lastRenewMs = now.getTime();
        return true;
      }
      const holder = lease.spec.holderIdentity ?? '';
      const renewedAt = Date.parse(lease.spec.renewTime ?? lease.spec.acquireTime ?? '') || 0;
      const expiresAt = renewedAt + (lease.spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      if (holder !== identity && holder !== '' && expiresAt > now.getTime()) return false;
      const taking = holder !== identity;
      await api.replace(this.#path, {
        ...lease,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: taking ? microTime(now) : lease.spec.acquireTime,
          renewTime: microTime(now),
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (taking ? 1 : 0),
        },
      });
      this.#lastRenewMs = now.getTime();
      return true;
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error))
        this.#o.logger.warn({ err: errorText(error) }, 'leader lease request failed');
      return false;
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(resolve, ms);
    });
  }
}

/** The Lease's MicroTime format: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
