import type { Socket } from 'node:net';
import { ProtocolError } from './protocol-error.ts';

/**
 * Reads the first packets of a session (startup, SSL/GSS requests, password) before the relay takes
 * over. Not a hot path: it buffers, and it is detached once the session is authenticated.
 */
export class StartupReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private socket: Socket | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  };
  private readonly onEnd = () =>
    this.fail(new ProtocolError('client closed the connection during startup', '08006'));
  private readonly onError = (error: Error) => this.fail(error);

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onEnd);
  }

  /** Stops listening and returns any bytes received beyond what was read. */
  detach(): Buffer {
    const socket = this.socket;
    if (socket) {
      socket.off('data', this.onData);
      socket.off('end', this.onEnd);
      socket.off('error', this.onError);
      socket.off('close', this.onEnd);
    }
    this.socket = undefined;
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    return rest;
  }

  get bufferedBytes(): number {
    return this.size;
  }

  /** A packet without a type byte: int32 length (counting itself), then the payload returned. */
  async readUntyped(maxBytes: number): Promise<Buffer> {
    const header = await this.read(4);
    const length = header.readInt32BE(0);
    if (length < 8 || length > maxBytes) throw new ProtocolError(`invalid startup packet length ${length}`);
    return this.read(length - 4);
  }

  /** A typed message; returns its type and whole frame. */
  async readTyped(maxBytes: number): Promise<{ type: number; frame: Buffer }> {
    const header = await this.read(5);
    const length = header.readInt32BE(1);
    if (length < 4 || length + 1 > maxBytes) throw new ProtocolError(`invalid message length ${length}`);
    const body = await this.read(length - 4);
    return { type: header[0]!, frame: Buffer.concat([header, body]) };
  }

  private async read(n: number): Promise<Buffer> {
    while (this.size < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/** The name/value pairs of a startup packet (after its version); `user` is required, as in PostgreSQL. */
export function parseStartupParameters(packet: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let offset = 4;
  while (offset < packet.length && packet[offset] !== 0) {
    const keyEnd = packet.indexOf(0, offset);
    if (keyEnd < 0) throw new ProtocolError('invalid startup packet layout');
    const valueEnd = packet.indexOf(0, keyEnd + 1);
    if (valueEnd < 0) throw new ProtocolError('invalid startup packet layout');
    params.set(packet.toString('utf8', offset, keyEnd), packet.toString('utf8', keyEnd + 1, valueEnd));
    offset = valueEnd + 1;
  }
  if (!params.has('user'))
    throw new ProtocolError('no PostgreSQL user name specified in startup packet', '28000');
  return params;
}
