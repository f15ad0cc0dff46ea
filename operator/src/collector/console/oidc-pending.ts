import type { SqlClient } from '../store-driver.ts';
import { bearerKeys, seal, unseal } from './bearer-seal.ts';

/** What the console must remember between sending a browser to the provider and its return. */
export interface PendingSignIn {
  readonly verifier: string;
  readonly nonce: string;
  readonly next: string;
}

/** How long a person may take at the provider before the sign-in must start again. */
const PENDING_MS = 10 * 60_000;
/** Sign-ins started and not finished, across replicas: anyone may start one, so the oldest go first. */
const MAX_PENDING = 1000;
const PURPOSE = 'console-oidc-state';

interface Sealed extends PendingSignIn {
  readonly expiresAt: number;
}

/**
 * OpenID sign-ins under way, in the store (table `console_oidc_pending`), so the provider may send
 * the browser back to any replica. Keyed by the SHA-256 of the state and sealed under a key derived
 * from it (bearer-seal.ts), as sessions are: the PKCE verifier is readable only with the state the
 * browser brings back.
 */
export class PendingSignIns {
  readonly #db: SqlClient;
  readonly #ttlMs: number;

  constructor(db: SqlClient, options: { ttlMs?: number } = {}) {
    this.#db = db;
    this.#ttlMs = options.ttlMs ?? PENDING_MS;
  }

  async put(state: string, pending: PendingSignIn, now = Date.now()): Promise<void> {
    await this.#db.query('DELETE FROM console_oidc_pending WHERE expires_at <= $1::timestamptz', [
      new Date(now).toISOString(),
    ]);
    const keys = bearerKeys(state, PURPOSE);
    const expiresAt = now + this.#ttlMs;
    const sealed: Sealed = {
      verifier: pending.verifier,
      nonce: pending.nonce,
      next: pending.next,
      expiresAt,
    };
    await this.#db.query(
      'INSERT INTO console_oidc_pending (lookup, expires_at, sealed) VALUES ($1, $2::timestamptz, $3)',
      [keys.lookup, new Date(expiresAt).toISOString(), seal(keys, 'pending', sealed)],
    );
    await this.#db.query(
      `DELETE FROM console_oidc_pending WHERE lookup IN (SELECT lookup FROM console_oidc_pending
         ORDER BY expires_at DESC, lookup OFFSET $1)`,
      [MAX_PENDING],
    );
  }

  /**
   * The sign-in this state started, once: the row is deleted by the statement that reads it, so a
   * replayed callback, here or on another replica at the same moment, finds nothing.
   */
  async take(state: string, now = Date.now()): Promise<PendingSignIn | undefined> {
    if (state === '' || state.length > 256) return undefined;
    const keys = bearerKeys(state, PURPOSE);
    const [row] = await this.#db.query<{ sealed: string }>(
      'DELETE FROM console_oidc_pending WHERE lookup = $1 RETURNING sealed',
      [keys.lookup],
    );
    if (!row) return undefined;
    const opened = unseal(keys, 'pending', row.sealed) as Sealed | undefined;
    if (!opened || !(opened.expiresAt > now)) return undefined;
    return { verifier: opened.verifier, nonce: opened.nonce, next: opened.next };
  }
}
