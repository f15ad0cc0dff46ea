import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { JwtVerificationConfig } from '../config/schema.ts';
import { AuthError, type Authenticator, type Identity } from './identity.ts';
import { createTokenVerifier, type TokenVerifier, type VerifiedToken } from './token-verifier.ts';
import type { RemoteJwksOptions } from './verification-key.ts';

export interface TokenFileConfig {
  readonly path: string;
  readonly verify: JwtVerificationConfig;
}

export interface TokenFileAuthenticatorOptions {
  readonly logger: Logger;
  readonly remoteJwks?: RemoteJwksOptions;
  /** Re-read the file this often even without a file event, in case one was missed (default 60 s). */
  readonly refreshIntervalMs?: number;
}

/** A connection re-reads the file at most this often, so a burst of connections costs one read. */
const REREAD_THROTTLE_MS = 1000;
/** kubelet's symlink swap is several directory events; one read after they settle is enough. */
const WATCH_DEBOUNCE_MS = 20;
/** Kubernetes rotates a projected token at 80% of its life; re-read in the last 10% in case the event was lost. */
const REFRESH_AT_LIFE_FRACTION = 0.9;

type TokenState =
  | {
      readonly kind: 'valid';
      readonly token: string;
      readonly identity: Identity;
      readonly refreshAtMs: number;
      /** Expiry plus the clock tolerance: after it the token is refused even if the file never changes. */
      readonly usableUntilMs: number;
    }
  | { readonly kind: 'refused'; readonly error: AuthError };

/**
 * Sidecar mode: every connection is the pod itself, proven by the pod's projected service-account
 * token, which the sidecar reads from a file and follows through kubelet's rotations.
 */
export async function createTokenFileAuthenticator(
  config: TokenFileConfig,
  options: TokenFileAuthenticatorOptions,
): Promise<Authenticator> {
  const verifier = await createTokenVerifier(config.verify, {
    logger: options.logger,
    field: 'identity.tokenFile.verify',
    ...(options.remoteJwks && { remoteJwks: options.remoteJwks }),
  });
  const authenticator = new TokenFileAuthenticator(config.path, verifier, options.logger);
  await authenticator.start(options.refreshIntervalMs ?? 60_000);
  return authenticator;
}

class TokenFileAuthenticator implements Authenticator {
  readonly needsPassword = false;
  readonly #path: string;
  readonly #verifier: TokenVerifier;
  readonly #logger: Logger;
  #state: TokenState;
  #lastReadAtMs = 0;
  #reading: Promise<void> | undefined;
  #readAgain = false;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(path: string, verifier: TokenVerifier, logger: Logger) {
    this.#path = path;
    this.#verifier = verifier;
    this.#logger = logger.child({ tokenFile: path });
    this.#state = {
      kind: 'refused',
      error: new AuthError('the sidecar has not read its token yet', '28000'),
    };
  }

  async start(refreshIntervalMs: number): Promise<void> {
    await this.#reload();
    this.#watch();
    this.#interval = setInterval(() => {
      this.#watch();
      void this.#reload();
    }, refreshIntervalMs);
    this.#interval.unref();
  }

  async authenticate(): Promise<Identity> {
    const now = Date.now();
    const stale = this.#state.kind === 'refused' || now >= this.#state.refreshAtMs;
    if (stale && now - this.#lastReadAtMs >= REREAD_THROTTLE_MS) await this.#reload();
    const state = this.#state;
    if (state.kind === 'refused') throw state.error;
    if (Date.now() >= state.usableUntilMs) {
      const expiresAt = new Date((state.identity.expiresAt ?? 0) * 1000)
        .toISOString()
        .replace(/\.000Z$/, 'Z');
      throw this.#refuse(`token expired at ${expiresAt}`);
    }
    return state.identity;
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
  }

  /** Reads the file now, or once more after the read in flight, so an event during a read is not lost. */
  #reload(): Promise<void> {
    this.#readAgain = true;
    this.#reading ??= this.#readUntilCurrent().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #readUntilCurrent(): Promise<void> {
    while (this.#readAgain && !this.#closed) {
      this.#readAgain = false;
      await this.#readOnce();
    }
  }

  async #readOnce(): Promise<void> {
    this.#lastReadAtMs = Date.now();
    let token: string;
    try {
      token = (await readFile(this.#path, 'utf8')).trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      this.#refuse(
        code === 'ENOENT'
          ? `${this.#path} does not exist; check the pod's projected service-account token volume`
          : `cannot read ${this.#path} (${code})`,
      );
      return;
    }
    if (token === '') {
      this.#refuse(`${this.#path} is empty`);
      return;
    }
    const current = this.#state;
    // Expiry is checked on every connection; an unchanged token needs no second signature check.
    if (current.kind === 'valid' && current.token === token) return;
    let verified: VerifiedToken;
    try {
      verified = await this.#verifier.verify(token, 'token-file');
    } catch (error) {
      this.#refuse(error instanceof AuthError ? error.message : 'it could not be verified');
      return;
    }
    this.#accept(token, verified);
  }

  #accept(token: string, { identity, claims }: VerifiedToken): void {
    const nowSeconds = Date.now() / 1000;
    const expiresAt = identity.expiresAt ?? nowSeconds;
    const issuedAt =
      typeof claims.iat === 'number' ? claims.iat : typeof claims.nbf === 'number' ? claims.nbf : nowSeconds;
    const refreshAt = issuedAt + (expiresAt - issuedAt) * REFRESH_AT_LIFE_FRACTION;
    const rotated = this.#state.kind === 'valid';
    this.#state = {
      kind: 'valid',
      token,
      identity,
      refreshAtMs: refreshAt * 1000,
      usableUntilMs: (expiresAt + this.#verifier.clockToleranceSeconds) * 1000,
    };
    this.#logger.info(
      {
        subject: identity.subject,
        namespace: identity.namespace,
        serviceAccount: identity.serviceAccount,
        pod: identity.pod,
        expiresAt: new Date(expiresAt * 1000).toISOString(),
      },
      rotated ? 'the pod token rotated' : 'the pod token is valid; connections are accepted',
    );
  }

  /** Fails closed: every connection is refused until a usable token is read. Logged once per reason. */
  #refuse(reason: string): AuthError {
    const error = new AuthError(`the sidecar's service-account token is not usable: ${reason}`, '28000');
    const previous = this.#state;
    this.#state = { kind: 'refused', error };
    if (previous.kind === 'valid' || previous.error.message !== error.message) {
      this.#logger.warn({ reason }, 'connections are refused: the pod token is not usable');
    }
    return error;
  }

  #watch(): void {
    if (this.#watcher || this.#closed) return;
    const directory = dirname(this.#path);
    try {
      // The directory, not the file: kubelet swaps the `..data` symlink, and a watch on the old target dies with it.
      const watcher = watch(directory, { persistent: false }, () => this.#scheduleReload());
      watcher.on('error', (error) => {
        this.#logger.warn(
          { reason: error.message },
          'stopped watching the token directory; re-reading periodically',
        );
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined;
      });
      this.#watcher = watcher;
    } catch (error) {
      this.#logger.debug(
        { directory, reason: (error as NodeJS.ErrnoException).code ?? String(error) },
        'cannot watch the token directory yet; re-reading periodically',
      );
    }
  }

  #scheduleReload(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#reload(), WATCH_DEBOUNCE_MS);
    this.#debounce.unref();
  }
}
