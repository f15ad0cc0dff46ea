import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** The upstream session a client's cancel key stands for. */
export interface UpstreamKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

interface Entry {
  readonly secret: Buffer;
  readonly upstream: UpstreamKey;
}

/**
 * Clients get cancel keys of our own, never the upstream's: a CancelRequest is only forwarded when it
 * names a live session of this proxy, and then to the right upstream backend.
 */
export class CancelKeys {
  private readonly entries = new Map<number, Entry>();

  issue(upstream: UpstreamKey): { processId: number; secretKey: Buffer } {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.entries.has(processId));
    const secret = randomBytes(4);
    this.entries.set(processId, { secret, upstream });
    return { processId, secretKey: secret };
  }

  lookup(processId: number, secretKey: Buffer): UpstreamKey | undefined {
    const entry = this.entries.get(processId);
    if (!entry || entry.secret.length !== secretKey.length || !timingSafeEqual(entry.secret, secretKey))
      return undefined;
    return entry.upstream;
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  get size(): number {
    return this.entries.size;
  }
}
