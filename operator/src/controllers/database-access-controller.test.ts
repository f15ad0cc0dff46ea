import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../../crds/common.ts';
import type { DatabaseAccessSpecType } from '../../../crds/database-access.ts';
import { EventRecorder } from '../runtime/event-recorder.ts';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import { KubeApiError, type KubeObject, resourcePath } from '../runtime/kube-api.ts';
import { ServiceAccountIssuer } from '../runtime/service-account-issuer.ts';
import {
  ANNOTATION_RESTARTED_FOR,
  AUDIT_SIGNING_KEY_SECRET,
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_MOUNT,
  bundleConfigMapName,
  FINALIZER,
  MASKING_KEY_SECRET,
} from '../sidecar-layout.ts';
import { parseServerVersion } from '../workload/server-version.ts';
import { gatehousePath } from './api-paths.ts';
import type { Condition } from './conditions.ts';
import {
  DatabaseAccessController,
  type DatabaseAccessObject,
  type GuardrailObject,
  type MaskingPolicyObject,
  rolloutHash,
  SHIPPING_CONDITION,
} from './database-access-controller.ts';

/**
 * Each state of a DatabaseAccess reconcile against FakeKubeApi (the API server's rules, in memory);
 * test/e2e/operator.test.ts runs the whole operator against a real kube-apiserver.
 */

const NS = 'shop';
const KEY = `${NS}/orders`;
const logger = pino({ level: 'silent' });
const CONFIG_MAP = `/api/v1/namespaces/${NS}/configmaps/${bundleConfigMapName('orders')}`;
const DEPLOYMENTS = `/apis/apps/v1/namespaces/${NS}/deployments`;

async function world(
  options: {
    collector?: { url: string; cluster: string };
    collectorCa?: () => Promise<string | undefined>;
  } = {},
) {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  const accesses = api.informer<DatabaseAccessObject>(gatehousePath('DatabaseAccess'));
  const deps = {
    api,
    accesses,
    guardrails: api.informer<GuardrailObject>(gatehousePath('Guardrail')),
    maskingPolicies: api.informer<MaskingPolicyObject>(gatehousePath('MaskingPolicy')),
    pods: api.informer<V1Pod & KubeObject>(resourcePath('v1', 'pods')),
    issuer: new ServiceAccountIssuer(api, logger),
    events: new EventRecorder(api, 'gatehouse-operator', logger),
    sidecarImage: 'example.com/gatehouse:test',
    serverVersion: parseServerVersion(await api.get('/version')),
    ...(options.collector && { collector: options.collector }),
    ...(options.collectorCa && { collectorCa: options.collectorCa }),
  };
  const controller = new DatabaseAccessController(deps);
  return {
    api,
    accesses,
    reconcile: (key = KEY) => controller.reconcile(key),
    access: (name = 'orders') => api.get<DatabaseAccessObject>(gatehousePath('DatabaseAccess', NS, name)),
    events: () =>
      api
        .objects<KubeObject & { type: string; reason: string; involvedObject: { name: string } }>(
          `/api/v1/namespaces/${NS}/events`,
        )
        // In the order they were written.
        .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
        .map((e) => `${e.involvedObject.name} ${e.type} ${e.reason}`),
  };
}

type World = Awaited<ReturnType<typeof world>>;

function spec(extra: Record<string, unknown> = {}) {
  return {
    subjects: [{ kind: 'ServiceAccount', name: 'orders-app' }],
    allow: ['read', 'write'],
    guardrails: ['no-drop'],
    maskingPolicies: ['pii'],
    workloadSelector: { matchLabels: { app: 'orders' } },
    upstream: {
      protocol: 'postgres',
      host: 'db.shop.svc',
      port: 5432,
      database: 'orders',
      credentialsSecretRef: { name: 'db-creds' },
      tls: { mode: 'disable' },
    },
    ...extra,
  };
}

async function createAccess(
  api: FakeKubeApi,
  name = 'orders',
  extra: Record<string, unknown> = {},
  finalizers?: string[],
) {
  await api.create(gatehousePath('DatabaseAccess', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name, ...(finalizers && { finalizers }) },
    spec: spec(extra),
  });
}

async function createSecret(
  api: FakeKubeApi,
  stringData = { username: 'app', password: 'pw-not-in-bundle' },
) {
  await api.create(`/api/v1/namespaces/${NS}/secrets`, { metadata: { name: 'db-creds' }, stringData });
}

async function createPolicies(api: FakeKubeApi) {
  await api.create(gatehousePath('Guardrail', NS), {
    apiVersion: API_VERSION,
    kind: 'Guardrail',
    metadata: { name: 'no-drop' },
    spec: { rules: [{ name: 'no-drops', kinds: ['drop'], action: 'block' }] },
  });
  await api.create(gatehousePath('MaskingPolicy', NS), {
    apiVersion: API_VERSION,
    kind: 'MaskingPolicy',
    metadata: { name: 'pii' },
    spec: { rules: [{ columns: ['customers.email'], method: 'redact' }] },
  });
}

/** Everything an access needs, and the access. */
async function readyWorld(extra: Record<string, unknown> = {}): Promise<World> {
  const w = await world();
  await createSecret(w.api);
  await createPolicies(w.api);
  await createAccess(w.api, 'orders', extra);
  return w;
}

function conditionOf(object: { status?: { conditions?: Condition[] } }, type: string) {
  return object.status?.conditions?.find((c) => c.type === type);
}

function condition(object: { status?: { conditions?: Condition[] } }, type: string) {
  const found = object.status?.conditions?.find((c) => c.type === type);
  return found && `${found.status} ${found.reason}${found.message ? `: ${found.message}` : ''}`;
}

async function workload(api: FakeKubeApi, kind: 'deployments' | 'statefulsets', name: string, app: string) {
  await api.create(`/apis/apps/v1/namespaces/${NS}/${kind}`, {
    metadata: { name },
    spec: {
      selector: { matchLabels: { app } },
      template: {
        metadata: { labels: { app } },
        spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
      },
    },
  });
}

async function stampOf(api: FakeKubeApi, path: string): Promise<string | undefined> {
  const object = await api.get<{
    spec: { template: { metadata: { annotations?: Record<string, string> } } };
  }>(path);
  return object.spec.template.metadata.annotations?.[ANNOTATION_RESTARTED_FOR];
}

describe('DatabaseAccessController reconcile states', () => {
  it('is gone when the access is not in the cache', async () => {
    const w = await world();
    const since = w.api.requests.length;
    expect(await w.reconcile()).toEqual({ outcome: 'gone' });
    expect(w.api.writes(since)).toEqual([]);
  });

  it('adds its finalizer, compiles the bundle it owns, makes the namespace keys, and reports Ready for the generation', async () => {
    const w = await readyWorld();
    const result = await w.reconcile();
    expect(result?.outcome).toBe('Ready');
    const access = await w.access();
    expect(access.metadata.finalizers).toEqual([FINALIZER]);
    expect(access.status?.observedGeneration).toBe(1);
    expect(condition(access, 'Ready')).toMatch(
      /^True BundleCompiled: bundle gatehouse-bundle-orders compiled; 0 of 0 selected pods/,
    );
    expect(condition(access, 'Reconciling')).toBe('False BundleCompiled');
    expect(condition(access, 'Stalled')).toBe('False BundleCompiled');
    expect(access.status?.conditions?.every((c) => c.observedGeneration === 1)).toBe(true);

    const bundle = await w.api.get<KubeObject & { data: Record<string, string> }>(CONFIG_MAP);
    expect(bundle.metadata.ownerReferences).toEqual([
      expect.objectContaining({
        kind: 'DatabaseAccess',
        name: 'orders',
        uid: access.metadata.uid,
        controller: true,
      }),
    ]);
    expect(bundle.metadata.annotations?.['gatehouse.dev/bundle-hash']).toBe(access.status?.bundle?.hash);
    expect(bundle.data[BUNDLE_CONFIG_KEY]).not.toContain('pw-not-in-bundle');
    for (const name of [MASKING_KEY_SECRET, AUDIT_SIGNING_KEY_SECRET])
      expect(await w.api.getOptional(`/api/v1/namespaces/${NS}/secrets/${name}`)).toBeDefined();
    expect(w.events()).toEqual(['orders Normal BundleCompiled']);
  });

  it("points the bundle's audit at the chart's collector over https, with the CA that verifies it", async () => {
    const collector = { url: 'https://gatehouse-collector.gatehouse-system.svc:7450', cluster: 'prod-eu' };
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const w = await world({ collector, collectorCa: async () => ca });
    await createSecret(w.api);
    await createPolicies(w.api);
    await createAccess(w.api);
    expect((await w.reconcile())?.outcome).toBe('Ready');
    const bundle = await w.api.get<KubeObject & { data: Record<string, string> }>(CONFIG_MAP);
    const proxy = parseAllDocuments(bundle.data[BUNDLE_CONFIG_KEY]!)[0]!.toJS() as {
      audit: { ship?: Record<string, string> };
    };
    expect(proxy.audit.ship).toMatchObject({
      url: collector.url,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      cluster: 'prod-eu',
      namespace: NS,
    });
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe(ca);
    expect(conditionOf(await w.access(), SHIPPING_CONDITION)).toMatchObject({
      status: 'True',
      reason: 'CollectorTrusted',
    });
    const without = await readyWorld();
    await without.reconcile();
    const plain = await without.api.get<KubeObject & { data: Record<string, string> }>(CONFIG_MAP);
    expect(plain.data[BUNDLE_CONFIG_KEY]).not.toContain('ship');
    expect(conditionOf(await without.access(), SHIPPING_CONDITION)).toBeUndefined();
  });

  it('says so, once, while the collector has no CA yet, and ships nothing until the bundle carries it', async () => {
    const collector = { url: 'https://gatehouse-collector.gatehouse-system.svc:7450', cluster: 'prod-eu' };
    let ca: string | undefined;
    const w = await world({ collector, collectorCa: async () => ca });
    await createSecret(w.api);
    await createPolicies(w.api);
    await createAccess(w.api);
    const first = await w.reconcile();
    // Access works meanwhile: the records wait in each pod's audit file.
    expect(first).toMatchObject({ outcome: 'Ready', requeueAfterMs: 30_000 });
    const bundle = await w.api.get<KubeObject & { data: Record<string, string> }>(CONFIG_MAP);
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe('');
    expect(bundle.data[BUNDLE_CONFIG_KEY]).toContain(`url: ${collector.url}`);
    expect(conditionOf(await w.access(), SHIPPING_CONDITION)).toMatchObject({
      status: 'False',
      reason: 'CollectorCANotReady',
    });
    expect(conditionOf(await w.access(), 'Ready')?.status).toBe('True');
    await w.reconcile();
    expect(w.events().filter((e) => e.includes('CollectorCANotReady'))).toEqual([
      'orders Warning CollectorCANotReady',
    ]);

    ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(await w.reconcile()).toMatchObject({ outcome: 'Ready', requeueAfterMs: 600_000 });
    const filled = await w.api.get<KubeObject & { data: Record<string, string> }>(CONFIG_MAP);
    expect(filled.data[BUNDLE_COLLECTOR_CA_KEY]).toBe(ca);
    expect(conditionOf(await w.access(), SHIPPING_CONDITION)?.status).toBe('True');
  });

  it('writes nothing when nothing changed: same status, same bundle, no event', async () => {
    const w = await readyWorld();
    await w.reconcile();
    const before = await w.access();
    const since = w.api.requests.length;
    expect((await w.reconcile())?.outcome).toBe('Ready');
    expect(w.api.writes(since)).toEqual([]);
    expect((await w.access()).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('is Stalled with ReferenceNotFound naming every missing reference, with one Warning event, until they exist', async () => {
    const w = await world();
    await createAccess(w.api);
    const result = await w.reconcile();
    // The Secret is not watched: it is looked for again; the policies are watched.
    expect(result).toEqual({ outcome: 'ReferenceNotFound', requeueAfterMs: 30_000 });
    const access = await w.access();
    expect(condition(access, 'Ready')).toBe(
      'False ReferenceNotFound: Secret "db-creds" not found; Guardrail "no-drop" not found; MaskingPolicy "pii" not found',
    );
    expect(condition(access, 'Stalled')).toMatch(/^True ReferenceNotFound/);
    expect(condition(access, 'Reconciling')).toBe('False ReferenceNotFound');
    expect(access.status?.observedGeneration).toBe(1);
    expect(await w.api.getOptional(CONFIG_MAP)).toBeUndefined();
    expect(w.events()).toEqual(['orders Warning ReferenceNotFound']);

    // The same problem again: no second event, no status write.
    const since = w.api.requests.length;
    await w.reconcile();
    expect(w.api.writes(since)).toEqual([]);

    await createSecret(w.api, { username: 'app' } as never);
    expect(await w.reconcile()).toEqual({ outcome: 'ReferenceNotFound', requeueAfterMs: 30_000 });
    expect(condition(await w.access(), 'Ready')).toBe(
      'False ReferenceNotFound: Secret "db-creds" has no key "password"; Guardrail "no-drop" not found; MaskingPolicy "pii" not found',
    );
    await w.api.patch(`/api/v1/namespaces/${NS}/secrets/db-creds`, { stringData: { password: 'p' } });
    expect(await w.reconcile()).toEqual({ outcome: 'ReferenceNotFound' });
    expect(condition(await w.access(), 'Ready')).toBe(
      'False ReferenceNotFound: Guardrail "no-drop" not found; MaskingPolicy "pii" not found',
    );
    await createPolicies(w.api);
    expect((await w.reconcile())?.outcome).toBe('Ready');
    expect(condition(await w.access(), 'Stalled')).toBe('False BundleCompiled');
    expect(w.events()).toEqual([
      'orders Warning ReferenceNotFound',
      'orders Warning ReferenceNotFound',
      'orders Warning ReferenceNotFound',
      'orders Normal BundleCompiled',
    ]);
  });

  it('is Stalled with InvalidSpec when the bundle cannot be compiled', async () => {
    const w = await readyWorld({ upstream: null });
    expect(await w.reconcile()).toEqual({ outcome: 'InvalidSpec' });
    expect(condition(await w.access(), 'Ready')).toMatch(/^False InvalidSpec: spec.upstream: is required/);
    expect(await w.api.getOptional(CONFIG_MAP)).toBeUndefined();
  });

  it('is Stalled with BundleConflict when a ConfigMap of the bundle name is not its own, and never touches it', async () => {
    const w = await readyWorld();
    await w.api.create(`/api/v1/namespaces/${NS}/configmaps`, {
      metadata: { name: bundleConfigMapName('orders') },
      data: { mine: 'yes' },
    });
    expect(await w.reconcile()).toEqual({ outcome: 'BundleConflict' });
    expect(condition(await w.access(), 'Ready')).toBe(
      'False BundleConflict: ConfigMap "gatehouse-bundle-orders" exists and is not owned by this DatabaseAccess; rename or delete it',
    );
    expect(w.events()).toEqual(['orders Warning BundleConflict']);

    await w.api.delete(gatehousePath('DatabaseAccess', NS, 'orders'));
    expect(await w.reconcile()).toEqual({ outcome: 'finalized' });
    expect((await w.api.get<{ data: unknown }>(CONFIG_MAP)).data).toEqual({ mine: 'yes' });
  });

  it('reports two accesses selecting the same pod as a conflict on both; the pod counts for the one the webhook picks', async () => {
    const w = await readyWorld();
    await createAccess(w.api, 'orders-copy');
    await w.api.create(`/api/v1/namespaces/${NS}/pods`, {
      metadata: { name: 'orders-0', labels: { app: 'orders' } },
      spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] },
    });
    await w.reconcile();
    await w.reconcile(`${NS}/orders-copy`);
    const orders = await w.access();
    const copy = await w.access('orders-copy');
    expect(orders.status?.conflicts).toEqual([`${NS}/orders-copy`]);
    expect(copy.status?.conflicts).toEqual([`${NS}/orders`]);
    expect(orders.status?.workloads).toEqual([
      { kind: 'Pod', name: 'orders-0', pods: 1, injected: 0, current: 0, missing: ['orders-0'] },
    ]);
    expect(copy.status?.workloads).toEqual([]);

    await w.api.delete(gatehousePath('DatabaseAccess', NS, 'orders-copy'));
    expect(await w.reconcile(`${NS}/orders-copy`)).toEqual({ outcome: 'finalized' });
    expect(await w.api.getOptional(gatehousePath('DatabaseAccess', NS, 'orders-copy'))).toBeUndefined();
    await w.reconcile();
    expect((await w.access()).status?.conflicts).toEqual([]);
  });

  it('on deletion deletes its bundle, then removes only its own finalizer', async () => {
    const w = await world();
    await createSecret(w.api);
    await createPolicies(w.api);
    await createAccess(w.api, 'orders', {}, ['example.com/keep']);
    await w.reconcile();
    expect((await w.access()).metadata.finalizers).toEqual(['example.com/keep', FINALIZER]);
    expect(await w.api.getOptional(CONFIG_MAP)).toBeDefined();

    await w.api.delete(gatehousePath('DatabaseAccess', NS, 'orders'));
    const deleting = await w.access();
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    expect(await w.reconcile()).toEqual({ outcome: 'finalized' });
    expect(await w.api.getOptional(CONFIG_MAP)).toBeUndefined();
    expect((await w.access()).metadata.finalizers).toEqual(['example.com/keep']);
    const since = w.api.requests.length;
    expect(await w.reconcile()).toEqual({ outcome: 'deleting' });
    expect(w.api.writes(since)).toEqual([]);

    await w.api.patch(gatehousePath('DatabaseAccess', NS, 'orders'), { metadata: { finalizers: null } });
    expect(await w.api.getOptional(gatehousePath('DatabaseAccess', NS, 'orders'))).toBeUndefined();
    expect(await w.reconcile()).toEqual({ outcome: 'gone' });
  });

  it('never drops a finalizer another writer added after its cache was read: the stale write is a conflict', async () => {
    const w = await readyWorld();
    w.accesses.hold();
    await w.api.patch(gatehousePath('DatabaseAccess', NS, 'orders'), {
      metadata: { finalizers: ['example.com/other'] },
    });
    const error = await w.reconcile().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(409);
    expect((await w.access()).metadata.finalizers).toEqual(['example.com/other']);
    w.accesses.release();
    expect((await w.reconcile())?.outcome).toBe('Ready');
    expect((await w.access()).metadata.finalizers).toEqual(['example.com/other', FINALIZER]);
  });

  it('stamps the selected workloads when the sidecar changes, not on a policy change, not with rolloutStrategy None', async () => {
    const w = await readyWorld();
    await workload(w.api, 'deployments', 'web', 'orders');
    await workload(w.api, 'statefulsets', 'worker', 'orders');
    await workload(w.api, 'deployments', 'unrelated', 'other');
    await w.reconcile();
    const web = `${DEPLOYMENTS}/web`;
    const worker = `/apis/apps/v1/namespaces/${NS}/statefulsets/worker`;
    const first = await stampOf(w.api, web);
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(await stampOf(w.api, worker)).toBe(first);
    expect(await stampOf(w.api, `${DEPLOYMENTS}/unrelated`)).toBeUndefined();
    expect(w.events()).toEqual([
      'orders Normal BundleCompiled',
      'orders Normal RolloutStarted',
      'orders Normal RolloutStarted',
    ]);
    const ready = await w.access();
    expect(ready.status?.workloads?.map((x) => `${x.kind}/${x.name} ${x.pods}`)).toEqual([
      'Deployment/web 0',
      'StatefulSet/worker 0',
    ]);

    // Already stamped: nothing to roll.
    let since = w.api.requests.length;
    await w.reconcile();
    expect(w.api.writes(since)).toEqual([]);

    // A policy change is hot-reloaded by the sidecars: a new bundle, no new pods.
    await w.api.patch(gatehousePath('Guardrail', NS, 'no-drop'), {
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'truncate'], action: 'block' }] },
    });
    since = w.api.requests.length;
    await w.reconcile();
    const recompiled = await w.access();
    expect(recompiled.status?.bundle?.hash).not.toBe(ready.status?.bundle?.hash);
    expect(w.api.writes(since)).toEqual([
      `PUT ${CONFIG_MAP}`,
      `POST /api/v1/namespaces/${NS}/events`,
      `PATCH ${gatehousePath('DatabaseAccess', NS, 'orders')}/status`,
    ]);
    expect(await stampOf(w.api, web)).toBe(first);

    // A new sidecar port needs new pods.
    await w.api.patch(gatehousePath('DatabaseAccess', NS, 'orders'), { spec: { sidecar: { port: 15432 } } });
    await w.reconcile();
    const second = await stampOf(w.api, web);
    expect(second).not.toBe(first);
    expect(await stampOf(w.api, worker)).toBe(second);
    const moved = await w.access();
    expect(moved.metadata.generation).toBe(2);
    expect(moved.status?.observedGeneration).toBe(2);
    expect(moved.status?.conditions?.map((c) => c.observedGeneration)).toEqual([2, 2, 2]);

    await w.api.patch(gatehousePath('DatabaseAccess', NS, 'orders'), {
      spec: { sidecar: { port: 25432, rolloutStrategy: 'None' } },
    });
    await w.reconcile();
    expect(await stampOf(w.api, web)).toBe(second);
    expect((await w.access()).status?.observedGeneration).toBe(3);
  });

  it('stamps only the Deployment a kind-less name selects', async () => {
    const w = await readyWorld({ workloadSelector: { name: 'web' } });
    await workload(w.api, 'deployments', 'web', 'orders');
    await workload(w.api, 'statefulsets', 'web', 'orders');
    await workload(w.api, 'deployments', 'api', 'orders');
    await w.reconcile();
    expect(await stampOf(w.api, `${DEPLOYMENTS}/web`)).toBeDefined();
    expect(await stampOf(w.api, `/apis/apps/v1/namespaces/${NS}/statefulsets/web`)).toBeUndefined();
    expect(await stampOf(w.api, `${DEPLOYMENTS}/api`)).toBeUndefined();
  });

  it('is Reconciling with ReconcileError when a workload changed while being stamped, and throws for the retry', async () => {
    const w = await readyWorld();
    await workload(w.api, 'deployments', 'web', 'orders');
    w.api.failNext((method, path) => method === 'PATCH' && path === `${DEPLOYMENTS}/web`, 409, 'Conflict');
    await expect(w.reconcile()).rejects.toThrow('Deployment "web" changed while stamping it; retrying');
    const access = await w.access();
    expect(condition(access, 'Ready')).toBe(
      'False ReconcileError: Deployment "web" changed while stamping it; retrying',
    );
    expect(condition(access, 'Reconciling')).toMatch(/^True ReconcileError/);
    expect(condition(access, 'Stalled')).toBe('False ReconcileError');
    expect(w.events()).toContain('orders Warning ReconcileError');
    expect((await w.reconcile())?.outcome).toBe('Ready');
    expect(await stampOf(w.api, `${DEPLOYMENTS}/web`)).toBeDefined();
  });
});

describe('rolloutHash', () => {
  const spec = {
    subjects: [{ kind: 'ServiceAccount', name: 'api' }],
    allow: ['read'],
    upstream: { host: 'db', credentialsSecretRef: { name: 's' } },
  } as unknown as DatabaseAccessSpecType;

  it('changes when spec.sidecar.mcp is set or changed (the sidecar serves it from its start), not otherwise', () => {
    const plain = rolloutHash('p', spec);
    expect(rolloutHash('p', { ...spec, sidecar: { rolloutStrategy: 'Workload' } })).toBe(plain);
    const on = rolloutHash('p', { ...spec, sidecar: { mcp: {} } });
    expect(on).not.toBe(plain);
    expect(rolloutHash('p', { ...spec, sidecar: { mcp: { port: 9100 } } })).not.toBe(on);
  });
});
