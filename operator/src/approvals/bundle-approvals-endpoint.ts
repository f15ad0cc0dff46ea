import { type KubeApi, resourcePath } from '../runtime/kube-api.ts';

/**
 * Where the bundles tell sidecars to ask for approvals, with the CA of the webhook's certificate
 * (which serves that endpoint too) read from its Secret at each reconcile, so a renewed CA reaches
 * the sidecars with the next bundle. Undefined until the Secret holds a CA.
 */
export function bundleApprovalsEndpoint(
  api: KubeApi,
  namespace: string,
  webhook: { readonly serviceName: string; readonly secretName: string; readonly approvalsUrl?: string },
): () => Promise<{ url: string; ca: string } | undefined> {
  const url = webhook.approvalsUrl ?? `https://${webhook.serviceName}.${namespace}.svc`;
  return async () => {
    const secret = await api.getOptional<{ data?: Record<string, string> }>(
      resourcePath('v1', 'secrets', namespace, webhook.secretName),
    );
    const ca = secret?.data?.['ca.crt'];
    return ca ? { url, ca: Buffer.from(ca, 'base64').toString('utf8') } : undefined;
  };
}
