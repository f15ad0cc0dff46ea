import type { JWTPayload } from 'jose';
import { AuthError, type Identity } from './identity.ts';

export interface ClaimMapping {
  readonly method: 'token' | 'token-file';
  /** Claim that names an OIDC user (default `sub`); service-account tokens always use `sub`. */
  readonly subjectClaim: string;
  /** Claim that lists an OIDC user's groups (default `groups`); a string or a list of strings. */
  readonly groupsClaim: string;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

/** The identity a verified token's claims describe: a Kubernetes service account or an OIDC user. */
export function identityFromClaims(claims: JWTPayload, mapping: ClaimMapping): Identity {
  const actors = actorsOf(claims['act']);
  const common = {
    method: mapping.method,
    ...(typeof claims.iss === 'string' && { issuer: claims.iss }),
    ...(typeof claims.exp === 'number' && { expiresAt: claims.exp }),
    ...(actors.length > 0 && { actors }),
  };
  if (typeof claims.sub === 'string' && claims.sub.startsWith(SERVICE_ACCOUNT_PREFIX)) {
    return { ...common, ...serviceAccount(claims.sub, claims['kubernetes.io']) };
  }
  const subject = claims[mapping.subjectClaim];
  if (subject === undefined)
    throw new AuthError(`token has no "${mapping.subjectClaim}" claim to name its subject`);
  if (typeof subject !== 'string' || subject === '') {
    throw new AuthError(`token claim "${mapping.subjectClaim}" must be a non-empty string`);
  }
  return { ...common, subject, groups: groupsOf(claims[mapping.groupsClaim], mapping.groupsClaim) };
}

/** As the Kubernetes service-account authenticator does: subject, its namespace, and the three groups. */
function serviceAccount(
  sub: string,
  kubernetesClaim: unknown,
): Omit<Identity, 'method' | 'issuer' | 'expiresAt'> {
  const parts = sub.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  const [namespace, name] = parts;
  if (parts.length !== 2 || !namespace || !name) {
    throw new AuthError('token subject is not of the form system:serviceaccount:NAMESPACE:NAME');
  }
  const bound = objectOrUndefined(kubernetesClaim);
  if (kubernetesClaim !== undefined && !bound)
    throw new AuthError('token claim "kubernetes.io" must be an object');
  if (bound) {
    const claimedAccount = objectOrUndefined(bound['serviceaccount'])?.['name'];
    if (bound['namespace'] !== namespace || claimedAccount !== name) {
      throw new AuthError(
        'token subject does not match the namespace and service account of its "kubernetes.io" claim',
      );
    }
  }
  const pod = objectOrUndefined(bound?.['pod'])?.['name'];
  return {
    subject: sub,
    namespace,
    serviceAccount: name,
    ...(typeof pod === 'string' && pod !== '' && { pod }),
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

/** Nested `act` claims a token may carry at most; a longer chain is refused, not cut. */
const MAX_ACTORS = 8;

/**
 * The actors of an exchanged token (RFC 8693 section 4.1): `act` names the current actor by `sub`, and
 * an `act` inside it the actor before, and so on. A malformed `act` fails the login: recording the user
 * without the agent acting for them would hide who ran the statements.
 */
function actorsOf(act: unknown): readonly string[] {
  const actors: string[] = [];
  for (let current = act; current !== undefined; ) {
    const claim = objectOrUndefined(current);
    if (!claim) throw new AuthError('token claim "act" must be an object naming the actor by "sub"');
    const sub = claim['sub'];
    if (typeof sub !== 'string' || sub === '')
      throw new AuthError('token claim "act" must name the actor with a non-empty "sub"');
    actors.push(sub);
    if (actors.length > MAX_ACTORS)
      throw new AuthError(`token claim "act" nests more than ${MAX_ACTORS} actors`);
    current = claim['act'];
  }
  return actors;
}

function groupsOf(value: unknown, claim: string): readonly string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value) && value.every((g) => typeof g === 'string'))
    return [...new Set(value.filter((g) => g !== ''))];
  throw new AuthError(`token claim "${claim}" must be a string or a list of strings`);
}

function objectOrUndefined(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
