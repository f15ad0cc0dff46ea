import { randomBytes, timingSafeEqual } from 'node:crypto';

export type ConsoleRole = 'viewer' | 'approver';

/** Who signed in to the console, and how they may be forwarded to a proxy's approvals API. */
export interface ConsoleUser {
  readonly subject: string;
  readonly groups: readonly string[];
  readonly roles: readonly ConsoleRole[];
  readonly method: 'local' | 'token' | 'oidc';
  /**
   * What the proxy's approvals API accepts from this person (Basic for a local user, Bearer for a
   * token), kept in the collector's memory only, so a decision is the proxy's to check, as theirs.
   */
  readonly forward?: string;
  /**
   * A token the Kubernetes API server may authenticate as this person (the pasted token, or the
   * OpenID ID token), for writing their decision on an ApprovalRequest; memory only, never in a page.
   */
  readonly apiToken?: string;
}

export interface ConsoleSession {
  readonly user: ConsoleUser;
  /** The synchronizer token every POST form carries. */
  readonly csrf: string;
  readonly expiresAt: number;
  /** A message for the next page this session sees (what a decision came to), shown once. */
  flash?: { readonly kind: 'notice' | 'problem'; readonly message: string };
}

export const SESSION_COOKIE = 'gatehouse_console';

/**
 * Signed-in sessions, in this collector's memory: the cookie holds only a random id, so nothing a
 * browser keeps can be forged or read, and a restart signs everyone out. With several replicas behind
 * one Service, the console needs sticky sessions (docs/collector.md, The console).
 */
export class ConsoleSessions {
  readonly #sessions = new Map<string, ConsoleSession>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: { ttlMs: number; max?: number }) {
    this.#ttlMs = options.ttlMs;
    this.#max = options.max ?? 10_000;
  }

  create(user: ConsoleUser, now = Date.now()): { id: string; session: ConsoleSession } {
    this.#sweep(now);
    // The oldest go first when full, rather than refusing sign-ins.
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = {
      user,
      csrf: randomBytes(32).toString('base64url'),
      expiresAt: now + this.#ttlMs,
    };
    this.#sessions.set(id, session);
    return { id, session };
  }

  get(id: string | undefined, now = Date.now()): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= now) {
      this.#sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string | undefined): void {
    if (id !== undefined) this.#sessions.delete(id);
  }

  get ttlSeconds(): number {
    return Math.floor(this.#ttlMs / 1000);
  }

  #sweep(now: number): void {
    for (const [id, session] of this.#sessions) if (session.expiresAt <= now) this.#sessions.delete(id);
  }
}

/** Whether a form's token is the session's, in constant time. */
export function csrfMatches(session: ConsoleSession, offered: unknown): boolean {
  if (typeof offered !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(offered);
  return a.length === b.length && timingSafeEqual(a, b);
}
