import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlClient } from '../store-driver.ts';
import { type BearerKeys, bearerKeys, derivedToken, seal, unseal } from './bearer-seal.ts';

export type ConsoleRole = 'viewer' | 'approver';

/** Who signed in to the console, and how they may be forwarded to a proxy's approvals API. */
export interface ConsoleUser {
  readonly subject: string;
  readonly groups: readonly string[];
  readonly roles: readonly ConsoleRole[];
  readonly method: 'local' | 'token' | 'oidc';
  /**
   * What the proxy's approvals API accepts from this person (Basic for a local user, Bearer for a
   * token), so a decision is the proxy's to check, as theirs. Stored only sealed under the session
   * cookie's key, never in a page.
   */
  readonly forward?: string;
  /**
   * A token the Kubernetes API server may authenticate as this person (the pasted token, or the
   * OpenID ID token), for writing their decision on an ApprovalRequest; sealed like `forward`.
   */
  readonly apiToken?: string;
}

export interface ConsoleSession {
  readonly user: ConsoleUser;
  /** The synchronizer token every POST form carries, derived from the cookie (never stored). */
  readonly csrf: string;
  readonly expiresAt: number;
}

/** A message for the next page a session sees (what a decision came to), shown once. */
export interface Flash {
  readonly kind: 'notice' | 'problem';
  readonly message: string;
}

export const SESSION_COOKIE = 'gatehouse_console';

/** Keys of this kind of row; an OpenID state's are another's (oidc-pending.ts). */
const PURPOSE = 'console-session';
/** The cookie's id as `create` makes it: 32 random bytes, base64url. */
const ID = /^[\w-]{43}$/;
/** Sessions one person may hold at once (browsers, tabs signed in anew); the oldest go first. */
const MAX_PER_SUBJECT = 20;

interface Sealed {
  readonly user: ConsoleUser;
  readonly expiresAt: number;
}

/**
 * Signed-in sessions, in the collector's store (table `console_sessions`), so any replica serves any
 * browser and a restart signs no one out. The cookie holds a random 256-bit id; the row is found by
 * its SHA-256 and its contents (the person, their roles, the credentials forwarded when they decide,
 * the expiry, the flash) are sealed with a key derived from the id (bearer-seal.ts): a reader of the
 * store can neither present a cookie nor read a password or token. The CSRF token is derived from
 * the id too, so it is not stored at all.
 *
 * Bounded by expiry, swept at each sign-in (the only time rows are added), and by
 * `MAX_PER_SUBJECT` per person, so one account signing in again and again evicts only its own
 * sessions, never anyone else's.
 */
export class ConsoleSessions {
  readonly #db: SqlClient;
  readonly #ttlMs: number;
  readonly #maxPerSubject: number;
  /** The keys of a session read in this request, for writing its flash; never kept past it. */
  readonly #keys = new WeakMap<ConsoleSession, BearerKeys>();

  constructor(db: SqlClient, options: { ttlMs: number; maxPerSubject?: number }) {
    this.#db = db;
    this.#ttlMs = options.ttlMs;
    this.#maxPerSubject = options.maxPerSubject ?? MAX_PER_SUBJECT;
  }

  async create(user: ConsoleUser, now = Date.now()): Promise<{ id: string; session: ConsoleSession }> {
    await this.#db.query('DELETE FROM console_sessions WHERE expires_at <= $1::timestamptz', [iso(now)]);
    const id = randomBytes(32).toString('base64url');
    const keys = bearerKeys(id, PURPOSE);
    const expiresAt = now + this.#ttlMs;
    const sealed: Sealed = { user: storedUser(user), expiresAt };
    await this.#db.query(
      `INSERT INTO console_sessions (lookup, subject, created_at, expires_at, sealed)
       VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5)`,
      [keys.lookup, user.subject, iso(now), iso(expiresAt), seal(keys, 'session', sealed)],
    );
    await this.#db.query(
      `DELETE FROM console_sessions WHERE lookup IN (SELECT lookup FROM console_sessions
         WHERE subject = $1 AND lookup <> $2 ORDER BY created_at DESC, lookup OFFSET $3)`,
      [user.subject, keys.lookup, this.#maxPerSubject - 1],
    );
    return { id, session: this.#session(id, keys, sealed) };
  }

  /** The session of a cookie, or undefined: unknown, tampered with, expired (and then deleted). */
  async get(id: string | undefined, now = Date.now()): Promise<ConsoleSession | undefined> {
    if (id === undefined || !ID.test(id)) return undefined;
    const keys = bearerKeys(id, PURPOSE);
    const [row] = await this.#db.query<{ sealed: string }>(
      'SELECT sealed FROM console_sessions WHERE lookup = $1',
      [keys.lookup],
    );
    if (!row) return undefined;
    // The expiry that counts is the sealed one: the plain column only serves the sweep.
    const opened = unseal(keys, 'session', row.sealed) as Sealed | undefined;
    if (!opened || !(opened.expiresAt > now)) {
      await this.#db.query('DELETE FROM console_sessions WHERE lookup = $1', [keys.lookup]);
      return undefined;
    }
    return this.#session(id, keys, opened);
  }

  async delete(id: string | undefined): Promise<void> {
    if (id === undefined || !ID.test(id)) return;
    await this.#db.query('DELETE FROM console_sessions WHERE lookup = $1', [bearerKeys(id, PURPOSE).lookup]);
  }

  /** Leaves `flash` for the session's next page, whichever replica serves it. */
  async setFlash(session: ConsoleSession, flash: Flash): Promise<void> {
    const keys = this.#keys.get(session);
    if (!keys) return;
    await this.#db.query('UPDATE console_sessions SET flash = $2 WHERE lookup = $1', [
      keys.lookup,
      seal(keys, 'flash', flash),
    ]);
  }

  /** The flash left for this session, cleared as it is read so that only one page shows it. */
  async takeFlash(session: ConsoleSession): Promise<Flash | undefined> {
    const keys = this.#keys.get(session);
    if (!keys) return undefined;
    const [row] = await this.#db.query<{ flash: string }>(
      `WITH old AS (SELECT lookup, flash FROM console_sessions WHERE lookup = $1 AND flash IS NOT NULL FOR UPDATE)
       UPDATE console_sessions s SET flash = NULL FROM old WHERE s.lookup = old.lookup RETURNING old.flash`,
      [keys.lookup],
    );
    return row ? (unseal(keys, 'flash', row.flash) as Flash | undefined) : undefined;
  }

  get ttlSeconds(): number {
    return Math.floor(this.#ttlMs / 1000);
  }

  #session(id: string, keys: BearerKeys, sealed: Sealed): ConsoleSession {
    const session: ConsoleSession = {
      user: sealed.user,
      csrf: derivedToken(id, 'console csrf'),
      expiresAt: sealed.expiresAt,
    };
    this.#keys.set(session, keys);
    return session;
  }
}

/** Only the fields a session needs, whatever else the sign-in carried. */
function storedUser(user: ConsoleUser): ConsoleUser {
  return {
    subject: user.subject,
    groups: [...user.groups],
    roles: [...user.roles],
    method: user.method,
    ...(user.forward !== undefined && { forward: user.forward }),
    ...(user.apiToken !== undefined && { apiToken: user.apiToken }),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Whether a form's token is the session's, in constant time. */
export function csrfMatches(session: ConsoleSession, offered: unknown): boolean {
  if (typeof offered !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(offered);
  return a.length === b.length && timingSafeEqual(a, b);
}
