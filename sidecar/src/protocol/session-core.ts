import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { SessionMetrics } from '../metrics.ts';
import { AuditHeldWrite, MAX_HELD_BYTES } from './audit-held-write.ts';
import { BatchedWrite } from './batched-write.ts';

/** Why the core ends a session with an error the client reads. */
export type FatalCause =
  /** The client broke its protocol; the error is what framing threw. */
  | 'client-protocol'
  /** The server sent what is not its protocol. */
  | 'server-protocol'
  /** The proxy is shutting down. */
  | 'shutdown';

/** What one wire protocol supplies to the session core. Called per chunk, never per message. */
export interface RelayProtocol {
  /** Frames a chunk from the client, handing what goes to the server to `out`, in order. Throws on a violation. */
  clientChunk(chunk: Buffer, out: (bytes: Buffer) => void): void;
  /**
   * After a client chunk's bytes were written (or held for their audit records), and after each
   * resumption (see SessionCore.holdClientUntil): answers owed, a catalog reload to start.
   */
  afterClientChunk(): void;
  /** Whether framing holds the client's stream (a message waits to be judged again). */
  holdingClient(): boolean;
  /** Frames a chunk from the server, handing what goes to the client to `out`. Throws when it is not the protocol. */
  serverChunk(chunk: Buffer, out: (bytes: Buffer) => void): void;
  /** Statements held for their audit records went (or were refused): answers owed for them can follow. */
  auditReleased(): void;
  /** The error the client reads just before the connection closes. */
  fatal(cause: FatalCause, error?: unknown): Buffer;
  /** What tells the server the session is over (unless the client's own quit went already). */
  quit(): Buffer;
  /** Runs once, when the session has closed: its last audit record, its cancel key. */
  ended(reason: string): void;
}

/** The sockets of an established session, and what the core reports to. */
export interface CoreSockets {
  /** The client's socket (TLS or not), paused. */
  readonly client: Socket;
  /** The server's socket, logged in, paused, with no listener of ours. */
  readonly server: Socket;
  readonly metrics: SessionMetrics;
  readonly logger: Logger;
}

/**
 * The relay under both protocols' sessions: bytes both ways in batched writes, the client's bytes
 * held for their audit records, backpressure, the close guard, shutdown, and the connection metrics.
 *
 * Backpressure: the client is paused while the server's socket needs draining or more than
 * MAX_HELD_BYTES wait for audit records; the server is paused while the client's socket needs
 * draining. Each resumes on the other's 'drain'.
 *
 * The server's end: once the session is closed, or the client sent its quit, whatever the server
 * does next (close, reset, error) is the end the client asked for, logged at debug level and not
 * counted. Before that, the server going away is an upstream error, counted and logged as a warning,
 * whether or not its socket reported one: a database that ends a live session is the failure the
 * metric exists for. The server's error listener is attached for the session's whole life and never
 * removed, so no error of a socket being destroyed goes unhandled.
 */
export class SessionCore {
  readonly client: Socket;
  readonly server: Socket;
  /** Bytes for the server, each statement held until its audit record is written. */
  readonly toServer: AuditHeldWrite;
  /** Why the session will have ended if the client goes now; protocols set it as they learn more. */
  endReason = 'client';
  private readonly toClient = new BatchedWrite();
  private readonly protocol: RelayProtocol;
  private readonly metrics: SessionMetrics;
  private readonly logger: Logger;
  #closed = false;
  /** The client's own quit went to the server: the server needs no second one, and may now hang up. */
  private quitSent = false;
  private readonly onClosed: Array<() => void> = [];

  constructor(sockets: CoreSockets, protocol: RelayProtocol) {
    this.client = sockets.client;
    this.server = sockets.server;
    this.metrics = sockets.metrics;
    this.logger = sockets.logger;
    this.protocol = protocol;
    this.toServer = new AuditHeldWrite(
      () => this.server,
      () => this.onAuditReleased(),
    );
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `listener` once the session has ended (at once if it has). */
  whenClosed(listener: () => void): void {
    if (this.#closed) listener();
    else this.onClosed.push(listener);
  }

  /** Starts relaying: `serverLeftover` and `clientLeftover` are what each side sent past login, unread. */
  start(serverLeftover: Buffer, clientLeftover: Buffer): void {
    const { client, server, metrics } = this;
    metrics.connection('accepted');
    // Taken back by the session's end record (audit/record-statement.ts recordSessionEnd).
    metrics.active(1);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    server.on('data', (chunk: Buffer) => this.onServerData(chunk));
    client.on('drain', () => server.resume());
    server.on('drain', () => client.resume());
    client.on('close', () => this.close(this.endReason));
    client.on('end', () => this.close(this.endReason));
    server.on('close', () => this.serverEnded(undefined));
    server.on('end', () => this.serverEnded(undefined));
    server.on('error', (error) => this.serverEnded(error));
    if (serverLeftover.length > 0) this.onServerData(serverLeftover);
    if (clientLeftover.length > 0) this.onClientData(clientLeftover);
    server.resume();
    client.resume();
  }

  /** The client's quit is on its way to the server (see the class comment). */
  clientQuit(): void {
    this.endReason = 'client';
    this.quitSent = true;
  }

  /**
   * Stops reading the client until `ready` settles, then has `resume` frame what framing held (its
   * bytes for the server go to `out`) and reads on, unless framing holds the stream again.
   */
  holdClientUntil(ready: Promise<unknown>, resume: (out: (bytes: Buffer) => void) => void): void {
    this.client.pause();
    void ready.then(() => {
      if (this.#closed) return;
      try {
        resume(this.toServer.add);
      } catch (error) {
        this.toServer.reset();
        this.clientViolation(error);
        return;
      }
      this.afterClientChunk();
      if (!this.server.writableNeedDrain && !this.protocol.holdingClient()) this.client.resume();
    });
  }

  /** Ends the session as the server would on an administrator's shutdown. */
  terminate(reason: string): void {
    if (this.#closed) return;
    this.endReason = reason;
    this.endWith(this.protocol.fatal('shutdown'));
  }

  /** Sends the client its last message, then closes. */
  endWith(message: Buffer, reason?: string): void {
    if (reason) this.endReason = reason;
    if (!this.client.destroyed && this.client.writable) this.client.end(message);
    this.close(this.endReason);
  }

  /** Idempotent: tears both sides down, then tells the protocol and whoever waits for the end. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const server = this.server;
    const endServer = () => {
      if (!server.destroyed && server.writable)
        if (this.quitSent) server.end();
        else server.end(this.protocol.quit());
      setTimeout(() => server.destroy(), 1000).unref();
    };
    // A client that hung up right after its last statements still has them run once their records
    // are written (as if they had gone straight through); any other end drops them.
    if (reason === 'client') this.toServer.whenIdle(endServer);
    else {
      this.toServer.reset();
      endServer();
    }
    if (!this.client.writableEnded) this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    this.protocol.ended(reason);
    for (const listener of this.onClosed.splice(0)) listener();
  }

  private onClientData(chunk: Buffer): void {
    if (this.#closed) return;
    this.metrics.bytesIn(chunk.length);
    try {
      this.protocol.clientChunk(chunk, this.toServer.add);
    } catch (error) {
      this.toServer.reset();
      this.clientViolation(error);
      return;
    }
    this.afterClientChunk();
  }

  private afterClientChunk(): void {
    this.toServer.flush();
    this.protocol.afterClientChunk();
    if (this.server.writableNeedDrain || this.toServer.heldBytes > MAX_HELD_BYTES) this.client.pause();
  }

  private onAuditReleased(): void {
    if (this.#closed) return;
    this.protocol.auditReleased();
    if (!this.server.writableNeedDrain && this.toServer.heldBytes <= MAX_HELD_BYTES) this.client.resume();
  }

  private onServerData(chunk: Buffer): void {
    if (this.#closed) return;
    this.metrics.bytesOut(chunk.length);
    try {
      this.protocol.serverChunk(chunk, this.toClient.add);
    } catch (error) {
      this.toClient.reset();
      this.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        'invalid data from the database',
      );
      this.metrics.upstreamError('protocol');
      this.endWith(this.protocol.fatal('server-protocol', error));
      return;
    }
    this.toClient.flush(this.client);
    if (this.client.writableNeedDrain) this.server.pause();
  }

  private clientViolation(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.logger.warn({ reason: message }, 'protocol violation by client; closing the session');
    this.endWith(this.protocol.fatal('client-protocol', error), 'protocol-error');
  }

  private serverEnded(error: Error | undefined): void {
    if (this.#closed || this.quitSent) {
      if (error) this.logger.debug({ err: error.message }, 'upstream reset after the client left');
      this.close(this.endReason);
      return;
    }
    this.metrics.upstreamError('closed');
    if (error) this.logger.warn({ err: error.message }, 'upstream connection error');
    else this.logger.warn('the database closed the connection');
    this.close('upstream');
  }
}
