import * as client from 'openid-client';
import { isLoopback } from '../../../../sidecar/src/approvals/serve-approvals.ts';
import type { ConsoleAccess, SignIn } from './console-sign-in.ts';
import { rolesOf } from './console-sign-in.ts';
import type { PendingSignIns } from './oidc-pending.ts';

/** `console.oidc`: sign-in with an OpenID provider, authorization code flow with PKCE, server-side. */
export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** A confidential client's secret (client_secret_basic); without it, a public client (PKCE only). */
  readonly clientSecret: string | undefined;
  /** This console's callback as the provider knows it: `https://HOST/console/oidc/callback`. */
  readonly redirectUrl: string;
  readonly scopes: readonly string[];
  /** The ID token claim naming the person (the console's subject), and the one listing their groups. */
  readonly subjectClaim: string;
  readonly groupsClaim: string;
}

/**
 * The console's side of an OpenID Connect sign-in. The provider is discovered at the first sign-in,
 * not at start, so a collector starts while its provider is down. The code is exchanged by the
 * server with its PKCE verifier; the ID token's signature, issuer, audience, expiry and nonce are
 * checked by openid-client; the state is bound to the browser by a cookie (see console-app.ts). What
 * a sign-in under way must remember is in the store (oidc-pending.ts), so any replica finishes it.
 */
export class OidcSignIn {
  readonly #settings: OidcSettings;
  readonly #access: ConsoleAccess;
  readonly #pending: PendingSignIns;
  #config: Promise<client.Configuration> | undefined;

  constructor(settings: OidcSettings, access: ConsoleAccess, pending: PendingSignIns) {
    this.#settings = settings;
    this.#access = access;
    this.#pending = pending;
  }

  /** The provider's authorization URL for a new sign-in, and the state to bind to the browser. */
  async start(next: string, now = Date.now()): Promise<{ url: string; state: string }> {
    const config = await this.#configuration();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    await this.#pending.put(state, { verifier, nonce, next }, now);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.#settings.redirectUrl,
      scope: this.#settings.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state };
  }

  /**
   * The provider sent the browser back with `query`; `boundState` is the state cookie this browser
   * holds. A state used once is gone, so a callback cannot be replayed.
   */
  async finish(
    query: URLSearchParams,
    boundState: string | undefined,
    now = Date.now(),
  ): Promise<{ outcome: SignIn; next: string }> {
    const state = query.get('state') ?? '';
    const pending = await this.#pending.take(state, now);
    if (!pending || boundState !== state)
      return {
        outcome: { refused: 'the sign-in expired or was not started here; start again' },
        next: '/console/',
      };
    const error = query.get('error');
    if (error !== null)
      return {
        outcome: { refused: `the provider refused: ${query.get('error_description') ?? error}` },
        next: pending.next,
      };
    const config = await this.#configuration();
    const callback = new URL(this.#settings.redirectUrl);
    callback.search = query.toString();
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: pending.verifier,
        expectedState: state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (problem) {
      return {
        outcome: { refused: `the sign-in failed: ${(problem as Error).message}` },
        next: pending.next,
      };
    }
    const claims: Record<string, unknown> = tokens.claims() ?? {};
    const subject = claims[this.#settings.subjectClaim];
    if (typeof subject !== 'string' || subject === '')
      return {
        outcome: { refused: `the ID token has no ${this.#settings.subjectClaim} claim to name you by` },
        next: pending.next,
      };
    const listed = claims[this.#settings.groupsClaim];
    const groups = Array.isArray(listed) ? listed.filter((g): g is string => typeof g === 'string') : [];
    return {
      outcome: {
        subject,
        groups,
        roles: rolesOf({ subject, groups, local: false }, this.#access),
        method: 'oidc',
        // The access token, for a proxy in token mode that trusts this provider to check as the approver's.
        forward: `Bearer ${tokens.access_token}`,
        // The ID token, for an API server that trusts this provider (console.approvals.kubernetes.oidcIssuer).
        ...(tokens.id_token !== undefined && { apiToken: tokens.id_token }),
      },
      next: pending.next,
    };
  }

  #configuration(): Promise<client.Configuration> {
    if (!this.#config) {
      const { issuer, clientId, clientSecret } = this.#settings;
      const url = new URL(issuer);
      // Plain HTTP only to a provider on this machine (a test's, a developer's).
      const insecure = url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[|\]$/g, ''));
      this.#config = client
        .discovery(
          url,
          clientId,
          undefined,
          clientSecret === undefined ? client.None() : client.ClientSecretBasic(clientSecret),
          insecure ? { execute: [client.allowInsecureRequests] } : undefined,
        )
        .catch((error: Error) => {
          // Tried again at the next sign-in.
          this.#config = undefined;
          throw new Error(`cannot reach the OpenID provider ${issuer}: ${error.message}`);
        });
    }
    return this.#config;
  }
}
