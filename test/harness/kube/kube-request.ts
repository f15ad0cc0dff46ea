import { readFile } from 'node:fs/promises';
import { request } from 'node:https';

/** Where and how to reach an API server: what startKube returns is one. */
export type KubeEndpoint = { server: string; caFile: string; adminToken: string };

/** The admin from the token file, nobody (system:anonymous), or any bearer token. */
export type KubeCredentials = 'admin' | 'anonymous' | { token: string };

export type KubeRequest = {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path and query, e.g. /api/v1/namespaces?limit=1. */
  path: string;
  /** Sent as JSON. */
  body?: unknown;
  /** For PATCH: application/merge-patch+json, application/json-patch+json, ... */
  contentType?: string;
  as?: KubeCredentials;
};

/** The body is parsed JSON when the server says it is JSON, text otherwise; T is the caller's word for its shape. */
export type KubeResponse<T> = { status: number; body: T };

const TIMEOUT_MS = 30_000;

/**
 * One HTTPS request to the API server, verifying its certificate against the cluster CA. A stand-in
 * for a Kubernetes client library in harness code and tests that want to see the raw API.
 */
export async function kubeRequest<T = unknown>(
  endpoint: KubeEndpoint,
  options: KubeRequest,
): Promise<KubeResponse<T>> {
  const ca = await readFile(endpoint.caFile);
  const url = new URL(options.path, endpoint.server);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  // JSON first, but not only: /openid/v1/jwks answers application/jwk-set+json and nothing else.
  const headers: Record<string, string> = { accept: 'application/json, */*;q=0.5' };
  const token = bearerToken(endpoint, options.as ?? 'admin');
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  if (payload !== undefined) {
    headers['content-type'] = options.contentType ?? 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const outgoing = request(
      url,
      { method: options.method ?? 'GET', ca, headers, timeout: TIMEOUT_MS },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const isJson = (response.headers['content-type'] ?? '').includes('json');
          try {
            resolve({ status: response.statusCode ?? 0, body: (isJson ? JSON.parse(text) : text) as T });
          } catch (error) {
            reject(
              new Error(
                `${options.method ?? 'GET'} ${url.pathname}: the answer is not JSON: ${String(error)}`,
              ),
            );
          }
        });
      },
    );
    outgoing.on('timeout', () =>
      outgoing.destroy(new Error(`${url.pathname}: no answer after ${TIMEOUT_MS} ms`)),
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}

function bearerToken(endpoint: KubeEndpoint, credentials: KubeCredentials): string | undefined {
  if (credentials === 'admin') return endpoint.adminToken;
  if (credentials === 'anonymous') return undefined;
  return credentials.token;
}
