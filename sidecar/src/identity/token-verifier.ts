import {
  type CryptoKey,
  decodeProtectedHeader,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { Logger } from 'pino';
import type { JwtVerificationConfig } from '../config/schema.ts';
import { AuthError, type Identity } from './identity.ts';
import { identityFromClaims } from './identity-from-claims.ts';
import { KeySourceUnavailable, loadVerificationKey, type RemoteJwksOptions } from './verification-key.ts';

export interface VerifiedToken {
  readonly identity: Identity;
  /** The verified claims: `iat` and `nbf` tell a cached token's age. */
  readonly claims: JWTPayload;
}

/** Checks a JWT against one issuer's keys and claims and says who it names. */
export interface TokenVerifier {
  /** Resolves what the token proves, or throws AuthError; never logs or echoes the token. */
  verify(token: string, method: 'token' | 'token-file'): Promise<VerifiedToken>;
  readonly clockToleranceSeconds: number;
}

export interface TokenVerifierOptions {
  readonly logger: Logger;
  /** Where the config section sits, for messages: `identity.token`, `identity.tokenFile.verify`. */
  readonly field: string;
  readonly remoteJwks?: RemoteJwksOptions;
}

/** OIDC ID tokens can carry many groups; anything far beyond that is not a token we issued. */
const MAX_TOKEN_LENGTH = 64 * 1024;

export async function createTokenVerifier(
  config: JwtVerificationConfig,
  options: TokenVerifierOptions,
): Promise<TokenVerifier> {
  const key = await loadVerificationKey(config, options.field, options.remoteJwks);
  const audiences = typeof config.audience === 'string' ? [config.audience] : config.audience;
  const clockToleranceSeconds = config.clockToleranceSeconds ?? 30;
  const verifyOptions = {
    issuer: config.issuer,
    audience: audiences,
    algorithms: [...key.algorithms],
    clockTolerance: clockToleranceSeconds,
    // A token without an expiry would be good forever once leaked.
    requiredClaims: ['exp'],
  };
  const mapping = { subjectClaim: config.subjectClaim ?? 'sub', groupsClaim: config.groupsClaim ?? 'groups' };
  const logger = options.logger;
  let sourceDown = false;

  const reportSource = (error: KeySourceUnavailable | undefined): void => {
    if (error && !sourceDown)
      logger.warn({ reason: error.message }, 'tokens cannot be verified until the key source answers');
    if (!error && sourceDown) logger.info({ source: key.source }, 'the key source answers again');
    sourceDown = error !== undefined;
  };
  if (key.warm) {
    key.warm().then(
      () => reportSource(undefined),
      (error: unknown) => reportSource(error instanceof KeySourceUnavailable ? error : undefined),
    );
  }

  const explain = (error: unknown, alg: string, kid: string | undefined): AuthError => {
    if (error instanceof AuthError) return error;
    if (error instanceof KeySourceUnavailable) {
      reportSource(error);
      return new AuthError(`cannot verify the token now: ${error.message}`, '28000');
    }
    const message = describeJoseError(error, { alg, kid, issuer: config.issuer, audiences, key });
    if (message === undefined) {
      logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'unexpected error verifying a token',
      );
      return new AuthError('token could not be verified');
    }
    return new AuthError(message);
  };

  return {
    clockToleranceSeconds,
    async verify(token, method) {
      if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3)
        throw new AuthError('password is not a JWT');
      let alg: string;
      let kid: string | undefined;
      try {
        const header = decodeProtectedHeader(token);
        if (typeof header.alg !== 'string') throw new TypeError('no alg');
        alg = header.alg;
        kid = typeof header.kid === 'string' ? header.kid : undefined;
      } catch {
        throw new AuthError('password is not a JWT');
      }
      if (alg.toLowerCase() === 'none')
        throw new AuthError('token is unsigned (alg "none"); a signed token is required');
      let payload: JWTPayload;
      try {
        payload = (await jwtVerify(token, key.resolve, verifyOptions)).payload;
        if (sourceDown) reportSource(undefined);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw explain(error, alg, kid);
        payload = await verifyWithEachCandidate(token, error, verifyOptions).catch((e: unknown) => {
          throw explain(e, alg, kid);
        });
      }
      return { identity: identityFromClaims(payload, { ...mapping, method }), claims: payload };
    },
  };
}

/**
 * A token without `kid` may match several keys of a set (during rotation, for example); jose then
 * hands back the candidates and the first that verifies wins.
 */
async function verifyWithEachCandidate(
  token: string,
  candidates: joseErrors.JWKSMultipleMatchingKeys,
  verifyOptions: Parameters<typeof jwtVerify>[2],
): Promise<JWTPayload> {
  let lastError: unknown = new joseErrors.JWSSignatureVerificationFailed();
  for await (const candidate of candidates as unknown as AsyncIterable<CryptoKey>) {
    try {
      return (await jwtVerify(token, candidate, verifyOptions)).payload;
    } catch (error) {
      lastError = error;
      if (!(error instanceof joseErrors.JWSSignatureVerificationFailed)) break;
    }
  }
  throw lastError;
}

interface ErrorContext {
  readonly alg: string;
  readonly kid: string | undefined;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly key: { readonly algorithms: readonly string[]; readonly source: string };
}

/** A sentence the client can act on, built from claims and header fields only, never the token itself. */
function describeJoseError(error: unknown, context: ErrorContext): string | undefined {
  if (error instanceof joseErrors.JWTExpired) {
    const exp = error.payload['exp'];
    return typeof exp === 'number' ? `token expired at ${isoSeconds(exp)}` : 'token expired';
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    const { claim, reason, payload } = error;
    if (reason === 'missing') return `token has no "${claim}" claim`;
    if (reason !== 'check_failed') return `token claim "${claim}" is not valid`;
    switch (claim) {
      case 'nbf':
        return `token is not valid before ${isoSeconds(payload['nbf'] as number)}`;
      case 'iss':
        return `token issuer ${quote(payload['iss'])} is not ${context.issuer}`;
      case 'aud':
        return context.audiences.length === 1
          ? `token audience does not include ${context.audiences[0]}`
          : `token audience includes none of ${context.audiences.join(', ')}`;
      default:
        return `token claim "${claim}" is not valid`;
    }
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return `token algorithm ${quote(context.alg)} is not accepted (accepted: ${context.key.algorithms.join(', ')})`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    const which = context.kid === undefined ? 'no key' : `no key with kid ${quote(context.kid)}`;
    return `token signature invalid: ${context.key.source} has ${which} for ${quote(context.alg)}`;
  }
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'token signature invalid';
  if (error instanceof joseErrors.JOSENotSupported)
    return `token algorithm ${quote(context.alg)} is not supported`;
  if (error instanceof joseErrors.JWTInvalid) return 'token claims are not a JSON object';
  if (error instanceof joseErrors.JWSInvalid) return 'password is not a JWT';
  return undefined;
}

function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** Header and claim values come from the client: quoted and bounded, so they cannot shape the message. */
function quote(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'nothing');
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}
