import type { Socket } from 'node:net';

/**
 * Collects what one incoming chunk produces for the other side and writes it at once: a single buffer
 * (the common case: the chunk passed through) as one write, several as one corked writev.
 */
export class BatchedWrite {
  private first: Buffer | undefined;
  private rest: Buffer[] = [];

  readonly add = (bytes: Buffer): void => {
    if (this.first === undefined) this.first = bytes;
    else this.rest.push(bytes);
  };

  flush(socket: Socket): void {
    const first = this.first;
    if (first === undefined) return;
    this.first = undefined;
    if (this.rest.length === 0) {
      socket.write(first);
      return;
    }
    socket.cork();
    socket.write(first);
    for (const bytes of this.rest) socket.write(bytes);
    this.rest = [];
    socket.uncork();
  }

  reset(): void {
    this.first = undefined;
    this.rest = [];
  }
}
