import { connect, type Socket } from 'node:net';
import { parse, serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';

/**
 * A minimal PostgreSQL client on a raw socket, for tests that need to see or control every message:
 * counting millions of rows without holding them, reading slowly, sending hostile bytes.
 */
export class RawClient {
  readonly socket: Socket;
  private listeners: Array<(message: BackendMessage) => void> = [];
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void parse(socket, (message) => {
      for (const listener of [...this.listeners]) listener(message);
    }).catch(() => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects and authenticates with a password; resolves at the first ReadyForQuery. */
  static async login(port: number, user: string, password: string, database = 'app'): Promise<RawClient> {
    const client = await RawClient.connect(port);
    const ready = client.waitFor('readyForQuery');
    client.onMessage((m) => {
      if (m.name === 'authenticationCleartextPassword') client.socket.write(serialize.password(password));
    });
    client.socket.write(serialize.startup({ user, database }));
    await ready;
    return client;
  }

  onMessage(listener: (message: BackendMessage) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Resolves with the next message of that name; rejects on an ErrorResponse first if `failOnError`. */
  waitFor(name: string, failOnError = true): Promise<BackendMessage> {
    return new Promise((resolve, reject) => {
      const off = this.onMessage((m) => {
        if (m.name === name) {
          off();
          resolve(m);
        } else if (failOnError && m.name === 'error') {
          off();
          reject(Object.assign(new Error((m as { message?: string }).message ?? 'error'), m));
        }
      });
      void this.closed.then(() => reject(new Error(`connection closed while waiting for ${name}`)));
    });
  }

  query(sql: string): void {
    this.socket.write(serialize.query(sql));
  }

  close(): void {
    if (!this.socket.destroyed) this.socket.end(serialize.end());
  }
}
