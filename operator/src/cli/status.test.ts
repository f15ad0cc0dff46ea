import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { API_VERSION } from '../../../crds/common.ts';
import { kubeRequest } from '../../../test/harness/kube/kube-request.ts';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import {
  createAccess,
  createNamespace,
  installDatabaseAccessDefinition,
} from '../../../test/support/kube-fixtures.ts';
import type { DatabaseAccess } from '../workload/database-access.ts';
import { injectPod } from '../workload/inject-pod.ts';
import { parseServerVersion, type ServerVersion } from '../workload/server-version.ts';
import { type AccessStatus, runStatusCommand } from './status.ts';

const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;
const IMAGE = 'registry.invalid/gatehouse:1';

let kube: KubeCluster;
let namespace: string;
let otherNamespace: string;
let serverVersion: ServerVersion;

const orders = (ns: string, port?: number): DatabaseAccess => ({
  metadata: { name: 'orders-db', namespace: ns },
  spec: {
    subjects: [{ kind: 'ServiceAccount', name: 'orders' }],
    allow: ['read'],
    workloadSelector: { matchLabels: { app: 'orders' } },
    upstream: { protocol: 'postgres', host: 'pg', database: 'orders' },
    ...(port !== undefined && { sidecar: { port } }),
  },
});

const web = (ns: string): DatabaseAccess => ({
  metadata: { name: 'web', namespace: ns },
  spec: {
    subjects: [{ kind: 'ServiceAccount', name: 'web' }],
    allow: ['read'],
    workloadSelector: { kind: 'Deployment', name: 'web' },
    upstream: { protocol: 'mysql', host: 'mariadb' },
  },
});

function pod(name: string, labels: Record<string, string>, extra: Partial<V1Pod['metadata']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels, ...extra },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  };
}

async function createPod(ns: string, body: V1Pod): Promise<void> {
  const response = await kubeRequest(kube, { method: 'POST', path: `/api/v1/namespaces/${ns}/pods`, body });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
}

function injected(body: V1Pod, access: DatabaseAccess): V1Pod {
  return injectPod({ pod: body, access, image: IMAGE, serverVersion }).pod;
}

async function run(argv: string[]): Promise<string> {
  let output = '';
  const code = await runStatusCommand(argv, {
    kubeconfig: kube.kubeconfigPath,
    write: (text) => (output += text),
  });
  expect(code).toBe(0);
  return output;
}

beforeAll(async () => {
  kube = await startKube();
  serverVersion = parseServerVersion(
    (await kubeRequest<{ major: string; minor: string }>(kube, { path: '/version' })).body,
  );
  await installDatabaseAccessDefinition(kube);
  namespace = await createNamespace(kube, 'status');
  otherNamespace = await createNamespace(kube, 'status');
  await createAccess(kube, orders(namespace));
  await createAccess(kube, web(namespace));
  await createAccess(kube, orders(otherNamespace));
  const ready = await kubeRequest(kube, {
    method: 'PATCH',
    path: `/apis/${API_VERSION}/namespaces/${namespace}/databaseaccesses/orders-db/status`,
    contentType: 'application/merge-patch+json',
    body: {
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Reconciled', message: 'bundle compiled' }],
      },
    },
  });
  expect(ready.status).toBe(200);
  const bundle = await kubeRequest(kube, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/configmaps`,
    body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'gatehouse-bundle-orders-db' }, data: {} },
  });
  expect(bundle.status).toBe(201);

  const access = orders(namespace);
  await createPod(namespace, injected(pod('orders-injected', { app: 'orders' }), access));
  await createPod(namespace, pod('orders-missing', { app: 'orders' }));
  await createPod(namespace, injected(pod('orders-stale', { app: 'orders' }), orders(namespace, 6432)));
  await createPod(namespace, pod('orders-out', { app: 'orders', 'gatehouse.dev/inject': 'disabled' }));
  const conflicting = pod('orders-conflict', { app: 'orders' });
  conflicting.spec!.containers[0]!.env = [{ name: 'PGPORT', value: '6543' }];
  await createPod(namespace, injected(conflicting, access));
  await createPod(
    namespace,
    pod(
      'web-5c8d7f9b6-abcde',
      { app: 'web', 'pod-template-hash': '5c8d7f9b6' },
      {
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: 'web-5c8d7f9b6',
            uid: '0b6c1f4e-5f0e-4a55-9c7a-3a0c9f0f6e11',
            controller: true,
          },
        ],
      },
    ),
  );
  await createPod(namespace, pod('unrelated', { app: 'unrelated' }));
}, FIRST_RUN_TIMEOUT_MS);

afterAll(() => kube?.stop());

describe('gatehouse status', () => {
  test('-o json: injected, missing (with why), stale, opted out and conflicts per access', async () => {
    const { items } = JSON.parse(await run(['-n', namespace, '-o', 'json', '--image', IMAGE])) as {
      items: AccessStatus[];
    };
    expect(items.map((item) => item.name)).toEqual(['orders-db', 'web']);
    const [ordersStatus, webStatus] = items as [AccessStatus, AccessStatus];
    expect(ordersStatus.ready).toEqual({ status: 'True', reason: 'Reconciled', message: 'bundle compiled' });
    expect(ordersStatus.bundle).toEqual({ configMap: 'gatehouse-bundle-orders-db', present: true });
    expect(ordersStatus.workloads).toBe('app=orders');
    expect(ordersStatus.pods.selected).toBe(5);
    expect(ordersStatus.pods.injected.sort()).toEqual(['orders-conflict', 'orders-injected']);
    expect(ordersStatus.pods.optedOut).toEqual(['orders-out']);
    expect(Object.fromEntries(ordersStatus.pods.missing.map((m) => [m.pod, m.reason]))).toEqual({
      'orders-missing': expect.stringMatching(/^no sidecar: .*restart the workload$/),
      'orders-stale': expect.stringMatching(/^stale sidecar/),
    });
    expect(ordersStatus.conflicts).toEqual([
      { pod: 'orders-conflict', message: expect.stringContaining('container app already sets PGPORT') },
    ]);

    expect(webStatus.ready.status).toBe('Unknown');
    expect(webStatus.bundle.present).toBe(false);
    expect(webStatus.workloads).toBe('Deployment/web');
    expect(webStatus.pods.selected).toBe(1);
    expect(webStatus.pods.missing.map((m) => m.pod)).toEqual(['web-5c8d7f9b6-abcde']);
  });

  test('the table has one row per access and a line per problem; all namespaces by default', async () => {
    const table = await run(['--image', IMAGE]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(
      /^NAMESPACE\s+NAME\s+READY\s+BUNDLE\s+WORKLOADS\s+INJECTED\s+MISSING\s+CONFLICTS$/,
    );
    const row = lines.find((line) => line.startsWith(namespace) && line.includes('orders-db'));
    expect(row).toMatch(/True \(Reconciled\)\s+gatehouse-bundle-orders-db\s+app=orders\s+2\/4\s+2\s+1$/);
    expect(lines.some((line) => line.startsWith(otherNamespace) && line.includes('0/0'))).toBe(true);
    expect(table).toContain(`${namespace}/orders-db: pod orders-stale: stale sidecar`);
    expect(table).toContain(`${namespace}/orders-db: pod orders-out: opted out`);
    expect(table).toContain(`${namespace}/web: pod web-5c8d7f9b6-abcde: no sidecar`);
  });

  test('without --image, a pod’s own sidecar image counts as current; -h prints usage', async () => {
    const { items } = JSON.parse(await run(['-n', namespace, '-o', 'json'])) as { items: AccessStatus[] };
    expect(items[0]!.pods.injected.sort()).toEqual(['orders-conflict', 'orders-injected']);
    const other = JSON.parse(
      await run(['-n', namespace, '-o', 'json', '--image', 'registry.invalid/gatehouse:2']),
    ) as {
      items: AccessStatus[];
    };
    expect(other.items[0]!.pods.injected).toEqual([]);
    expect(await run(['-h'])).toContain('usage: gatehouse status');
  });
});
