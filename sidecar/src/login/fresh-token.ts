import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../errors.ts';
import { acquireExclusiveLock, type ExclusiveLock, LockHeldError } from '../exclusive-lock.ts';
import { discoverProvider, refreshLogin } from './oidc-flows.ts';
import { normalizeIssuer, type StoredLogin, type TokenStore } from './token-store.ts';

/**
 * A token is renewed once less than this is left: a session opened with it must still pass the
 * proxy's check, and a psql started now may take a while to connect.
 */
export const REFRESH_MARGIN_SECONDS = 60;

/**
 * The current access token for one issuer, renewed with the refresh token when it nears expiry.
 * One renewal at a time, in this process (a tunnel opening many connections at once) and across
 * processes (a lock beside the cache file): providers rotate refresh tokens, and the second user of
 * a rotated one may see the whole sign-in revoked.
 */
export class FreshToken {
  private readonly store: TokenStore;
  readonly issuer: string;
  private renewing: Promise<StoredLogin> | undefined;

  constructor(store: TokenStore, issuer: string) {
    this.store = store;
    this.issuer = normalizeIssuer(issuer);
  }

  async current(nowSeconds = Math.floor(Date.now() / 1000)): Promise<StoredLogin> {
    const cached = this.cached();
    if (cached.expiresAt - nowSeconds > REFRESH_MARGIN_SECONDS) return cached;
    this.renewing ??= this.renew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private cached(): StoredLogin {
    const login = this.store.read(this.issuer);
    if (!login)
      throw new UserError(`not signed in to ${this.issuer}: run gatehouse login --issuer ${this.issuer}`);
    return login;
  }

  private async renew(): Promise<StoredLogin> {
    const lock = await lockFor(this.store.fileFor(this.issuer));
    try {
      // Another process may have renewed it while we waited for the lock.
      const login = this.cached();
      if (login.expiresAt - Math.floor(Date.now() / 1000) > REFRESH_MARGIN_SECONDS) return login;
      const config = await discoverProvider(login);
      const renewed = await refreshLogin(config, login);
      this.store.write(renewed);
      return renewed;
    } finally {
      lock.release();
    }
  }
}

async function lockFor(file: string): Promise<ExclusiveLock> {
  for (let attempt = 0; ; attempt++) {
    try {
      return acquireExclusiveLock(file, 'the token cache');
    } catch (error) {
      // A renewal takes one round trip to the provider; a lock held longer is someone's stuck process.
      if (!(error instanceof LockHeldError) || attempt >= 150) throw error;
      await sleep(100);
    }
  }
}
