import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { UserError } from '../errors.ts';
import { HTTPS_OR_LOOPBACK, isHttpsOrLoopback } from '../identity/secure-url.ts';
import { normalizeIssuer, type StoredLogin } from './token-store.ts';

/** Who signs in where: the person's identity provider and the client registered there for Gatehouse. */
export interface OidcClientSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
}

export const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'groups', 'offline_access'];

/** Reads the provider's discovery document; errors say whether the URL is wrong or the provider down. */
export async function discoverProvider(settings: OidcClientSettings): Promise<oidc.Configuration> {
  let url: URL;
  try {
    url = new URL(settings.issuer);
  } catch {
    throw new UserError(`--issuer "${settings.issuer}" is not a URL`);
  }
  if (!isHttpsOrLoopback(url)) throw new UserError(`--issuer must be ${HTTPS_OR_LOOPBACK}`);
  try {
    return await oidc.discovery(url, settings.clientId, undefined, oidc.None(), {
      // openid-client wants https everywhere; the check above allows plain http on loopback only.
      ...(url.protocol === 'http:' && { execute: [oidc.allowInsecureRequests] }),
      timeout: 30,
    });
  } catch (error) {
    // Down (or a wrong host or port) is told apart from a URL that answers but is no provider.
    if (error instanceof TypeError && error.message === 'fetch failed') {
      const cause = error.cause instanceof Error ? error.cause.message : 'network error';
      throw new UserError(`cannot reach the identity provider ${settings.issuer}: ${cause}`);
    }
    throw new UserError(`${settings.issuer} is not an OpenID provider Gatehouse can use: ${reason(error)}`);
  }
}

export interface CodeFlowOptions {
  /** Told the URL to open (on stderr, by the CLI). */
  readonly announce: (authorizationUrl: string) => void;
  /** Also start the desktop's browser on the URL. */
  readonly openBrowser: boolean;
  readonly timeoutMs: number;
}

/**
 * Authorization code with PKCE and a loopback redirect (RFC 8252): a listener on 127.0.0.1 with a
 * port of the kernel's choosing receives the code, so nothing is pasted and no secret is needed.
 */
export async function codeFlow(
  config: oidc.Configuration,
  settings: OidcClientSettings,
  options: CodeFlowOptions,
): Promise<StoredLogin> {
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const authorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: settings.scopes.join(' '),
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    });
    options.announce(authorizationUrl.href);
    if (options.openBrowser) openInBrowser(authorizationUrl.href);
    return await awaitCallback(server, redirectUri, state, options.timeoutMs, async (callbackUrl) => {
      const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      return storedLogin(settings, tokens);
    });
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/**
 * Answers requests to the redirect URI until one carries this login's state; what it says to the
 * browser matches what the terminal says.
 */
function awaitCallback(
  server: Server,
  redirectUri: string,
  state: string,
  timeoutMs: number,
  exchange: (callbackUrl: URL) => Promise<StoredLogin>,
): Promise<StoredLogin> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new UserError(
            `no sign-in arrived within ${Math.round(timeoutMs / 1000)} s; run gatehouse login again`,
          ),
        ),
      timeoutMs,
    );
    server.on('request', (req, res) => {
      const url = new URL(req.url ?? '/', redirectUri);
      if (url.pathname !== '/callback') {
        res.writeHead(404).end();
        return;
      }
      const page = (status: number, text: string) =>
        res
          .writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
          .end(`${text}\n`);
      // A stray request (another login's, or a forged one) must not end a login that may still arrive.
      if (url.searchParams.get('state') !== state) {
        page(400, 'This sign-in does not belong to the waiting gatehouse login.');
        return;
      }
      exchange(url).then(
        (login) => {
          clearTimeout(timer);
          page(200, 'Signed in to Gatehouse. You may close this window and return to the terminal.');
          resolve(login);
        },
        (error: unknown) => {
          clearTimeout(timer);
          const explained = explain(error, 'sign-in');
          page(400, `Sign-in failed: ${explained.message}`);
          reject(explained);
        },
      );
    });
  });
}

export interface DeviceFlowOptions {
  /** Told where to go and which code to enter (on stderr, by the CLI). */
  readonly announce: (verificationUri: string, userCode: string, completeUri: string | undefined) => void;
}

/** The device flow (RFC 8628): for a machine with no browser, the person approves on another device. */
export async function deviceFlow(
  config: oidc.Configuration,
  settings: OidcClientSettings,
  options: DeviceFlowOptions,
): Promise<StoredLogin> {
  let started: oidc.DeviceAuthorizationResponse;
  try {
    started = await oidc.initiateDeviceAuthorization(config, { scope: settings.scopes.join(' ') });
  } catch (error) {
    throw explain(error, 'the device flow');
  }
  options.announce(started.verification_uri, started.user_code, started.verification_uri_complete);
  // Polling ends when the code does; a request that merely hangs is a different error.
  const codeLifetime = AbortSignal.timeout(started.expires_in * 1000);
  try {
    return storedLogin(
      settings,
      await oidc.pollDeviceAuthorizationGrant(config, started, undefined, { signal: codeLifetime }),
    );
  } catch (error) {
    if (codeLifetime.aborted) throw explainCode('expired_token', undefined, 'the device flow');
    throw explain(error, 'the device flow');
  }
}

/** A new access token from the refresh token; the provider may rotate the refresh token too. */
export async function refreshLogin(config: oidc.Configuration, login: StoredLogin): Promise<StoredLogin> {
  if (login.refreshToken === undefined) {
    throw new UserError(
      `the token from ${login.issuer} has expired and the provider gave no refresh token: run gatehouse login --issuer ${login.issuer}`,
    );
  }
  try {
    const tokens = await oidc.refreshTokenGrant(config, login.refreshToken);
    const renewed = storedLogin(login, tokens);
    return renewed.refreshToken === undefined ? { ...renewed, refreshToken: login.refreshToken } : renewed;
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant') {
      throw new UserError(
        `your sign-in at ${login.issuer} has ended (the provider refused the refresh token): run gatehouse login --issuer ${login.issuer}`,
      );
    }
    throw explain(error, 'refreshing the token');
  }
}

function storedLogin(
  settings: OidcClientSettings,
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
): StoredLogin {
  const claims = jwtClaims(tokens.access_token) ?? tokens.claims() ?? {};
  const expiresIn = tokens.expiresIn();
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  const now = Math.floor(Date.now() / 1000);
  const groups = claims['groups'];
  return {
    issuer: normalizeIssuer(settings.issuer),
    clientId: settings.clientId,
    scopes: [...settings.scopes],
    accessToken: tokens.access_token,
    ...(tokens.refresh_token !== undefined && { refreshToken: tokens.refresh_token }),
    expiresAt: expiresIn !== undefined ? now + expiresIn : (exp ?? now + 300),
    ...(typeof claims.sub === 'string' && { subject: claims.sub }),
    ...(Array.isArray(groups) && { groups: groups.filter((g): g is string => typeof g === 'string') }),
  };
}

function jwtClaims(token: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}

/** One sentence for the person: what the provider said, never the request or its tokens. */
function explain(error: unknown, during: string): UserError {
  if (error instanceof UserError) return error;
  const code =
    error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError
      ? error.error
      : undefined;
  const description =
    error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError
      ? error.error_description
      : undefined;
  if (code === undefined) return new UserError(`${during} failed: ${reason(error)}`);
  return explainCode(code, description, during);
}

/** An OAuth error code (RFC 6749, RFC 8628) in words, with what to do about it. */
function explainCode(code: string, description: string | undefined, during: string): UserError {
  switch (code) {
    case 'access_denied':
      return new UserError(
        `sign-in was denied at the identity provider${description ? ` (${description})` : ''}`,
      );
    case 'expired_token':
      return new UserError('the device code expired before it was approved: run gatehouse login again');
    case 'invalid_client':
    case 'unauthorized_client':
      return new UserError(
        `the identity provider refused the client ID for ${during}${description ? ` (${description})` : ''}: check --client-id and that the client may use this flow`,
      );
    default:
      return new UserError(
        `${during} failed: the identity provider answered ${code}${description ? ` (${description})` : ''}`,
      );
  }
}

function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function openInBrowser(url: string): void {
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}
