import { type ChildProcess, spawn } from 'node:child_process';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { DatabaseAccessSpec } from '../../crds/database-access.ts';
import { GuardrailSpec } from '../../crds/guardrail.ts';
import { MaskingPolicySpec } from '../../crds/masking-policy.ts';
import { crdOpenApiSchema } from '../../crds/openapi.ts';
import type { DatabaseAccessStatus } from '../../operator/src/controllers/database-access-controller.ts';
import { KubeApi, KubeApiError } from '../../operator/src/runtime/kube-api.ts';
import {
  ANNOTATION_INJECTED,
  ANNOTATION_RESTARTED_FOR,
  BUNDLE_CONFIG_KEY,
  bundleConfigMapName,
  FINALIZER,
  VOLUME_BUNDLE,
} from '../../operator/src/sidecar-layout.ts';
import { sidecarContainerName } from '../../operator/src/webhook/sidecar-container-name.ts';
import { freePort } from '../harness/free-port.ts';
import { type KubeCluster, startKube } from '../harness/kube/start-kube.ts';
import { materializeVolumes, runContainer, type SidecarProcess } from './support/play-kubelet.ts';
import { MAIN } from './support/proxy-process.ts';

const pgInfo = inject('postgres');
const OPERATOR_NAMESPACE = 'gatehouse-system';
const WEBHOOK_CONFIG = 'gatehouse';
const DATABASE = 'operator_e2e';

let cluster: KubeCluster;
let api: KubeApi;
let operator: { child: ChildProcess; lines: string[]; healthPort: number; metricsPort: number };
let admin: pg.Client;
const startedAt = Date.now();

type Access = {
  metadata: { name: string; finalizers?: string[]; uid?: string };
  status?: DatabaseAccessStatus;
};

/** Until `check` returns a value (not undefined), or fails with the last error and `what`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last ? `: ${String(last)}` : ''}\n${operator.lines.slice(-15).join('\n')}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function gatehouse(plural: string, namespace: string, name?: string): string {
  return `/apis/${API_VERSION}/namespaces/${namespace}/${plural}${name ? `/${name}` : ''}`;
}

function condition(access: Access | undefined, type: string) {
  return access?.status?.conditions?.find((c) => c.type === type);
}

async function readyAccess(namespace: string, name: string, check: (a: Access) => boolean = () => true) {
  return eventually(`DatabaseAccess ${namespace}/${name} Ready`, async () => {
    const access = await api.get<Access & { metadata: { generation: number } }>(
      gatehouse('databaseaccesses', namespace, name),
    );
    const ready = condition(access, 'Ready');
    return ready?.status === 'True' &&
      access.status?.observedGeneration === access.metadata.generation &&
      check(access)
      ? access
      : undefined;
  });
}

/** CRDs built from the kinds' schemas (what `npm run gen` writes), with the status subresource. */
function customResourceDefinitions() {
  const kinds = [
    { kind: 'DatabaseAccess', plural: 'databaseaccesses', spec: DatabaseAccessSpec },
    { kind: 'Guardrail', plural: 'guardrails', spec: GuardrailSpec },
    { kind: 'MaskingPolicy', plural: 'maskingpolicies', spec: MaskingPolicySpec },
  ];
  return kinds.map(({ kind, plural, spec }) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.gatehouse.dev` },
    spec: {
      group: 'gatehouse.dev',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: {
                spec: crdOpenApiSchema(spec),
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
            },
          },
        },
      ],
    },
  }));
}

async function startOperatorProcess(webhookPort: number) {
  const [metricsPort, healthPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      '--liftoff-only',
      MAIN,
      'operator',
      `--kubeconfig=${cluster.kubeconfigPath}`,
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
      '--log-level=info',
      '--bind-address=127.0.0.1',
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
  return { child, lines, healthPort, metricsPort };
}

beforeAll(async () => {
  cluster = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfigPath);
  api = new KubeApi(config);
  for (const crd of customResourceDefinitions())
    await api.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  for (const crd of customResourceDefinitions()) {
    await eventually(`CRD ${crd.metadata.name} established`, async () => {
      const current = await api.get<{ status?: { conditions?: { type: string; status: string }[] } }>(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`,
      );
      return (
        current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') || undefined
      );
    });
  }
  await api.create('/api/v1/namespaces', { metadata: { name: OPERATOR_NAMESPACE } });

  // The webhook as the chart registers it, but by URL: the API server calls the operator on loopback.
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
    ],
  });
  operator = await startOperatorProcess(webhookPort);
  await eventually(
    'the operator ready and leading',
    async () => {
      const response = await fetch(`http://127.0.0.1:${operator.healthPort}/readyz`);
      return response.ok && operator.lines.some((l) => l.includes('controllers started')) ? true : undefined;
    },
    60_000,
  );
  await eventually('caBundle patched into the webhook', async () => {
    const configuration = await api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
      `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`,
    );
    return configuration.webhooks[0]?.clientConfig.caBundle || undefined;
  });

  admin = new pg.Client({
    host: pgInfo.host,
    port: pgInfo.port,
    database: pgInfo.database,
    user: pgInfo.admin.user,
    password: pgInfo.admin.password,
  });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  const seed = new pg.Client({
    host: pgInfo.host,
    port: pgInfo.port,
    database: DATABASE,
    user: pgInfo.admin.user,
    password: pgInfo.admin.password,
  });
  await seed.connect();
  await seed.query(`
    CREATE TABLE customers(id int, name text, email text);
    INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.com');
    CREATE TABLE scratch(id int);
    INSERT INTO scratch VALUES (1), (2);`);
  await seed.end();
}, 240_000);

afterAll(async () => {
  if (operator) {
    operator.child.kill('SIGTERM');
    await new Promise((resolve) => operator.child.once('exit', resolve));
  }
  await admin?.end();
  await cluster?.stop();
  console.log(
    `operator e2e: ${((Date.now() - startedAt) / 1000).toFixed(1)} s including the API server start`,
  );
});

async function createNamespace(name: string) {
  await api.create('/api/v1/namespaces', { metadata: { name } });
}

function accessSpec(extra: Record<string, unknown> = {}) {
  return {
    subjects: [{ kind: 'ServiceAccount', name: 'orders-app' }],
    allow: ['read', 'write', 'ddl'],
    guardrails: ['no-drop'],
    maskingPolicies: ['pii'],
    workloadSelector: { matchLabels: { app: 'orders' } },
    upstream: {
      protocol: 'postgres',
      host: pgInfo.host,
      port: pgInfo.port,
      database: DATABASE,
      credentialsSecretRef: { name: 'db-creds' },
      tls: { mode: 'disable' },
    },
    ...extra,
  };
}

async function createPolicies(namespace: string) {
  await api.create(`/api/v1/namespaces/${namespace}/secrets`, {
    metadata: { name: 'db-creds' },
    stringData: { username: pgInfo.admin.user, password: pgInfo.admin.password },
  });
  await api.create(gatehouse('guardrails', namespace), {
    apiVersion: API_VERSION,
    kind: 'Guardrail',
    metadata: { name: 'no-drop' },
    spec: { rules: [{ name: 'no-drops', kinds: ['drop'], action: 'block', message: 'ask the DBA' }] },
  });
  await api.create(gatehouse('maskingpolicies', namespace), {
    apiVersion: API_VERSION,
    kind: 'MaskingPolicy',
    metadata: { name: 'pii' },
    spec: { rules: [{ columns: ['customers.email'], method: 'redact' }] },
  });
}

describe('gatehouse operator against a real API server', () => {
  const namespace = 'shop';
  let sidecar: SidecarProcess | undefined;

  afterAll(async () => {
    await sidecar?.stop();
  });

  it('compiles the bundle, injects a matching pod once, and its sidecar enforces the policy and reloads it', async () => {
    await createNamespace(namespace);
    await api.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: 'orders-app' } });
    await createPolicies(namespace);
    await api.create(gatehouse('databaseaccesses', namespace), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(),
    });
    const access = await readyAccess(namespace, 'orders');
    expect(access.metadata.finalizers).toContain(FINALIZER);
    expect(access.status?.bundle?.configMap).toBe(bundleConfigMapName('orders'));
    expect(condition(access, 'Stalled')?.status).toBe('False');
    const configMap = await api.get<{
      metadata: { ownerReferences: { kind: string; name: string; uid: string; controller: boolean }[] };
      data: Record<string, string>;
    }>(`/api/v1/namespaces/${namespace}/configmaps/${bundleConfigMapName('orders')}`);
    expect(configMap.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'DatabaseAccess',
        name: 'orders',
        uid: access.metadata.uid,
        controller: true,
      }),
    ]);
    // Credentials are mounted from the Secret, never copied into the bundle.
    expect(configMap.data[BUNDLE_CONFIG_KEY]).not.toContain(pgInfo.admin.password);
    for (const kind of ['Guardrail', 'MaskingPolicy']) {
      const plural = kind === 'Guardrail' ? 'guardrails' : 'maskingpolicies';
      const name = kind === 'Guardrail' ? 'no-drop' : 'pii';
      const policy = await eventually(`${kind} Ready`, async () => {
        const p = await api.get<Access>(gatehouse(plural, namespace, name));
        return condition(p, 'Ready')?.status === 'True' ? p : undefined;
      });
      expect(condition(policy, 'Ready')?.message).toBe('used by DatabaseAccess orders');
    }

    await api.create(`/api/v1/namespaces/${namespace}/pods`, {
      metadata: { name: 'orders-0', labels: { app: 'orders' } },
      spec: {
        serviceAccountName: 'orders-app',
        containers: [{ name: 'app', image: 'example.com/orders:1' }],
      },
    });
    const pod = await api.get<V1Pod>(`/api/v1/namespaces/${namespace}/pods/orders-0`);
    const name = sidecarContainerName('orders');
    const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    expect(all.filter((c) => c.name === name)).toHaveLength(1);
    expect(pod.metadata?.annotations?.[ANNOTATION_INJECTED]).toBeDefined();
    const container = all.find((c) => c.name === name) as V1Container;

    const covered = await readyAccess(namespace, 'orders', (a) =>
      (a.status?.workloads ?? []).some((w) => w.current === 1),
    );
    expect(covered.status?.workloads).toEqual([
      { kind: 'Pod', name: 'orders-0', pods: 1, injected: 1, current: 1, missing: [] },
    ]);

    const kubelet = await materializeVolumes(api, pod, container);
    sidecar = await runContainer(container, kubelet, [
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    const app = new pg.Client({ host: '127.0.0.1', port: sidecar.port, database: DATABASE, user: 'app' });
    await app.connect();
    app.on('error', () => {});
    expect((await app.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 2 }]);
    await expect(app.query('DROP TABLE scratch')).rejects.toMatchObject({ code: '42501' });
    const auditRecords = () =>
      sidecar!.lines
        .filter((l) => l.startsWith('{') && l.includes('"audit"'))
        .map((l) => (JSON.parse(l) as { audit: Record<string, unknown> }).audit);
    const refused = await eventually('the refusal audited', async () =>
      auditRecords().find(
        (r) =>
          r['type'] === 'statement' && r['outcome'] !== 'ok' && String(r['statement']).startsWith('DROP'),
      ),
    );
    expect(refused).toMatchObject({
      subject: `system:serviceaccount:${namespace}:orders-app`,
      namespace,
      serviceAccount: 'orders-app',
      pod: 'orders-0',
    });

    // A policy change reaches the running sidecar through the ConfigMap, without a restart.
    const before = covered.status!.bundle!.hash;
    await api.patch(gatehouse('guardrails', namespace, 'no-drop'), {
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'truncate'], action: 'block' }] },
    });
    await readyAccess(namespace, 'orders', (a) => a.status?.bundle?.hash !== before);
    await kubelet.resyncConfigMap(VOLUME_BUNDLE);
    const pid = sidecar.child.pid;
    await eventually('TRUNCATE blocked after the reload', async () => {
      try {
        await app.query('TRUNCATE scratch');
      } catch (error) {
        return (error as { code?: string }).code === '42501' ? true : undefined;
      }
      // Allowed: the reload has not happened yet.
      return undefined;
    });
    expect(sidecar.child.pid).toBe(pid);
    expect(sidecar.child.exitCode).toBeNull();
    await app.end();
  }, 90_000);

  it.skip('masks the email column through the sidecar (masking in the data path is not wired in this branch yet)', async () => {
    const app = new pg.Client({ host: '127.0.0.1', port: sidecar!.port, database: DATABASE, user: 'app' });
    await app.connect();
    const { rows } = await app.query('SELECT email FROM customers ORDER BY id');
    expect(rows.map((r: { email: string }) => r.email)).not.toContain('alice@example.com');
    await app.end();
  });
});

describe('references, validation, rollout and deletion', () => {
  it('is Ready=False, naming what is missing, until the references exist', async () => {
    const namespace = 'missing-refs';
    await createNamespace(namespace);
    await api.create(gatehouse('databaseaccesses', namespace), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(),
    });
    const stalled = await eventually('Ready=False with ReferenceNotFound', async () => {
      const access = await api.get<Access>(gatehouse('databaseaccesses', namespace, 'orders'));
      return condition(access, 'Ready')?.reason === 'ReferenceNotFound' ? access : undefined;
    });
    expect(condition(stalled, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(stalled, 'Ready')?.message).toContain('Secret "db-creds" not found');
    expect(condition(stalled, 'Ready')?.message).toContain('Guardrail "no-drop" not found');
    expect(condition(stalled, 'Ready')?.message).toContain('MaskingPolicy "pii" not found');
    expect(condition(stalled, 'Stalled')?.status).toBe('True');
    const events = await api.get<{ items: { reason: string; involvedObject: { name: string } }[] }>(
      `/api/v1/namespaces/${namespace}/events`,
    );
    expect(
      events.items.some((e) => e.reason === 'ReferenceNotFound' && e.involvedObject.name === 'orders'),
    ).toBe(true);

    await createPolicies(namespace);
    // The Guardrail and MaskingPolicy are watched; the Secret is looked for again on the next pass.
    await readyAccess(namespace, 'orders');
  }, 60_000);

  it('leaves invalid resources to the CRD schema: the API server rejects them', async () => {
    const namespace = 'invalid';
    await createNamespace(namespace);
    const error = await api
      .create(gatehouse('guardrails', namespace), {
        apiVersion: API_VERSION,
        kind: 'Guardrail',
        metadata: { name: 'bad' },
        spec: { rules: [{ name: 'r', kinds: ['explode'] }] },
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(422);
    expect((error as KubeApiError).message).toContain('spec.rules[0].kinds[0]');
  });

  it('stamps selected Deployments when the sidecar changes, not when rolloutStrategy is None, and releases everything on delete', async () => {
    const namespace = 'rollout';
    await createNamespace(namespace);
    await createPolicies(namespace);
    const deployment = (name: string) => ({
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: 'orders', instance: name } },
        template: {
          metadata: { labels: { app: 'orders', instance: name } },
          spec: { containers: [{ name: 'app', image: 'example.com/orders:1' }] },
        },
      },
    });
    await api.create(`/apis/apps/v1/namespaces/${namespace}/deployments`, deployment('web'));
    await api.create(gatehouse('databaseaccesses', namespace), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(),
    });
    const stamp = async () =>
      (
        await api.get<{ spec: { template: { metadata: { annotations?: Record<string, string> } } } }>(
          `/apis/apps/v1/namespaces/${namespace}/deployments/web`,
        )
      ).spec.template.metadata.annotations?.[ANNOTATION_RESTARTED_FOR];
    const first = await eventually('the Deployment stamped', stamp);
    const access = await readyAccess(namespace, 'orders');
    expect(access.status?.workloads).toEqual([
      { kind: 'Deployment', name: 'web', pods: 0, injected: 0, current: 0, missing: [] },
    ]);

    // A guardrail change is hot-reloaded: no new pods.
    await api.patch(gatehouse('guardrails', namespace, 'no-drop'), {
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'alter'] }] },
    });
    await readyAccess(namespace, 'orders', (a) => a.status?.bundle?.hash !== access.status?.bundle?.hash);
    expect(await stamp()).toBe(first);

    // A new sidecar port needs new pods.
    await api.patch(gatehouse('databaseaccesses', namespace, 'orders'), {
      spec: { sidecar: { port: 15432 } },
    });
    const second = await eventually('the Deployment stamped again', async () => {
      const value = await stamp();
      return value !== first ? value : undefined;
    });
    await api.patch(gatehouse('databaseaccesses', namespace, 'orders'), {
      spec: { sidecar: { port: 25432, rolloutStrategy: 'None' } },
    });
    await readyAccess(namespace, 'orders', (a) => a.status?.observedGeneration === 3);
    expect(await stamp()).toBe(second);

    await api.delete(gatehouse('databaseaccesses', namespace, 'orders'));
    await eventually('the DatabaseAccess gone', async () =>
      (await api.getOptional(gatehouse('databaseaccesses', namespace, 'orders'))) === undefined
        ? true
        : undefined,
    );
    expect(
      await api.getOptional(`/api/v1/namespaces/${namespace}/configmaps/${bundleConfigMapName('orders')}`),
    ).toBeUndefined();
  }, 60_000);

  it('publishes reconcile metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${operator.metricsPort}/metrics`)).text();
    expect(text).toMatch(
      /gatehouse_operator_reconcile_total\{controller="databaseaccess",result="(success|requeue)"\} [1-9]/,
    );
    expect(text).toContain('gatehouse_operator_workqueue_depth');
    expect(text).toMatch(/gatehouse_operator_leader 1/);
  });
});
