import { createHash } from 'node:crypto';
import type { KubeClient } from '../runtime/kube-api.ts';
import { TOKEN_AUDIENCE } from '../sidecar-layout.ts';

/** A sidecar, as the API server vouches for its token. */
export interface SidecarCaller {
  /** `system:serviceaccount:NS:NAME`. */
  readonly username: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The service account's uid, as the API server says: tells it from an account deleted and made again. */
  readonly uid?: string;
  /** The pod a pod-bound token (a kubelet's projected token) was issued for, as the API server says. */
  readonly pod?: { readonly name: string; readonly uid: string };
}

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

/** Reviews are remembered this long, so a sidecar polling for a decision costs no TokenReview per poll. */
const CACHE_MS = 60_000;
const MAX_CACHED = 10_000;

/**
 * Who is calling the approvals endpoint: the service account whose projected token (audience
 * `gatehouse.dev`) the caller sent, by TokenReview, so a revoked token or a deleted pod stops
 * working. Only service-account users are sidecars; anyone else is refused.
 */
export class SidecarAuthenticator {
  readonly #api: KubeClient;
  readonly #now: () => number;
  readonly #cache = new Map<string, { caller: SidecarCaller | undefined; until: number }>();

  constructor(api: KubeClient, now: () => number = Date.now) {
    this.#api = api;
    this.#now = now;
  }

  /** The caller, or undefined when the token is not a valid sidecar token. */
  async authenticate(authorization: string | undefined): Promise<SidecarCaller | undefined> {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization ?? '');
    if (!match) return undefined;
    const token = match[1]!;
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached && cached.until > now) return cached.caller;
    const review = await this.#api.create<{
      status?: {
        authenticated?: boolean;
        user?: { username?: string; uid?: string; extra?: Record<string, string[] | undefined> };
        audiences?: string[];
      };
    }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [TOKEN_AUDIENCE] },
    });
    const user = review.status?.user;
    const caller = review.status?.authenticated
      ? serviceAccountOf(user?.username, user?.uid, user?.extra)
      : undefined;
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(key, { caller, until: now + CACHE_MS });
    return caller;
  }
}

function serviceAccountOf(
  username: string | undefined,
  uid: string | undefined,
  extra: Record<string, string[] | undefined> | undefined,
): SidecarCaller | undefined {
  const parts = username?.split(':');
  if (!username || parts?.length !== 4 || parts[0] !== 'system' || parts[1] !== 'serviceaccount')
    return undefined;
  const podName = extra?.[POD_NAME]?.[0];
  const podUid = extra?.[POD_UID]?.[0];
  return {
    username,
    namespace: parts[2]!,
    serviceAccount: parts[3]!,
    ...(uid && { uid }),
    ...(podName && podUid && { pod: { name: podName, uid: podUid } }),
  };
}
