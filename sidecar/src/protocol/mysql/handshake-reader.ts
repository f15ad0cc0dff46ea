import type { Socket } from 'node:net';
import { ProtocolError } from './protocol-error.ts';

export interface Packet {
  readonly seq: number;
  readonly payload: Buffer;
}

/**
 * Reads whole packets during the handshake, before the relay takes the socket over. Packets there are
 * small; anything over `maxPayload` is a protocol error.
 */
export class HandshakeReader {
  private socket: Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: { resolve: (p: Packet) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly maxPayload: number;

  private readonly onData = (chunk: Buffer) => {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.deliver();
  };
  private readonly onEnd = () => this.fail(new ProtocolError('connection closed during the handshake'));
  private readonly onError = (error: Error) => this.fail(new ProtocolError(error.message));

  constructor(maxPayload = 1 << 20) {
    this.maxPayload = maxPayload;
  }

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops reading; returns bytes received beyond the last packet read. */
  detach(): Buffer {
    const s = this.socket;
    if (s) {
      s.off('data', this.onData);
      s.off('end', this.onEnd);
      s.off('close', this.onEnd);
      s.off('error', this.onError);
      s.pause();
    }
    this.socket = undefined;
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }

  get bufferedBytes(): number {
    return this.buffered.length;
  }

  read(): Promise<Packet> {
    if (this.waiter) throw new Error('HandshakeReader.read is not reentrant');
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.deliver();
      if (this.waiter && this.socket) this.socket.resume();
    });
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (!waiter) {
      this.socket?.pause();
      return;
    }
    if (this.failure) {
      this.waiter = undefined;
      waiter.reject(this.failure);
      return;
    }
    if (this.buffered.length < 4) return;
    const length = this.buffered.readUIntLE(0, 3);
    if (length > this.maxPayload) {
      this.waiter = undefined;
      waiter.reject(new ProtocolError(`handshake packet of ${length} bytes is too large`));
      return;
    }
    if (this.buffered.length < 4 + length) return;
    const seq = this.buffered[3]!;
    const payload = this.buffered.subarray(4, 4 + length);
    this.buffered = this.buffered.subarray(4 + length);
    this.waiter = undefined;
    waiter.resolve({ seq, payload });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.deliver();
  }
}
