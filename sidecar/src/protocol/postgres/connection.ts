import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { AuthError } from '../../identity/identity.ts';
import type { DrainableSession } from '../drain-sessions.ts';
import type { ConnectionOrigin } from '../in-process-channel.ts';
import { type ErrorFields, errorResponse } from './backend-writer.ts';
import { ProtocolError } from './protocol-error.ts';
import { PostgresSession } from './session.ts';
import type { SessionDeps } from './session-deps.ts';
import { type Established, RefusedStart, Startup } from './startup.ts';

/** Runs one client connection from its first byte to its close. Never throws. */
export function handleConnection(
  socket: Socket,
  deps: SessionDeps,
  origin?: ConnectionOrigin,
): PostgresConnection {
  const connection = new PostgresConnection(socket, deps, origin);
  connection.start();
  return connection;
}

/** One client connection: its startup, then the session it becomes. */
export class PostgresConnection implements DrainableSession {
  readonly id = randomBytes(8).toString('hex');
  private readonly deps: SessionDeps;
  private readonly startup: Startup;
  private session: PostgresSession | undefined;
  #closed = false;
  private endReason = 'client';
  private readonly onClosed: Array<() => void> = [];

  constructor(client: Socket, deps: SessionDeps, origin?: ConnectionOrigin) {
    this.deps = deps;
    const logger = deps.logger.child({ session: this.id, client: client.remoteAddress });
    this.startup = new Startup(client, logger, deps, this, origin);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `listener` once the connection has ended. */
  whenClosed(listener: () => void): void {
    if (this.#closed) listener();
    else this.onClosed.push(listener);
  }

  /** True while there is no statement in flight and no open transaction (always, before the session). */
  get idle(): boolean {
    return this.session?.idle ?? true;
  }

  start(): void {
    const client = this.startup.client;
    client.setNoDelay(true);
    client.on('error', (error) => this.startup.logger.debug({ err: error.message }, 'client socket error'));
    // A failure to begin the session is a failure of the startup too: the client gets its FATAL.
    void this.startup
      .run()
      .then((established) => this.begin(established))
      .catch((error: unknown) => this.failStartup(error));
  }

  /** Ends the connection as the server would on an administrator's shutdown. */
  terminate(reason: string): void {
    if (this.session) {
      this.session.terminate(reason);
      return;
    }
    if (this.#closed) return;
    this.endReason = reason;
    this.sendFatal({
      severity: 'FATAL',
      code: '57P01',
      message: 'terminating connection because Gatehouse is shutting down',
    });
  }

  /** Before the session: ends the client's socket. After: the session's close. */
  close(reason: string): void {
    if (this.session) {
      this.session.close(reason);
      return;
    }
    if (this.#closed) return;
    const client = this.startup.client;
    if (!client.writableEnded) client.end();
    setTimeout(() => client.destroy(), 1000).unref();
    this.closeListeners();
  }

  private begin(established: Established | undefined): void {
    // A cancel request, or a client gone during startup: nothing more to run.
    if (!established) {
      this.close('client');
      return;
    }
    const session = new PostgresSession(this.id, established, this.deps);
    this.session = session;
    session.whenClosed(() => this.closeListeners());
    session.start();
  }

  private closeListeners(): void {
    this.#closed = true;
    for (const listener of this.onClosed.splice(0)) listener();
  }

  private failStartup(error: unknown): void {
    if (this.#closed) return;
    const { logger } = this.startup;
    if (error instanceof AuthError || error instanceof RefusedStart) {
      logger.info({ sqlstate: error.sqlstate, reason: error.message }, 'connection refused');
      this.sendFatal({ severity: 'FATAL', code: error.sqlstate, message: error.message }, 'refused');
      return;
    }
    if (error instanceof ProtocolError) {
      if (error.sqlstate !== '08006') {
        this.deps.metrics.connection('failed');
        logger.info({ reason: error.message }, 'protocol error during startup');
        this.sendFatal({ severity: 'FATAL', code: error.sqlstate, message: error.message }, 'protocol-error');
      } else this.close('client');
      return;
    }
    this.deps.metrics.connection('failed');
    logger.error(
      { err: error instanceof Error ? error.message : String(error) },
      'session failed during startup',
    );
    this.sendFatal(
      { severity: 'FATAL', code: 'XX000', message: 'internal error in Gatehouse; see the proxy log' },
      'internal-error',
    );
  }

  private sendFatal(fields: ErrorFields, reason?: string): void {
    if (reason) this.endReason = reason;
    const client = this.startup.client;
    if (!client.destroyed && client.writable) client.end(errorResponse(fields));
    this.close(this.endReason);
  }
}
