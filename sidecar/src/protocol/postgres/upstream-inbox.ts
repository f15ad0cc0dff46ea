import type net from 'node:net';
import { type BackendFrame, BackendMessageReader } from './backend-message-reader.ts';
import { Backend } from './codes.ts';
import { readErrorFields, UpstreamError } from './upstream-error.ts';

/** Handshake messages are small; a bigger one means we are not talking to PostgreSQL. */
const MAX_HANDSHAKE_MESSAGE = 1 << 20;

/**
 * The handshake's view of the socket: whole messages on demand, any socket failure, close, timeout
 * or abort surfacing from `next()`, and the server's ErrorResponse turned into an UpstreamError.
 */
export class Inbox {
  readonly socket: net.Socket;
  private readonly reader = new BackendMessageReader(MAX_HANDSHAKE_MESSAGE);
  private readonly signal: AbortSignal;
  private readonly label: string;
  private failure: unknown;
  private waiting: { resolve: (frame: BackendFrame) => void; reject: (err: unknown) => void } | undefined;

  constructor(socket: net.Socket, signal: AbortSignal, label: string) {
    this.socket = socket;
    this.signal = signal;
    this.label = label;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    signal.addEventListener('abort', this.onAbort);
    if (signal.aborted) this.onAbort();
  }

  /** The next message; an ErrorResponse is thrown as an UpstreamError. */
  async next(): Promise<BackendFrame> {
    const frame = this.take() ?? (await this.wait());
    if (frame.type === Backend.ErrorResponse) {
      const server = readErrorFields(frame.body);
      throw new UpstreamError(
        'server',
        `${this.label}: ${server.severity} ${server.sqlstate} ${server.message}`,
        {
          server,
        },
      );
    }
    return frame;
  }

  /** The next Authentication message's code and data; notices and protocol-version negotiation pass by. */
  async nextAuthentication(): Promise<{ code: number; data: Buffer }> {
    for (;;) {
      const frame = await this.next();
      if (frame.type === Backend.NoticeResponse || frame.type === Backend.NegotiateProtocolVersion) continue;
      if (frame.type !== Backend.Authentication) throw this.unexpected(frame, 'authentication');
      if (frame.body.length < 4) throw this.malformed('Authentication');
      return { code: frame.body.readInt32BE(0), data: frame.body.subarray(4) };
    }
  }

  unexpected(frame: BackendFrame, phase: string): UpstreamError {
    const type = JSON.stringify(String.fromCharCode(frame.type));
    return new UpstreamError('protocol', `${this.label}: unexpected message ${type} during ${phase}`);
  }

  malformed(what: string): UpstreamError {
    return new UpstreamError('protocol', `${this.label}: malformed or out-of-order ${what} message`);
  }

  /** Hands the socket over: paused first, so that nothing read after this is lost, then our listeners off. */
  release(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    this.signal.removeEventListener('abort', this.onAbort);
    return this.reader.remainder();
  }

  private take(): BackendFrame | undefined {
    if (this.failure !== undefined) throw this.failure;
    try {
      return this.reader.next();
    } catch (err) {
      this.fail(new UpstreamError('protocol', `${this.label}: ${(err as Error).message}`));
      throw this.failure;
    }
  }

  private wait(): Promise<BackendFrame> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    if (!this.waiting) return;
    const waiting = this.waiting;
    try {
      const frame = this.take();
      if (frame) {
        this.waiting = undefined;
        waiting.resolve(frame);
      }
    } catch (err) {
      this.waiting = undefined;
      waiting.reject(err);
    }
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.fail(new UpstreamError('network', `${this.label}: ${err.message}`, { code: err.code, cause: err }));
  };

  private readonly onClose = (): void => {
    this.fail(
      new UpstreamError('network', `${this.label}: server closed the connection during the handshake`),
    );
  };

  private readonly onAbort = (): void => {
    this.fail(this.signal.reason);
    this.socket.destroy();
  };

  private fail(err: unknown): void {
    if (this.failure === undefined) this.failure = err;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(this.failure);
  }
}
