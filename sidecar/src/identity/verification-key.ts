import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  type FlattenedJWSInput,
  importJWK,
  importSPKI,
  type JSONWebKeySet,
  type JWK,
  errors as joseErrors,
} from 'jose';
import type { JwtVerificationConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import { HTTPS_OR_LOOPBACK, isHttpsOrLoopback } from './secure-url.ts';

/** Every asymmetric JWS algorithm jose verifies; the default when the config lists none. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];
const SYMMETRIC_ALGORITHMS: readonly string[] = ['HS256', 'HS384', 'HS512'];

/** How the remote key set is fetched and cached; the defaults suit production, tests shorten them. */
export interface RemoteJwksOptions {
  /** After a fetch, an unknown `kid` does not trigger another one for this long (default 30 s). */
  readonly cooldownMs?: number;
  /** Keys are refetched when older than this (default 10 min). */
  readonly cacheMaxAgeMs?: number;
  /** A fetch that takes longer fails (default 5 s). */
  readonly timeoutMs?: number;
}

export type KeyResolver = (
  header: CompactJWSHeaderParameters,
  token: FlattenedJWSInput,
) => Promise<CryptoKey>;

/** The keys that may sign tokens, where they come from, and which algorithms they are used with. */
export interface VerificationKey {
  readonly resolve: KeyResolver;
  readonly algorithms: readonly string[];
  /** Where the keys come from, for messages: `the key set at https://…`, `the key in /etc/…`. */
  readonly source: string;
  /** Fetches a remote key set ahead of the first token, so a wrong URL shows at start. */
  readonly warm?: () => Promise<void>;
}

/**
 * The key source has not answered (network, HTTP status, malformed set). The token may be fine,
 * so this is reported apart from a bad signature.
 */
export class KeySourceUnavailable extends Error {
  override readonly name = 'KeySourceUnavailable';
}

/** Reads or prepares the verification keys of `config`; `field` locates config problems (`identity.token`). */
export async function loadVerificationKey(
  config: JwtVerificationConfig,
  field: string,
  remote: RemoteJwksOptions = {},
): Promise<VerificationKey> {
  const sources = (['jwksUrl', 'jwksFile', 'publicKeyFile'] as const).filter((k) => config[k] !== undefined);
  if (sources.length !== 1)
    throw new UserError(`${field}: needs exactly one of jwksUrl, jwksFile or publicKeyFile`);
  const algorithms = acceptedAlgorithms(config, field);
  if (config.jwksUrl !== undefined) return remoteKeySet(config.jwksUrl, algorithms, field, remote);
  if (config.jwksFile !== undefined) return localKeySet(config.jwksFile, algorithms, field);
  return publicKeyFile(config.publicKeyFile!, algorithms, field);
}

function acceptedAlgorithms(config: JwtVerificationConfig, field: string): readonly string[] {
  const listed = config.algorithms ?? ASYMMETRIC_ALGORITHMS;
  if (listed.length === 0)
    throw new UserError(`${field}.algorithms: lists no algorithm; leave it out for the default`);
  for (const alg of listed) {
    if (alg.toLowerCase() === 'none') {
      throw new UserError(`${field}.algorithms: "none" is never accepted: an unsigned token proves nothing`);
    }
    if (!ASYMMETRIC_ALGORITHMS.includes(alg) && !SYMMETRIC_ALGORITHMS.includes(alg)) {
      throw new UserError(
        `${field}.algorithms: ${alg} is not supported; use ${[...ASYMMETRIC_ALGORITHMS, ...SYMMETRIC_ALGORITHMS].join(', ')}`,
      );
    }
    if (SYMMETRIC_ALGORITHMS.includes(alg) && config.jwksFile === undefined) {
      throw new UserError(
        `${field}.algorithms: ${alg} needs a shared secret, which only a jwksFile can hold (a key with "kty": "oct")`,
      );
    }
  }
  return [...new Set(listed)];
}

function remoteKeySet(
  url: string,
  algorithms: readonly string[],
  field: string,
  options: RemoteJwksOptions,
): VerificationKey {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`${field}.jwksUrl: "${url}" is not a URL`);
  }
  if (!isHttpsOrLoopback(parsed)) throw new UserError(`${field}.jwksUrl: must be ${HTTPS_OR_LOOPBACK}`);
  const keySet = createRemoteJWKSet(parsed, {
    ...(options.cooldownMs !== undefined && { cooldownDuration: options.cooldownMs }),
    ...(options.cacheMaxAgeMs !== undefined && { cacheMaxAge: options.cacheMaxAgeMs }),
    ...(options.timeoutMs !== undefined && { timeoutDuration: options.timeoutMs }),
  });
  const source = `the key set at ${parsed.href}`;
  const asUnavailable = (error: unknown): never => {
    if (isKeySelectionError(error)) throw error;
    const reason =
      error instanceof joseErrors.JWKSTimeout
        ? 'it did not answer in time'
        : error instanceof Error
          ? describeFetchError(error)
          : String(error);
    throw new KeySourceUnavailable(`cannot fetch ${source}: ${reason}`, { cause: error });
  };
  return {
    algorithms,
    source,
    resolve: (header, token) => keySet(header, token).catch(asUnavailable),
    warm: () => keySet.reload().catch(asUnavailable),
  };
}

/** Errors that say the set was fetched but holds no key for this token: the token's fault, not the network's. */
function isKeySelectionError(error: unknown): boolean {
  return (
    error instanceof joseErrors.JWKSNoMatchingKey ||
    error instanceof joseErrors.JWKSMultipleMatchingKeys ||
    error instanceof joseErrors.JOSENotSupported
  );
}

function describeFetchError(error: Error): string {
  // undici reports the socket-level reason (ECONNREFUSED, ENOTFOUND...) as the cause of "fetch failed".
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (cause && typeof cause.code === 'string') return `${error.message} (${cause.code})`;
  return error.message;
}

async function localKeySet(
  path: string,
  algorithms: readonly string[],
  field: string,
): Promise<VerificationKey> {
  const text = await readConfigFile(path, `${field}.jwksFile`);
  let keySet: JSONWebKeySet;
  try {
    keySet = JSON.parse(text) as JSONWebKeySet;
  } catch {
    throw new UserError(`${field}.jwksFile: ${path} is not JSON (expected {"keys": [...]})`);
  }
  let local: ReturnType<typeof createLocalJWKSet>;
  try {
    local = createLocalJWKSet(keySet);
  } catch {
    throw new UserError(`${field}.jwksFile: ${path} is not a JSON Web Key Set (expected {"keys": [...]})`);
  }
  const symmetric = algorithms.filter((alg) => SYMMETRIC_ALGORITHMS.includes(alg));
  // jose's key sets hold public keys only; shared secrets are looked up here, and only when the config lists HS*.
  const secrets = symmetric.length > 0 ? keySet.keys.filter((jwk) => jwk.kty === 'oct') : [];
  if (symmetric.length > 0 && secrets.length === 0) {
    throw new UserError(
      `${field}.jwksFile: algorithms list ${symmetric.join(', ')} but ${path} holds no "oct" key`,
    );
  }
  return {
    algorithms,
    source: `the key set in ${path}`,
    resolve: (header, token) => {
      if (!SYMMETRIC_ALGORITHMS.includes(header.alg)) return local(header, token);
      return sharedSecret(secrets, header.alg, header.kid);
    },
  };
}

async function sharedSecret(
  secrets: readonly JWK[],
  alg: string,
  kid: string | undefined,
): Promise<CryptoKey> {
  const matching = secrets.filter(
    (jwk) =>
      (kid === undefined || jwk.kid === kid) &&
      (jwk.alg === undefined || jwk.alg === alg) &&
      jwk.use !== 'enc',
  );
  if (matching.length !== 1) {
    throw matching.length === 0
      ? new joseErrors.JWKSNoMatchingKey()
      : new joseErrors.JWKSMultipleMatchingKeys();
  }
  return (await importJWK(matching[0]!, alg)) as CryptoKey;
}

async function publicKeyFile(
  path: string,
  configured: readonly string[],
  field: string,
): Promise<VerificationKey> {
  const pem = await readConfigFile(path, `${field}.publicKeyFile`);
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new UserError(
      `${field}.publicKeyFile: ${path} is not a PEM public key (-----BEGIN PUBLIC KEY-----)`,
    );
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey(pem);
  } catch {
    throw new UserError(
      `${field}.publicKeyFile: ${path} holds a PEM block that is not a readable public key`,
    );
  }
  const { type, algorithms: byType } = algorithmsForKey(keyObject);
  const algorithms = configured.filter((alg) => byType.includes(alg));
  if (algorithms.length === 0) {
    throw new UserError(
      `${field}.algorithms: the key in ${path} is ${type}, which signs with ${byType.join(', ')}, and none of those is listed`,
    );
  }
  const keys = new Map<string, CryptoKey>();
  for (const alg of algorithms) {
    try {
      keys.set(alg, await importSPKI(pem, alg));
    } catch (error) {
      throw new UserError(
        `${field}.publicKeyFile: cannot use the key in ${path} for ${alg} (${(error as Error).message})`,
      );
    }
  }
  return {
    algorithms,
    source: `the key in ${path}`,
    // jwtVerify checks the header's alg against `algorithms` before asking for the key, so it is in the map.
    resolve: async (header) => keys.get(header.alg)!,
  };
}

function algorithmsForKey(key: KeyObject): { type: string; algorithms: readonly string[] } {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { type: 'an RSA key', algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] };
    case 'rsa-pss':
      return { type: 'an RSA-PSS key', algorithms: ['PS256', 'PS384', 'PS512'] };
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }[curve ?? ''];
      return { type: `an EC key on ${curve ?? 'an unknown curve'}`, algorithms: alg ? [alg] : [] };
    }
    case 'ed25519':
      return { type: 'an Ed25519 key', algorithms: ['EdDSA', 'Ed25519'] };
    default:
      return { type: `a ${key.asymmetricKeyType ?? 'unknown'} key`, algorithms: [] };
  }
}

async function readConfigFile(path: string, field: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new UserError(
      `${field}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}
