import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { ConnectionOrigin, InProcessClientStream } from '../in-process-channel.ts';
import { ProxyServer } from '../proxy-server.ts';
import { errorResponse } from './backend-writer.ts';
import { CancelKeys } from './cancel-keys.ts';
import { handleConnection, type PostgresConnection } from './connection.ts';
import type { SessionDeps } from './session-deps.ts';

export type PostgresServerDeps = Omit<SessionDeps, 'cancelKeys' | 'tlsContext' | 'draining'>;

/** Accepts PostgreSQL clients and runs a session for each, up to the connection limit. */
export class PostgresProxyServer {
  private readonly server: ProxyServer<PostgresConnection>;

  constructor(deps: PostgresServerDeps) {
    const tls = deps.config.clientTls;
    const sessionDeps: SessionDeps = {
      ...deps,
      cancelKeys: new CancelKeys(),
      tlsContext: tls ? createSecureContext({ cert: tls.cert, key: tls.key }) : undefined,
      draining: () => this.server.draining,
    };
    this.server = new ProxyServer(
      {
        connect: (socket, origin) => handleConnection(socket, sessionDeps, origin),
        // The client reads it as FATAL, as it reads the server's own for too many clients.
        refusal: (cause) =>
          errorResponse({
            severity: 'FATAL',
            code: cause === 'draining' ? '57P03' : '53300',
            message: cause === 'draining' ? 'Gatehouse is shutting down' : 'sorry, too many clients already',
          }),
      },
      { maxConnections: deps.config.limits.maxConnections, logger: deps.logger, metrics: deps.metrics },
    );
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return this.server.listen(host, port);
  }

  get sessionCount(): number {
    return this.server.sessionCount;
  }

  /** A connection handed over in this process (the MCP server's tool calls): see in-process-channel.ts. */
  connectInProcess(origin: ConnectionOrigin): InProcessClientStream {
    return this.server.connectInProcess(origin);
  }

  /** Stops accepting, ends idle sessions now and busy ones when idle, and the rest after `graceMs`. */
  shutdown(graceMs: number): Promise<void> {
    return this.server.shutdown(graceMs);
  }
}
