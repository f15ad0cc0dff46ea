import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AdmissionReview } from './admission-review.ts';

/** PEM text of the serving certificate (with its chain, if any) and its private key. */
export type ServingCertificate = { cert: string; key: string };

export type WebhookServerOptions = {
  host: string;
  /** 0 for any free port. */
  port: number;
  /**
   * The current certificate. Called before each new connection, so it must be cheap (return what
   * a watcher keeps); when it returns different PEM text, new connections get the new certificate.
   */
  certificate: () => ServingCertificate;
  handler: (review: AdmissionReview) => Promise<AdmissionReview>;
  /** Other admission webhooks by path (the ApprovalRequest decision webhook). */
  reviews?: Record<string, (review: AdmissionReview) => AdmissionReview | Promise<AdmissionReview>>;
  /** Plain HTTPS routes under a path prefix (the sidecars' approvals endpoint), served as they are. */
  routes?: { prefix: string; listener: (request: IncomingMessage, response: ServerResponse) => void };
  logger: Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;
  /** Larger bodies are refused with 413; the API server sends whole pods, well under this. */
  maxBodyBytes?: number;
};

export type WebhookServer = { address: AddressInfo; close: () => Promise<void> };

export const MUTATE_PODS_PATH = '/mutate-pods';
const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
/** The API server's own webhook timeout is at most 30 s and ours is configured shorter; a slower answer is useless. */
const REQUEST_TIMEOUT_MS = 15_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** Longer than the API server's idle connection reuse, so it rarely finds a connection closed under it. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/**
 * The admission webhooks over HTTPS: POST /mutate-pods (and the paths of `reviews`) with an
 * AdmissionReview in JSON, GET /healthz for probes, and the `routes` prefix. TLS 1.2 or newer, one certificate for every client (the API server calls by
 * URL or Service and may send no SNI), swapped in place when `certificate()` changes.
 */
export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let current = options.certificate();
  const server: Server = createServer(
    {
      ...current,
      minVersion: 'TLSv1.2',
      requestTimeout: REQUEST_TIMEOUT_MS,
      headersTimeout: HEADERS_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    },
    (request, response) => {
      serve(request, response, options, maxBodyBytes).catch((error: unknown) => {
        options.logger.error({ err: error }, 'webhook request failed');
        if (!response.headersSent) respond(response, 500, 'internal error');
        else response.destroy();
      });
    },
  );
  // Before the TLS listener's own handler, so the connection being accepted already uses the new certificate.
  server.prependListener('connection', () => {
    const next = options.certificate();
    if (next.cert === current.cert && next.key === current.key) return;
    try {
      server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
      current = next;
      options.logger.info('webhook serving certificate reloaded');
    } catch (error) {
      options.logger.error({ err: error }, 'new webhook certificate rejected; keeping the previous one');
    }
  });
  server.on('tlsClientError', (error) => options.logger.debug({ err: error }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  options: WebhookServerOptions,
  maxBodyBytes: number,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0] ?? '/';
  if (path === '/healthz') {
    if (request.method !== 'GET' && request.method !== 'HEAD') return respond(response, 405, 'use GET');
    return respond(response, 200, 'ok');
  }
  if (options.routes && (path === options.routes.prefix || path.startsWith(`${options.routes.prefix}/`)))
    return options.routes.listener(request, response);
  const handler = path === MUTATE_PODS_PATH ? options.handler : options.reviews?.[path];
  if (!handler) return respond(response, 404, `not found: POST ${MUTATE_PODS_PATH}`);
  if (request.method !== 'POST') return respond(response, 405, 'use POST');
  const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType !== 'application/json') return respond(response, 415, 'send application/json');
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > maxBodyBytes) return respond(response, 413, `body larger than ${maxBodyBytes} bytes`);

  const body = await readBody(request, maxBodyBytes);
  if (body === undefined) return respond(response, 413, `body larger than ${maxBodyBytes} bytes`);
  let review: AdmissionReview;
  try {
    review = JSON.parse(body.toString('utf8')) as AdmissionReview;
  } catch {
    return respond(response, 400, 'the body is not JSON');
  }
  if (
    typeof review !== 'object' ||
    review === null ||
    review.kind !== 'AdmissionReview' ||
    review.apiVersion !== 'admission.k8s.io/v1' ||
    typeof review.request?.uid !== 'string'
  ) {
    return respond(response, 400, 'expected an admission.k8s.io/v1 AdmissionReview with a request');
  }
  const answer = JSON.stringify(await handler(review));
  response
    .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
    .end(answer);
}

/** The body, or undefined once it passes the limit (chunked requests declare no length up front). */
function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        request.off('data', onData);
        // Stop reading; the connection closes after the 413 so the rest of the body is never taken in.
        request.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function respond(response: ServerResponse, status: number, message: string): void {
  const closing = status === 413;
  response
    .writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      ...(closing && { connection: 'close' }),
    })
    .end(`${message}\n`);
}
