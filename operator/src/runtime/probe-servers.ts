import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ProbeServer {
  readonly port: number;
  close(): Promise<void>;
}

async function listen(server: Server, host: string, port: number): Promise<ProbeServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** GET /metrics in the Prometheus text format. */
export function startMetricsServer(registry: Registry, host: string, port: number): Promise<ProbeServer> {
  const server = createServer(async (request, response) => {
    if (request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    const body = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType }).end(body);
  });
  return listen(server, host, port);
}

/**
 * GET /healthz (the process is alive and serving) and GET /readyz (it can do its work: undefined
 * from `notReadyReason`, otherwise 503 with the reason).
 */
export function startHealthServer(
  host: string,
  port: number,
  notReadyReason: () => string | undefined,
): Promise<ProbeServer> {
  const server = createServer((request, response) => {
    const path = request.url?.split('?')[0];
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const reason = notReadyReason();
      response
        .writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' })
        .end(`${reason ?? 'ok'}\n`);
      return;
    }
    response.writeHead(404).end('not found: GET /healthz or /readyz\n');
  });
  return listen(server, host, port);
}
