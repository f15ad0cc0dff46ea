import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** The upstream session a client's cancel key stands for. */
export interface UpstreamKey {
  readonly processId: number;
  readonly secretKey: Buffer;
}

interface Entry {
  readonly secret: Buffer;
  readonly upstream: UpstreamKey;
  /** The session's own work a cancel ends (a statement waiting for approval, which the server never saw). */
  onCancel?: () => void;
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

  /** The upstream key of a valid cancel; the session's own cancel listener runs first. */
  lookup(processId: number, secretKey: Buffer): UpstreamKey | undefined {
    const entry = this.entries.get(processId);
    if (!entry || entry.secret.length !== secretKey.length || !timingSafeEqual(entry.secret, secretKey))
      return undefined;
    entry.onCancel?.();
    return entry.upstream;
  }

  /** What a valid cancel of this session also ends, besides the server's statement. */
  onCancel(processId: number, listener: () => void): void {
    const entry = this.entries.get(processId);
    if (entry) entry.onCancel = listener;
  }

  release(processId: number): void {
    this.entries.delete(processId);
  }

  get size(): number {
    return this.entries.size;
  }
}
