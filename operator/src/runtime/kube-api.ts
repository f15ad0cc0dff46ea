import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** The fields of Kubernetes object metadata the operator reads. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

/** A failed API request, with the HTTP status and the API server's reason (NotFound, Conflict...). */
export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(method: string, path: string, status: number, reason: string, message: string) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 404;
}

export function isConflict(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 409;
}

export type PatchType = 'merge' | 'json' | 'strategic';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export interface RequestOptionsInit {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly query?: Record<string, string | undefined>;
}

/**
 * What the operator asks of the API server: the controllers, the status writer, the event recorder,
 * the issuer and leader election depend on this, not on HTTP, so each reconcile state can be tested
 * against an in-memory API server (operator/src/runtime/fake-kube-api.ts) as well as the real one.
 */
export interface KubeClient {
  get<T>(path: string): Promise<T>;
  /** The object, or undefined when it does not exist. */
  getOptional<T>(path: string): Promise<T | undefined>;
  list<T>(path: string, query?: ListQuery): Promise<KubeList<T>>;
  create<T>(path: string, body: unknown): Promise<T>;
  replace<T>(path: string, body: unknown): Promise<T>;
  patch<T>(path: string, body: unknown, type?: PatchType): Promise<T>;
  /** Deletes; a missing object counts as deleted. */
  delete(path: string, query?: Record<string, string>): Promise<void>;
}

export type ListQuery = {
  labelSelector?: string;
  fieldSelector?: string;
};

/**
 * JSON over HTTPS to the API server, authenticated the way the kubeconfig (or the in-cluster service
 * account) says; client-node's KubeConfig supplies the TLS and credentials. Paths are the API's own
 * (`/apis/gatehouse.dev/v1alpha1/namespaces/NS/databaseaccesses`), which reads better in logs and
 * RBAC reviews than a generated method per kind.
 */
export class KubeApi implements KubeClient {
  readonly config: KubeConfig;
  readonly #timeoutMs: number;

  constructor(config: KubeConfig, options: { timeoutMs?: number } = {}) {
    this.config = config;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
  }

  get server(): string {
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    return cluster.server;
  }

  async request<T>(method: string, path: string, init: RequestOptionsInit = {}): Promise<T> {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(init.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, value);
    const options: RequestOptions & { headers: Record<string, string> } = {
      method,
      // JSON first, but not only: /openid/v1/jwks answers application/jwk-set+json and nothing else.
      headers: { Accept: 'application/json, */*;q=0.5' },
      timeout: this.#timeoutMs,
    };
    await this.config.applyToHTTPSOptions(options);
    const payload = init.body === undefined ? undefined : Buffer.from(JSON.stringify(init.body));
    if (payload) {
      options.headers['Content-Type'] = init.contentType ?? 'application/json';
      options.headers['Content-Length'] = String(payload.length);
    }
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
    const body = text.trimStart().startsWith('{') ? JSON.parse(text) : text;
    if (status < 200 || status >= 300) {
      const reason = (body as { reason?: string }).reason ?? String(status);
      const message = (body as { message?: string }).message ?? (typeof body === 'string' ? body : '');
      throw new KubeApiError(method, path, status, reason, message);
    }
    return body as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** The object, or undefined when it does not exist. */
  async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  list<T>(path: string, query: ListQuery = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', path, { query });
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  patch<T>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: PATCH_CONTENT_TYPE[type] });
  }

  /** Deletes; a missing object counts as deleted. */
  async delete(path: string, query: Record<string, string> = {}): Promise<void> {
    try {
      await this.request('DELETE', path, { query });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** `/api/v1` for the core group, `/apis/GROUP/VERSION` otherwise. */
export function apiPrefix(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** The REST path of a namespaced collection, or of one object in it when `name` is given. */
export function resourcePath(apiVersion: string, plural: string, namespace?: string, name?: string): string {
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const one = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${apiPrefix(apiVersion)}${ns}/${plural}${one}`;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: '', name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
