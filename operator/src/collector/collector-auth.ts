import { createHash, timingSafeEqual } from 'node:crypto';
import { credentialsOf } from '../../../sidecar/src/identity/authorization-header.ts';
import type { Authenticator } from '../../../sidecar/src/identity/identity.ts';
import type { KubeClient } from '../runtime/kube-api.ts';
import type { SourceKey } from './store.ts';

/**
 * Who may call the collector, and as what:
 * - a shipper POSTs records. In a cluster it is a pod, proven by its projected service-account token
 *   (checked with TokenReview), and may write only its own namespace's and pod's sources; outside
 *   one it is a proxy holding the configured shared token, trusted for any source.
 * - a reader asks the questions: a local user (the quickstart's) or a subject listed as a reader.
 * - an admin (a subject listed in `admins`, local users by their subject `local:NAME`) is a reader
 *   who may also reset a flagged source.
 */
export interface Caller {
  readonly subject: string;
  readonly shipper: boolean;
  readonly reader: boolean;
  /** May reset a flagged source (auth.admins): a reader too. */
  readonly admin?: boolean;
  /** For a pod's token: the only namespace and pod it may ship for. */
  readonly boundTo?: { readonly namespace: string; readonly pod: string | undefined };
}

export class Unauthenticated extends Error {}

/** What the collector needs of TokenReview; an interface so tests can use a real API server or none. */
export interface TokenReviewer {
  review(token: string): Promise<
    | {
        readonly username: string;
        readonly groups: readonly string[];
        readonly extra: Readonly<Record<string, readonly string[]>>;
      }
    | undefined
  >;
}

/** TokenReview through the operator's API client (the collector's own service account needs `create tokenreviews`). */
export function kubeTokenReviewer(kube: KubeClient, audiences: readonly string[]): TokenReviewer {
  return {
    async review(token) {
      const answer = await kube.create<{
        status?: {
          authenticated?: boolean;
          user?: { username?: string; groups?: string[]; extra?: Record<string, string[]> };
        };
      }>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences },
      });
      const user = answer.status?.user;
      if (answer.status?.authenticated !== true || !user?.username) return undefined;
      return { username: user.username, groups: user.groups ?? [], extra: user.extra ?? {} };
    },
  };
}

export interface CollectorAuthOptions {
  /** Tokens that standalone proxies present to ship records. */
  readonly shipperTokens: readonly string[];
  readonly tokenReviewer?: TokenReviewer;
  /** The quickstart's local users: readers. */
  readonly localUsers?: Authenticator;
  /** Further subjects (from TokenReview) that may read. */
  readonly readers: readonly string[];
  /** Subjects (TokenReview user names, or `local:NAME`) that may read and reset flagged sources. */
  readonly admins?: readonly string[];
}

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const SERVICE_ACCOUNT = /^system:serviceaccount:([^:]+):([^:]+)$/;

export function collectorAuthenticator(options: CollectorAuthOptions) {
  const shipperDigests = options.shipperTokens.map(digest);
  const admins = options.admins ?? [];
  return async function authenticate(header: string | undefined): Promise<Caller> {
    const credentials = credentialsOf(header);
    if (!credentials)
      throw new Unauthenticated('send Authorization: Bearer TOKEN, or Basic with a local user');
    if (credentials.user !== '') {
      if (!options.localUsers) throw new Unauthenticated('this collector has no local users');
      try {
        const identity = await options.localUsers.authenticate({
          user: credentials.user,
          password: credentials.password,
        });
        return {
          subject: identity.subject,
          shipper: false,
          reader: true,
          admin: admins.includes(identity.subject),
        };
      } catch {
        throw new Unauthenticated(`password authentication failed for user "${credentials.user}"`);
      }
    }
    const offered = digest(credentials.password);
    // Compared with every configured token, each in constant time, so a match takes as long as a miss.
    let matched = false;
    for (const known of shipperDigests) matched = timingSafeEqual(known, offered) || matched;
    if (matched) return { subject: 'gatehouse:shipper-token', shipper: true, reader: false };
    if (!options.tokenReviewer) throw new Unauthenticated('the token is not one this collector accepts');
    const user = await options.tokenReviewer.review(credentials.password);
    if (!user) throw new Unauthenticated('the token did not pass TokenReview');
    const serviceAccount = SERVICE_ACCOUNT.exec(user.username);
    const admin = admins.includes(user.username);
    const reader = admin || options.readers.includes(user.username);
    if (!serviceAccount) return { subject: user.username, shipper: false, reader, admin };
    return {
      subject: user.username,
      shipper: true,
      reader,
      admin,
      boundTo: { namespace: serviceAccount[1]!, pod: user.extra[POD_NAME]?.[0] },
    };
  };
}

/** Why a caller may not ship records for `source`, if it may not. */
export function mayShip(caller: Caller, source: SourceKey): string | undefined {
  if (!caller.shipper) return `${caller.subject} may not ship audit records`;
  const bound = caller.boundTo;
  if (!bound) return undefined;
  if (bound.namespace !== source.namespace)
    return `${caller.subject} may ship records of namespace ${bound.namespace} only, not ${source.namespace}`;
  if (bound.pod === undefined)
    return `${caller.subject}'s token is not bound to a pod; use the pod's projected token`;
  if (bound.pod !== source.pod) return `this token belongs to pod ${bound.pod}, not ${source.pod}`;
  return undefined;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
