import type { V1Container, V1Pod } from '@kubernetes/client-node';
import pg from 'pg';
import type { ProvidedContext } from 'vitest';
import { API_VERSION } from '../../../crds/common.ts';
import type { KubeApi } from '../../../operator/src/runtime/kube-api.ts';
import { ANNOTATION_INJECTED } from '../../../operator/src/sidecar-layout.ts';
import { sidecarContainerName } from '../../../operator/src/workload/sidecar-container-name.ts';
import { gatehousePath } from './operator-cluster.ts';
import { type KubeletPlay, materializeVolumes, runContainer, type SidecarProcess } from './play-kubelet.ts';

type PostgresInfo = ProvidedContext['postgres'];

/** A database of its own, with a table to read (and mask) and one to try to destroy. */
export async function seedDatabase(postgres: PostgresInfo, database: string): Promise<void> {
  const login = {
    host: postgres.host,
    port: postgres.port,
    user: postgres.admin.user,
    password: postgres.admin.password,
  };
  const admin = new pg.Client({ ...login, database: postgres.database });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const seed = new pg.Client({ ...login, database });
  await seed.connect();
  await seed.query(`
    CREATE TABLE customers(id int, name text, email text);
    INSERT INTO customers VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.com');
    CREATE TABLE scratch(id int);
    INSERT INTO scratch VALUES (1), (2);`);
  await seed.end();
}

export function accessSpec(postgres: PostgresInfo, database: string, extra: Record<string, unknown> = {}) {
  return {
    subjects: [{ kind: 'ServiceAccount', name: 'orders-app' }],
    allow: ['read', 'write', 'ddl'],
    guardrails: ['no-drop'],
    maskingPolicies: ['pii'],
    workloadSelector: { matchLabels: { app: 'orders' } },
    upstream: {
      protocol: 'postgres',
      host: postgres.host,
      port: postgres.port,
      database,
      credentialsSecretRef: { name: 'db-creds' },
      tls: { mode: 'disable' },
    },
    ...extra,
  };
}

export async function createNamespace(api: KubeApi, name: string): Promise<void> {
  await api.create('/api/v1/namespaces', { metadata: { name } });
}

/** The Secret with the real database login, a Guardrail that blocks DROP, a MaskingPolicy for customers.email. */
export async function createPolicies(api: KubeApi, namespace: string, postgres: PostgresInfo): Promise<void> {
  await api.create(`/api/v1/namespaces/${namespace}/secrets`, {
    metadata: { name: 'db-creds' },
    stringData: { username: postgres.admin.user, password: postgres.admin.password },
  });
  await api.create(gatehousePath('guardrails', namespace), {
    apiVersion: API_VERSION,
    kind: 'Guardrail',
    metadata: { name: 'no-drop' },
    spec: { rules: [{ name: 'no-drops', kinds: ['drop'], action: 'block', message: 'ask the DBA' }] },
  });
  await api.create(gatehousePath('maskingpolicies', namespace), {
    apiVersion: API_VERSION,
    kind: 'MaskingPolicy',
    metadata: { name: 'pii' },
    spec: { rules: [{ columns: ['customers.email'], method: 'redact' }] },
  });
}

export interface InjectedPod {
  readonly pod: V1Pod;
  readonly container: V1Container;
  /** Where the sidecar was put: initContainers (native sidecar, 1.29+) or containers. */
  readonly placement: 'initContainers' | 'containers';
  /** How many containers of that name the pod has (1 when injected exactly once). */
  readonly copies: number;
}

/** Creates a pod the access selects, and returns it as the API server stored it (after the webhook). */
export async function createSelectedPod(
  api: KubeApi,
  namespace: string,
  name: string,
  access: string,
): Promise<InjectedPod> {
  await api.create(`/api/v1/namespaces/${namespace}/pods`, {
    metadata: { name, labels: { app: 'orders' } },
    spec: { serviceAccountName: 'orders-app', containers: [{ name: 'app', image: 'example.com/orders:1' }] },
  });
  const pod = await api.get<V1Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`);
  const containerName = sidecarContainerName(access);
  const init = (pod.spec?.initContainers ?? []).filter((c) => c.name === containerName);
  const plain = (pod.spec?.containers ?? []).filter((c) => c.name === containerName);
  const container = init[0] ?? plain[0];
  if (!container || pod.metadata?.annotations?.[ANNOTATION_INJECTED] === undefined)
    throw new Error(`pod ${namespace}/${name} was not injected: ${JSON.stringify(pod.spec)}`);
  return {
    pod,
    container,
    placement: init.length > 0 ? 'initContainers' : 'containers',
    copies: init.length + plain.length,
  };
}

/** Plays kubelet for the injected sidecar and runs it on free loopback ports. */
export async function runSidecar(
  api: KubeApi,
  injected: InjectedPod,
): Promise<{ kubelet: KubeletPlay; sidecar: SidecarProcess }> {
  const kubelet = await materializeVolumes(api, injected.pod, injected.container);
  const sidecar = await runContainer(injected.container, kubelet, [
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
  ]);
  return { kubelet, sidecar };
}

/** The audit records the sidecar wrote to stdout. */
export function auditRecords(sidecar: SidecarProcess): Record<string, unknown>[] {
  return sidecar.lines
    .filter((l) => l.startsWith('{') && l.includes('"audit"'))
    .map((l) => (JSON.parse(l) as { audit: Record<string, unknown> }).audit)
    .filter((r) => r !== undefined);
}
