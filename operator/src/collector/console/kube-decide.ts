import { KubeConfig } from '@kubernetes/client-node';
import { type ApprovalRequestObject, approvalRequestPath } from '../../approvals/approval-request-object.ts';
import { KubeApi, KubeApiError } from '../../runtime/kube-api.ts';
import type { KubeApprovals } from './console-env.ts';
import type { ConsoleUser } from './console-sessions.ts';

const DECIDE_TIMEOUT_MS = 10_000;

/**
 * The token the API server can authenticate as this person, if any: a pasted Kubernetes token, or an
 * OpenID ID token when the API server trusts the console's provider. A local user has none: the
 * collector cannot speak for them, so they decide with `kubectl gatehouse`.
 */
export function apiTokenOf(user: ConsoleUser, kube: KubeApprovals): string | undefined {
  if (user.method === 'token') return user.apiToken;
  if (user.method === 'oidc' && kube.oidcIssuer !== undefined) return user.apiToken;
  return undefined;
}

export type KubeDecision =
  | { readonly decided: { readonly phase: string; readonly by: string } }
  | { readonly refused: string }
  | { readonly failed: string };

/**
 * Writes `status.decision` on the ApprovalRequest as the person whose token this is, as `kubectl
 * gatehouse approve|deny` does: the API server authenticates them, RBAC says whether they may write
 * the status at all, and the operator's webhook stamps who they are and refuses them unless the rule
 * names them. The client is made per decision from the person's token alone, so nothing of the
 * collector's own service account can reach this request.
 */
export async function decideInKubernetes(
  kube: KubeApprovals,
  token: string,
  request: { readonly namespace: string; readonly name: string },
  decision: { readonly verdict: 'approve' | 'deny'; readonly reason: string },
): Promise<KubeDecision> {
  const unsafe = unsafeName(request);
  if (unsafe) return { refused: unsafe };
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [
      {
        name: 'cluster',
        server: kube.server,
        skipTLSVerify: false,
        ...(kube.caFile !== undefined && { caFile: kube.caFile }),
      },
    ],
    users: [{ name: 'person', token }],
    contexts: [{ name: 'person', cluster: 'cluster', user: 'person' }],
    currentContext: 'person',
  });
  const api = new KubeApi(config, { timeoutMs: DECIDE_TIMEOUT_MS });
  try {
    const decided = await api.patch<ApprovalRequestObject>(
      approvalRequestPath(request.namespace, request.name, true),
      { status: { decision } },
      'merge',
    );
    return {
      decided: { phase: decided.status?.phase ?? '?', by: decided.status?.decision?.by ?? '?' },
    };
  } catch (error) {
    if (!(error instanceof KubeApiError)) return { failed: (error as Error).message };
    if (error.status === 401)
      return {
        refused:
          'the Kubernetes API server did not accept your token (expired, or not issued for the API server); sign in again with one it accepts',
      };
    if (error.status === 403 || error.status === 404 || error.status === 422)
      return { refused: webhookWords(error) };
    return { failed: `HTTP ${error.status} ${error.reason}` };
  }
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Why these are not an object's name and namespace, if they are not. Both come from shipped records,
 * and they become the path the person's token writes to: a name with `/`, `..`, `?` or `%` could
 * point the write at another object of theirs.
 */
export function unsafeName(request: {
  readonly namespace: string;
  readonly name: string;
}): string | undefined {
  if (!NAMESPACE.test(request.namespace))
    return `"${request.namespace}" is not a Kubernetes namespace name; decide with kubectl gatehouse`;
  if (!NAME.test(request.name) || request.name.includes('..'))
    return `"${request.name}" is not an ApprovalRequest name; decide with kubectl gatehouse`;
  return undefined;
}

/** The webhook's own words, without the API server's wrapping around them. */
function webhookWords(error: KubeApiError): string {
  const match = /gatehouse: (.*)$/s.exec(error.message);
  if (match) return match[1]!;
  // RBAC's refusal and NotFound: the API server's message, without our method and path prefix.
  return error.message.replace(/^\S+ \S+: \d+ \S+: /, '');
}
