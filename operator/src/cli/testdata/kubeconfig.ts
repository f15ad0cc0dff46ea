import { stringify } from 'yaml';

/** A kubeconfig with one cluster at `server` and a bearer token; `caFile` to trust the server's CA. */
export function kubeconfigFor(server: string, options: { caFile?: string; token?: string } = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'test',
        cluster: { server, ...(options.caFile !== undefined && { 'certificate-authority': options.caFile }) },
      },
    ],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test' } }],
    'current-context': 'test',
    users: [{ name: 'test', user: { token: options.token ?? 'test-token' } }],
  });
}
