import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface AdminProbes {
  /** Ready to take connections: listening, audit writable, not shutting down. Returns the reason when not. */
  readonly notReadyReason: () => string | undefined;
  /** Serves `/approvals` and below (approvals-api.ts) when the proxy decides approvals itself. */
  readonly approvals?: (request: IncomingMessage, response: ServerResponse) => void;
}

/** Serves /metrics (Prometheus), /healthz (the process answers) and /readyz (it should get traffic). */
export function startAdminServer(
  host: string,
  port: number,
  registry: Registry,
  probes: AdminProbes,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    if (probes.approvals && (path === '/approvals' || path.startsWith('/approvals/'))) {
      probes.approvals(request, response);
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(`metrics unavailable: ${String(error)}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const reason = probes.notReadyReason();
      response
        .writeHead(reason ? 503 : 200, { 'content-type': 'text/plain' })
        .end(reason ? `not ready: ${reason}\n` : 'ready\n');
      return;
    }
    response
      .writeHead(404, { 'content-type': 'text/plain' })
      .end('not found: try /metrics, /healthz or /readyz\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve({ server, address: server.address() as AddressInfo });
    });
  });
}
