import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Identity } from '../../identity/identity.ts';
import type { ConnectionOrigin } from '../in-process-channel.ts';
import { MysqlError, type MysqlErrorKind } from './constants.ts';
import { type ClientLine, type Established, type HandshakeDeps, mysqlHandshake } from './handshake.ts';
import { RefusedStart } from './login-refusals.ts';
import { ProtocolError } from './protocol-error.ts';
import { MysqlRelay, type RelayDeps } from './relay.ts';
import { errPacket } from './server-packets.ts';

export type MysqlSessionDeps = HandshakeDeps & RelayDeps;

/** Runs one client connection from its first byte to its close. Never throws. */
export function handleMysqlConnection(
  socket: Socket,
  deps: MysqlSessionDeps,
  origin?: ConnectionOrigin,
): MysqlSession {
  const session = new MysqlSession(socket, deps, origin);
  session.start();
  return session;
}

/**
 * One client connection: its login (handshake.ts), then its running session (relay.ts over the
 * session core), and its end, whichever side or phase causes it.
 */
export class MysqlSession {
  readonly id = randomBytes(8).toString('hex');
  /** The thread id the client sees (its greeting's connection id), mapped to the upstream's. */
  readonly connectionId: number;
  upstreamThreadId: number | undefined;
  identity: Identity | undefined;

  private readonly line: ClientLine;
  private readonly deps: MysqlSessionDeps;
  /** Set once the client is logged in: from then on the session core owns the end. */
  private relay: MysqlRelay | undefined;
  private startupClosed = false;
  /** Why the login ends, when it does (the session core keeps its own once it runs). */
  private endReason = 'client';
  private readonly onClosed: Array<() => void> = [];

  private readonly origin: ConnectionOrigin | undefined;

  constructor(client: Socket, deps: MysqlSessionDeps, origin?: ConnectionOrigin) {
    this.deps = deps;
    this.origin = origin;
    this.connectionId = deps.sessions.register(this);
    this.line = {
      socket: client,
      greeted: false,
      tls: false,
      logger: deps.logger.child({ session: this.id, client: client.remoteAddress }),
    };
  }

  get closed(): boolean {
    return this.relay ? this.relay.core.closed : this.startupClosed;
  }

  whenClosed(listener: () => void): void {
    if (this.closed) listener();
    else this.onClosed.push(listener);
  }

  /** True while no command is in flight and no transaction is open. */
  get idle(): boolean {
    return this.relay?.idle ?? true;
  }

  /** A KILL from another connection: the statement waiting for approval, if any, is withdrawn. */
  withdrawHeld(): boolean {
    return this.relay?.withdrawHeld() ?? false;
  }

  start(): void {
    const client = this.line.socket;
    // Read before TLS: a TLS socket over a wrapped stream does not know the address.
    const peer = { address: client.remoteAddress ?? '', port: client.remotePort ?? 0 };
    client.setNoDelay(true);
    client.on('error', (error) => this.line.logger.debug({ err: error.message }, 'client socket error'));
    const timer = setTimeout(() => {
      this.line.logger.info('client did not finish the handshake in time');
      this.close('startup-timeout');
    }, this.deps.config.limits.startupTimeoutMs);
    const who = {
      session: this.id,
      connectionId: this.connectionId,
      peer,
      closed: () => this.closed,
      origin: this.origin,
    };
    // A failure to begin the session once logged in is a startup failure too, never an unhandled rejection.
    void mysqlHandshake(this.line, who, this.deps)
      .then((established) => {
        clearTimeout(timer);
        if (established) this.begin(established, peer);
        else this.close('client');
      })
      .catch((error: unknown) => {
        clearTimeout(timer);
        this.failStartup(error);
      });
  }

  private begin(established: Established, peer: { readonly address: string; readonly port: number }): void {
    if (this.startupClosed) {
      established.upstream.on('error', () => {});
      established.upstream.destroy();
      return;
    }
    this.identity = established.identity;
    this.upstreamThreadId = established.upstreamThreadId;
    const context = {
      session: this.id,
      identity: established.identity,
      client: peer,
      database: this.deps.config.upstream.database,
      protocol: 'mysql' as const,
      ...(established.application !== undefined && { application: established.application }),
      ...(established.purpose !== undefined && { purpose: established.purpose }),
      ...(established.runId !== undefined && { runId: established.runId }),
      ...(established.mcpTool !== undefined && { mcpTool: established.mcpTool }),
    };
    const relay = new MysqlRelay(established, context, this.deps, () =>
      this.deps.sessions.release(this.connectionId),
    );
    this.relay = relay;
    relay.core.whenClosed(() => this.notifyClosed());
    relay.start();
  }

  /** Ends the session; the client reads the error on its next command. */
  terminate(reason: string): void {
    if (this.relay) {
      this.relay.core.terminate(reason);
      return;
    }
    if (this.closed) return;
    this.endReason = reason;
    this.sendFatal(MysqlError.SHUTDOWN, 'Gatehouse is shutting down', 0);
  }

  /** Idempotent: tears both sides down and writes the session's last audit record. */
  close(reason: string): void {
    if (this.relay) {
      this.relay.core.close(reason);
      return;
    }
    if (this.startupClosed) return;
    this.startupClosed = true;
    this.deps.sessions.release(this.connectionId);
    const client = this.line.socket;
    if (!client.writableEnded) client.end();
    setTimeout(() => client.destroy(), 1000).unref();
    this.notifyClosed();
  }

  private failStartup(error: unknown): void {
    if (this.closed) return;
    const { logger } = this.line;
    if (error instanceof RefusedStart) {
      logger.info({ code: error.kind.code, reason: error.message }, 'connection refused');
      this.sendFatal(error.kind, error.message, error.seq, 'refused');
      return;
    }
    if (error instanceof ProtocolError) {
      this.deps.metrics.connection('failed');
      logger.info({ reason: error.message }, 'protocol error during the handshake');
      this.sendFatal(MysqlError.MALFORMED, error.message, 2, 'protocol-error');
      return;
    }
    this.deps.metrics.connection('failed');
    logger.error(
      { err: error instanceof Error ? error.message : String(error) },
      'session failed during the handshake',
    );
    this.sendFatal(
      MysqlError.MALFORMED,
      'internal error in Gatehouse; see the proxy log',
      2,
      'internal-error',
    );
  }

  /** Answers a login with a fatal error and closes. */
  private sendFatal(kind: MysqlErrorKind, message: string, seq: number, reason?: string): void {
    if (reason) this.endReason = reason;
    const client = this.line.socket;
    if (!client.destroyed && client.writable) client.end(errPacket(kind, message, seq, this.line.greeted));
    this.close(this.endReason);
  }

  private notifyClosed(): void {
    for (const listener of this.onClosed.splice(0)) listener();
  }
}
