import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { drainSessions } from '../drain-sessions.ts';
import { errorResponse } from './backend-writer.ts';
import { CancelKeys } from './cancel-keys.ts';
import { handleConnection, type PostgresConnection } from './connection.ts';
import type { SessionDeps } from './session-deps.ts';

export type PostgresServerDeps = Omit<SessionDeps, 'cancelKeys' | 'tlsContext' | 'draining'>;

/** Accepts PostgreSQL clients and runs a session for each, up to the connection limit. */
export class PostgresProxyServer {
  private readonly server: Server;
  private readonly sessions = new Set<PostgresConnection>();
  private readonly deps: SessionDeps;
  private draining = false;

  constructor(deps: PostgresServerDeps) {
    const tls = deps.config.clientTls;
    this.deps = {
      ...deps,
      cancelKeys: new CancelKeys(),
      tlsContext: tls ? createSecureContext({ cert: tls.cert, key: tls.key }) : undefined,
      draining: () => this.draining,
    };
    this.server = createServer({ noDelay: true, pauseOnConnect: false }, (socket) => this.accept(socket));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, backlog: 1024 }, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private accept(socket: Socket): void {
    const { config, logger, metrics } = this.deps;
    if (this.draining || this.sessions.size >= config.limits.maxConnections) {
      metrics.connection('refused');
      logger.warn(
        { client: socket.remoteAddress, sessions: this.sessions.size },
        'connection refused: proxy full or shutting down',
      );
      // Answered before startup, as the server does for too many clients; the client reads it as FATAL.
      socket.on('error', () => {});
      socket.end(
        errorResponse({
          severity: 'FATAL',
          code: this.draining ? '57P03' : '53300',
          message: this.draining ? 'Gatehouse is shutting down' : 'sorry, too many clients already',
        }),
      );
      return;
    }
    const session = handleConnection(socket, this.deps);
    this.sessions.add(session);
    session.whenClosed(() => this.sessions.delete(session));
  }

  /**
   * Stops accepting connections, ends idle sessions at once and busy ones when they next become idle,
   * and after `graceMs` ends whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    await drainSessions(this.server, this.sessions, graceMs);
  }
}
