import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { ConnectionOrigin, InProcessClientStream } from '../in-process-channel.ts';
import { ProxyServer } from '../proxy-server.ts';
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
  private readonly server: ProxyServer<MysqlSession>;
  private readonly deps: MysqlSessionDeps;
  private greeting: ServerGreeting | undefined;
  private fetching: Promise<ServerGreeting> | undefined;

  constructor(deps: MysqlServerDeps) {
    const tls = deps.config.clientTls;
    this.deps = {
      ...deps,
      tlsContext: tls ? createSecureContext({ cert: tls.cert, key: tls.key }) : undefined,
      draining: () => this.server.draining,
      sessions: new SessionRegistry(),
      greeting: () => this.currentGreeting(),
      rememberGreeting: (g) => {
        this.greeting = g;
      },
    };
    this.server = new ProxyServer(
      {
        connect: (socket, origin) => handleMysqlConnection(socket, this.deps, origin),
        // In place of the greeting, as the server does for too many connections.
        refusal: (cause) =>
          cause === 'draining'
            ? errPacket(MysqlError.SHUTDOWN, 'Gatehouse is shutting down', 0, false)
            : errPacket(MysqlError.TOO_MANY_CONNECTIONS, 'Too many connections', 0, false),
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

  /** As PostgresProxyServer.shutdown: idle sessions end at once, busy ones when idle or after the grace. */
  shutdown(graceMs: number): Promise<void> {
    return this.server.shutdown(graceMs);
  }
}
