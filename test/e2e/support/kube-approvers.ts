import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { approvalRequestPath } from '../../../operator/src/approvals/approval-request-object.ts';
import { OPERATOR_NAMESPACE, type OperatorCluster } from './operator-cluster.ts';
import { MAIN } from './proxy-process.ts';

/** The people and the sidecar of a namespace in the approvals e2e tests, as real API users. */
export interface Approvers {
  /** A kubeconfig per service account, with a token the API server issued for it. */
  readonly kubeconfigs: Readonly<Record<string, string>>;
  /** The sidecar's projected token (audience gatehouse.dev), as a file. */
  readonly sidecarTokenFile: string;
  /** The CA of the operator's webhook certificate, as a file. */
  readonly operatorCaFile: string;
  /** `https://127.0.0.1:PORT` of the operator's webhook and approvals endpoint. */
  readonly operatorUrl: string;
  token(account: string, audiences?: string[]): Promise<string>;
  /** `gatehouse approve|deny` (what `kubectl gatehouse` runs) as `account`. */
  decide(
    account: string,
    verdict: 'approve' | 'deny',
    name: string,
    reason?: string,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  phaseOf(name: string): Promise<string | undefined>;
}

/**
 * Makes `namespace` with the service accounts `accounts` (the first is the sidecar's), binds the
 * chart's `gatehouse-approver` ClusterRole to every one of them (RBAC lets all try; the rules decide
 * who succeeds), and writes their kubeconfigs, the sidecar's token and the operator's CA into `dir`.
 */
export async function prepareApprovers(
  env: OperatorCluster,
  namespace: string,
  accounts: readonly string[],
  dir: string,
): Promise<Approvers> {
  const { api } = env;
  await api.create('/api/v1/namespaces', { metadata: { name: namespace } });
  for (const account of accounts)
    await api.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: account } });
  await api.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
    metadata: { name: 'approvers' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gatehouse-approver' },
    subjects: accounts.map((name) => ({ kind: 'ServiceAccount', name, namespace })),
  });
  const token = async (account: string, audiences?: string[]) => {
    const answer = await api.create<{ status: { token: string } }>(
      `/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600, ...(audiences && { audiences }) },
      },
    );
    return answer.status.token;
  };
  const kubeconfigs: Record<string, string> = {};
  for (const account of accounts) {
    const path = join(dir, `${account}.kubeconfig`);
    await writeFile(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'test',
            cluster: { server: env.cluster.server, 'certificate-authority': env.cluster.caFile },
          },
        ],
        users: [{ name: account, user: { token: await token(account) } }],
        contexts: [{ name: account, context: { cluster: 'test', user: account, namespace } }],
        'current-context': account,
      }),
      { mode: 0o600 },
    );
    kubeconfigs[account] = path;
  }
  const sidecarTokenFile = join(dir, 'token');
  await writeFile(sidecarTokenFile, await token(accounts[0]!, ['gatehouse.dev']));
  const secret = await api.get<{ data: Record<string, string> }>(
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/gatehouse-webhook-tls`,
  );
  const operatorCaFile = join(dir, 'operator-ca.crt');
  await writeFile(operatorCaFile, Buffer.from(secret.data['ca.crt']!, 'base64'));
  return {
    kubeconfigs,
    sidecarTokenFile,
    operatorCaFile,
    operatorUrl: `https://127.0.0.1:${env.operator.webhookPort}`,
    token,
    decide: (account, verdict, name, reason = 'checked') =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [
            '--liftoff-only',
            MAIN,
            verdict,
            name,
            '-n',
            namespace,
            '--reason',
            reason,
            '--kubeconfig',
            kubeconfigs[account]!,
          ],
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      }),
    phaseOf: async (name) =>
      (await api.get<{ status?: { phase?: string } }>(approvalRequestPath(namespace, name))).status?.phase,
  };
}
