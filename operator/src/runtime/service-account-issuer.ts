import type { Logger } from 'pino';
import type { KubeClient } from './kube-api.ts';

export interface IssuerKeys {
  /** `iss` of the cluster's service-account tokens. */
  readonly issuer: string;
  /** /openid/v1/jwks as served (JSON text). */
  readonly jwks: string;
}

/**
 * The cluster's service-account issuer and its signing keys, read from the API server's discovery
 * documents and refreshed periodically, so sidecars can verify projected tokens offline. Keys rotate
 * rarely; when they do, `onChange` lets every bundle be recompiled.
 */
export class ServiceAccountIssuer {
  readonly #api: KubeClient;
  readonly #logger: Logger;
  readonly #refreshMs: number;
  #current: IssuerKeys | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(api: KubeClient, logger: Logger, options: { refreshMs?: number } = {}) {
    this.#api = api;
    this.#logger = logger;
    this.#refreshMs = options.refreshMs ?? 5 * 60_000;
  }

  /** The keys, fetched on first use; throws when the API server does not publish them. */
  async get(): Promise<IssuerKeys> {
    this.#current ??= await this.#fetch();
    return this.#current;
  }

  start(onChange: () => void): void {
    this.#timer = setInterval(async () => {
      try {
        const next = await this.#fetch();
        const changed = next.issuer !== this.#current?.issuer || next.jwks !== this.#current?.jwks;
        this.#current = next;
        if (changed) {
          this.#logger.info(
            { issuer: next.issuer },
            'service-account signing keys changed; recompiling bundles',
          );
          onChange();
        }
      } catch (error) {
        this.#logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'could not refresh the service-account signing keys; keeping the previous ones',
        );
      }
    }, this.#refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #fetch(): Promise<IssuerKeys> {
    const discovery = await this.#api.get<{ issuer?: string; jwks_uri?: string }>(
      '/.well-known/openid-configuration',
    );
    if (!discovery.issuer) throw new Error('/.well-known/openid-configuration names no issuer');
    const jwks = await this.#api.get<{ keys?: unknown[] }>('/openid/v1/jwks');
    if (!Array.isArray(jwks.keys)) throw new Error('/openid/v1/jwks holds no keys');
    return { issuer: discovery.issuer, jwks: JSON.stringify(jwks) };
  }
}
