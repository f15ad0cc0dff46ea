import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { drainSessions } from '../drain-sessions.ts';
import { MysqlError } from './constants.ts';
import { SessionRegistry } from './kill.ts';
import { errPacket } from './server-packets.ts';
import { handleMysqlConnection, type MysqlSession, type MysqlSessionDeps } from './session.ts';
import { fetchGreeting, type ServerGreeting } from './upstream.ts';

export type MysqlServerDeps = Omit<
  MysqlSessionDeps,
  'tlsContext' | 'draining' | 'sessions' | 'greeting' | 'rememberGreeting'
>;

/** Accepts MySQL clients and runs a session for each, up to the connection limit. */
export class MysqlProxyServer {
  private readonly server: Server;
  private readonly sessions = new Set<MysqlSession>();
  private readonly deps: MysqlSessionDeps;
  private draining = false;
  private greeting: ServerGreeting | undefined;
  private fetching: Promise<ServerGreeting> | undefined;

  constructor(deps: MysqlServerDeps) {
    const tls = deps.config.clientTls;
    this.deps = {
      ...deps,
      tlsContext: tls ? createSecureContext({ cert: tls.cert, key: tls.key }) : undefined,
      draining: () => this.draining,
      sessions: new SessionRegistry(),
      greeting: () => this.currentGreeting(),
      rememberGreeting: (g) => {
        this.greeting = g;
      },
    };
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
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

  /**
   * The clients' greeting copies the server's version and capabilities, read once from the server
   * (without logging in) and refreshed by every upstream login.
   */
  private currentGreeting(): Promise<ServerGreeting> {
    if (this.greeting) return Promise.resolve(this.greeting);
    const u = this.deps.config.upstream;
    this.fetching ??= fetchGreeting({
      host: u.host,
      port: u.port,
      connectTimeoutMs: u.connectTimeoutMs,
    }).then(
      (g) => {
        this.greeting = g;
        this.fetching = undefined;
        return g;
      },
      (error: unknown) => {
        this.fetching = undefined;
        throw error;
      },
    );
    return this.fetching;
  }

  private accept(socket: Socket): void {
    const { config, logger, metrics } = this.deps;
    if (this.draining || this.sessions.size >= config.limits.maxConnections) {
      metrics.connection('refused');
      logger.warn(
        { client: socket.remoteAddress, sessions: this.sessions.size },
        'connection refused: proxy full or shutting down',
      );
      // In place of the greeting, as the server does for too many connections.
      socket.on('error', () => {});
      socket.end(
        this.draining
          ? errPacket(MysqlError.SHUTDOWN, 'Gatehouse is shutting down', 0, false)
          : errPacket(MysqlError.TOO_MANY_CONNECTIONS, 'Too many connections', 0, false),
      );
      return;
    }
    const session = handleMysqlConnection(socket, this.deps);
    this.sessions.add(session);
    session.whenClosed(() => this.sessions.delete(session));
  }

  /** As PostgresProxyServer.shutdown: idle sessions end at once, busy ones when idle or after the grace. */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    await drainSessions(this.server, this.sessions, graceMs);
  }
}
