import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { API_VERSION } from '../../../crds/common.ts';
import type { DatabaseAccessStatus } from '../../../operator/src/controllers/database-access-controller.ts';
import { KubeApi } from '../../../operator/src/runtime/kube-api.ts';
import { freePort } from '../../harness/free-port.ts';
import { CHART_DIR, helm } from '../../harness/helm.ts';
import { type KubeCluster, startKube } from '../../harness/kube/start-kube.ts';
import type { KubeVersion } from '../../harness/kube/versions.ts';
import { MAIN, REPO_ROOT } from './proxy-process.ts';

export const OPERATOR_NAMESPACE = 'gatehouse-system';
/** As the chart names it for a release `gatehouse` in gatehouse-system (its RBAC grants access to this name only). */
export const WEBHOOK_CONFIG = 'gatehouse-gatehouse-system';
/** As the chart names the collector's Service and certificate Secret for that release. */
export const COLLECTOR_SERVICE = 'gatehouse-collector';
export const COLLECTOR_TLS_SECRET = 'gatehouse-collector-tls';
/** Kinds of the rendered chart that the test applies: the operator's identity and its least-privilege RBAC. */
const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

export type AccessView = {
  metadata: { name: string; generation?: number; finalizers?: string[]; uid?: string };
  status?: DatabaseAccessStatus;
};

/** `gatehouse operator` as a child process, with its log lines. */
export interface OperatorProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly healthPort: number;
  readonly metricsPort: number;
  /** The HTTPS port of its webhooks and of the sidecars' approvals endpoint. */
  readonly webhookPort: number;
  stop(): Promise<void>;
}

export interface OperatorCluster {
  readonly cluster: KubeCluster;
  readonly api: KubeApi;
  /** The first operator; the webhook configuration points at its port. */
  readonly operator: OperatorProcess;
  /** Another replica of the operator, for leader election. */
  startReplica(): Promise<OperatorProcess>;
  /**
   * Points the webhook configuration at `replica`'s port, as a Service's endpoints move to the replicas
   * that still run: every replica serves the webhooks, leader or not.
   */
  routeWebhooksTo(replica: OperatorProcess): Promise<void>;
  eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  /** Until the DatabaseAccess is Ready for its current generation and `check` holds. */
  readyAccess(namespace: string, name: string, check?: (a: AccessView) => boolean): Promise<AccessView>;
  stop(): Promise<void>;
}

export function gatehousePath(plural: string, namespace: string, name?: string): string {
  return `/apis/${API_VERSION}/namespaces/${namespace}/${plural}${name ? `/${name}` : ''}`;
}

export function conditionOf(object: AccessView | undefined, type: string) {
  return object?.status?.conditions?.find((c) => c.type === type);
}

/**
 * A real kube-apiserver with our CRDs, a MutatingWebhookConfiguration that calls the operator by URL
 * on loopback, and the real CLI (`gatehouse operator`) running against it with leader election, as
 * the chart runs it.
 */
export async function startOperatorCluster(
  options: {
    version?: KubeVersion;
    /** Run the operator as the chart does with collector.enabled: its RBAC and flags, shipping to `url`. */
    collector?: { url: string; cluster: string };
  } = {},
): Promise<OperatorCluster> {
  const cluster = await startKube(options.version ? { version: options.version } : {});
  const processes: OperatorProcess[] = [];
  try {
    const config = new KubeConfig();
    config.loadFromFile(cluster.kubeconfigPath);
    const api = new KubeApi(config);
    const eventually = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          const value = await check();
          if (value !== undefined) return value;
        } catch (error) {
          last = error;
        }
        if (Date.now() > deadline) {
          const logs = processes.flatMap((p) => p.lines.slice(-10)).join('\n');
          throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}\n${logs}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    for (const crd of customResourceDefinitions())
      await api.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    for (const crd of customResourceDefinitions()) {
      await eventually(`CRD ${crd.metadata.name} established`, async () => {
        const current = await api.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
        );
        return (
          current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ||
          undefined
        );
      });
    }
    await api.create('/api/v1/namespaces', { metadata: { name: OPERATOR_NAMESPACE } });
    const webhookPort = await freePort();
    await api.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      metadata: { name: WEBHOOK_CONFIG },
      webhooks: [
        {
          name: 'pods.gatehouse.dev',
          clientConfig: { url: `https://127.0.0.1:${webhookPort}/mutate-pods` },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
          // Fail rather than the chart's Ignore: a webhook that is not called must fail the test, not pass unnoticed.
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
          namespaceSelector: {
            matchExpressions: [
              {
                key: 'kubernetes.io/metadata.name',
                operator: 'NotIn',
                values: ['kube-system', 'kube-public', 'kube-node-lease', OPERATOR_NAMESPACE],
              },
            ],
          },
        },
        {
          name: 'approvalrequests.gatehouse.dev',
          clientConfig: { url: `https://127.0.0.1:${webhookPort}/approval-decisions` },
          rules: [
            {
              apiGroups: ['gatehouse.dev'],
              apiVersions: ['v1alpha1'],
              operations: ['UPDATE'],
              resources: ['approvalrequests/status'],
            },
          ],
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
        },
        {
          name: 'policychanges.gatehouse.dev',
          clientConfig: { url: `https://127.0.0.1:${webhookPort}/policy-changes` },
          rules: [
            {
              apiGroups: ['gatehouse.dev'],
              apiVersions: ['v1alpha1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['databaseaccesses', 'guardrails', 'maskingpolicies'],
            },
          ],
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
        },
      ],
    });

    const kubeconfig = await operatorKubeconfig(api, cluster, options.collector !== undefined);
    const collectorArgs = options.collector
      ? [
          `--collector-url=${options.collector.url}`,
          `--collector-service-name=${COLLECTOR_SERVICE}`,
          `--collector-secret-name=${COLLECTOR_TLS_SECRET}`,
          `--cluster-name=${options.collector.cluster}`,
        ]
      : [];
    const launch = async (port: number) => {
      const started = await startOperatorProcess(kubeconfig, port, collectorArgs);
      processes.push(started);
      return started;
    };
    const operator = await launch(webhookPort);
    await eventually(
      'the operator ready and leading',
      async () => {
        const response = await fetch(`http://127.0.0.1:${operator.healthPort}/readyz`);
        return response.ok && operator.lines.some((l) => l.includes('controllers started'))
          ? true
          : undefined;
      },
      60_000,
    );
    await eventually('caBundle patched into the webhook', async () => {
      const configuration = await api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`,
      );
      return configuration.webhooks[0]?.clientConfig.caBundle || undefined;
    });

    return {
      cluster,
      api,
      operator,
      startReplica: async () => launch(await freePort()),
      async routeWebhooksTo(replica) {
        const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`;
        const configuration = await api.get<{ webhooks: { clientConfig: { url: string } }[] }>(path);
        for (const webhook of configuration.webhooks) {
          const url = new URL(webhook.clientConfig.url);
          url.port = String(replica.webhookPort);
          webhook.clientConfig.url = url.toString();
        }
        await api.replace(path, configuration);
      },
      eventually,
      readyAccess: (namespace, name, check = () => true) =>
        eventually(`DatabaseAccess ${namespace}/${name} Ready`, async () => {
          const access = await api.get<AccessView>(gatehousePath('databaseaccesses', namespace, name));
          const ready = conditionOf(access, 'Ready');
          return ready?.status === 'True' &&
            access.status?.observedGeneration === access.metadata.generation &&
            check(access)
            ? access
            : undefined;
        }),
      async stop() {
        for (const p of processes) await p.stop();
        await cluster.stop();
      },
    };
  } catch (error) {
    for (const p of processes) await p.stop();
    await cluster.stop();
    throw error;
  }
}

/**
 * A kubeconfig for the chart's operator ServiceAccount, with the chart's RBAC applied (from the
 * rendered manifests, charts/manifests/gatehouse.yaml): the operator runs with exactly the rights
 * a release gives it, so a missing permission fails here, not in someone's cluster.
 */
async function operatorKubeconfig(api: KubeApi, cluster: KubeCluster, collector: boolean): Promise<string> {
  const manifests = parseAllDocuments(
    collector
      ? await collectorRelease()
      : readFileSync(join(REPO_ROOT, 'charts/manifests/gatehouse.yaml'), 'utf8'),
  )
    .map(
      (document) =>
        document.toJS() as {
          apiVersion: string;
          kind: string;
          metadata: { name: string; namespace?: string; labels?: Record<string, string> };
        },
    )
    // The operator's own: the collector's ServiceAccount and TokenReview role are not the operator's.
    .filter(
      (object) =>
        object &&
        RBAC_KINDS.includes(object.kind) &&
        object.metadata.labels?.['app.kubernetes.io/component'] !== 'collector',
    );
  let serviceAccount: string | undefined;
  for (const object of manifests) {
    const group = object.apiVersion.includes('/')
      ? `/apis/${object.apiVersion}`
      : `/api/${object.apiVersion}`;
    const plural = `${object.kind.toLowerCase()}s`;
    const namespace = object.metadata.namespace ? `/namespaces/${object.metadata.namespace}` : '';
    await api.create(`${group}${namespace}/${plural}`, object);
    if (object.kind === 'ServiceAccount') serviceAccount = object.metadata.name;
  }
  if (!serviceAccount) throw new Error('the rendered chart has no ServiceAccount');
  const answer = await api.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${serviceAccount}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 } },
  );
  const path = join(cluster.kubeconfigPath, '..', 'operator.kubeconfig');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'test', cluster: { server: cluster.server, 'certificate-authority': cluster.caFile } },
      ],
      users: [{ name: serviceAccount, user: { token: answer.status.token } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: serviceAccount } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return path;
}

/** The chart rendered as a release with the collector enabled: its operator RBAC names the collector's Secret. */
async function collectorRelease(): Promise<string> {
  const rendered = await helm([
    'template',
    'gatehouse',
    CHART_DIR,
    '--namespace',
    OPERATOR_NAMESPACE,
    '--set',
    'collector.enabled=true',
    '--set',
    'collector.store.secretName=audit-store',
  ]);
  if (rendered.code !== 0) throw new Error(`helm template failed: ${rendered.stderr}`);
  return rendered.stdout;
}

/** The CRDs as `npm run gen` writes them to crds/generated/ (and the chart ships them). */
function customResourceDefinitions(): { metadata: { name: string } }[] {
  const dir = join(REPO_ROOT, 'crds/generated');
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => parse(readFileSync(join(dir, file), 'utf8')) as { metadata: { name: string } });
}

async function startOperatorProcess(
  kubeconfig: string,
  webhookPort: number,
  extraArgs: readonly string[],
): Promise<OperatorProcess> {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      '--liftoff-only',
      MAIN,
      'operator',
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${OPERATOR_NAMESPACE}`,
      `--webhook-port=${webhookPort}`,
      `--metrics-port=${metricsPort}`,
      `--health-port=${healthPort}`,
      '--leader-elect=true',
      '--sidecar-image=ghcr.io/gatehouse/gatehouse:e2e',
      `--webhook-config-name=${WEBHOOK_CONFIG}`,
      '--webhook-service-name=gatehouse-webhook',
      '--webhook-secret-name=gatehouse-webhook-tls',
      '--cert-mode=self',
      // The injected sidecars run as local processes here, so they reach the operator on loopback.
      `--approvals-url=https://127.0.0.1:${webhookPort}`,
      '--log-level=info',
      '--bind-address=127.0.0.1',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      lines.push(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    healthPort,
    metricsPort,
    webhookPort,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
