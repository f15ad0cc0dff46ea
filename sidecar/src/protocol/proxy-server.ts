import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { SessionMetrics } from '../metrics.ts';
import { type DrainableSession, drainSessions } from './drain-sessions.ts';
import { type ConnectionOrigin, type InProcessClientStream, inProcessPair } from './in-process-channel.ts';

/** A protocol's connection as the server sees it: drained on shutdown, forgotten once closed. */
export interface ServedConnection extends DrainableSession {
  whenClosed(listener: () => void): void;
}

/** What a protocol gives the server: how to run a connection, and how to turn one away. */
export interface ServedProtocol<C extends ServedConnection> {
  /** Runs a new client's connection (its startup, then its session); `origin` only for one made in process. */
  connect(socket: Socket, origin?: ConnectionOrigin): C;
  /** The protocol's own error for a client turned away before its startup. */
  refusal(cause: 'full' | 'draining'): Buffer;
}

/**
 * The listening side of either protocol: accepts clients up to `maxConnections`, turns away the rest
 * (and everyone once draining) with the protocol's own error, and drains on shutdown.
 */
export class ProxyServer<C extends ServedConnection> {
  private readonly server: Server;
  private readonly connections = new Set<C>();
  private readonly protocol: ServedProtocol<C>;
  private readonly settings: { maxConnections: number; logger: Logger; metrics: SessionMetrics };
  #draining = false;

  constructor(
    protocol: ServedProtocol<C>,
    settings: { maxConnections: number; logger: Logger; metrics: SessionMetrics },
  ) {
    this.protocol = protocol;
    this.settings = settings;
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  get draining(): boolean {
    return this.#draining;
  }

  get sessionCount(): number {
    return this.connections.size;
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

  /**
   * Stops accepting connections, ends idle sessions at once and busy ones when they next become idle,
   * and after `graceMs` ends whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#draining = true;
    await drainSessions(this.server, this.connections, graceMs);
  }

  /**
   * A connection made in this process, whose origin the session trusts because no client sent it:
   * the client's end is returned, the other runs as any accepted client's, under the same limits.
   */
  connectInProcess(origin: ConnectionOrigin): InProcessClientStream {
    const { client, server } = inProcessPair();
    this.accept(server, origin);
    return client;
  }

  private accept(socket: Socket, origin?: ConnectionOrigin): void {
    const { logger, metrics, maxConnections } = this.settings;
    if (this.#draining || this.connections.size >= maxConnections) {
      metrics.connection('refused');
      logger.warn(
        { client: socket.remoteAddress, sessions: this.connections.size },
        'connection refused: proxy full or shutting down',
      );
      // Answered in place of the startup, as the database does for too many clients.
      socket.on('error', () => {});
      socket.end(this.protocol.refusal(this.#draining ? 'draining' : 'full'));
      return;
    }
    const connection = this.protocol.connect(socket, origin);
    this.connections.add(connection);
    connection.whenClosed(() => this.connections.delete(connection));
  }
}
