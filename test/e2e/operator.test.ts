import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../crds/common.ts';
import { KubeApiError } from '../../operator/src/runtime/kube-api.ts';
import {
  ANNOTATION_RESTARTED_FOR,
  BUNDLE_CONFIG_KEY,
  bundleConfigMapName,
  FINALIZER,
  VOLUME_BUNDLE,
} from '../../operator/src/sidecar-layout.ts';
import { publicKeyFromPem } from '../../sidecar/src/audit/signing-key.ts';
import { CHART_DIR, helm } from '../harness/helm.ts';
import { ADMIN_USER as KUBE_ADMIN_USER } from '../harness/kube/start-kube.ts';
import {
  type AccessView,
  conditionOf,
  gatehousePath,
  type OperatorCluster,
  startOperatorCluster,
} from './support/operator-cluster.ts';
import {
  accessSpec,
  auditRecords,
  createNamespace,
  createPolicies,
  createSelectedPod,
  runSidecar,
  seedDatabase,
} from './support/operator-fixtures.ts';
import type { SidecarProcess } from './support/play-kubelet.ts';
import { monitoringQueries, readsOperator, seriesByMetric, unbackedParts } from './support/promql-check.ts';

const pgInfo = inject('postgres');
const DATABASE = 'operator_e2e';

let env: OperatorCluster;
const startedAt = Date.now();

beforeAll(async () => {
  [env] = await Promise.all([startOperatorCluster(), seedDatabase(pgInfo, DATABASE)]);
  console.log(
    `operator e2e: API server, CRDs and operator ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
  );
}, 240_000);

afterAll(async () => {
  await env?.stop();
  console.log(`operator e2e: ${((Date.now() - startedAt) / 1000).toFixed(1)} s in all`);
});

async function createAccess(namespace: string, extra: Record<string, unknown> = {}) {
  await env.api.create(gatehousePath('databaseaccesses', namespace), {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name: 'orders' },
    spec: accessSpec(pgInfo, DATABASE, extra),
  });
}

describe('gatehouse operator against a real API server', () => {
  const namespace = 'shop';
  let sidecar: SidecarProcess | undefined;

  afterAll(async () => {
    await sidecar?.stop();
  });

  it('compiles the bundle, injects a matching pod once, and its sidecar enforces the policy and reloads it', async () => {
    const { api } = env;
    await createNamespace(api, namespace);
    await api.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: 'orders-app' } });
    await createPolicies(api, namespace, pgInfo);
    await createAccess(namespace);
    const access = await env.readyAccess(namespace, 'orders');
    expect(access.metadata.finalizers).toContain(FINALIZER);
    expect(access.status?.bundle?.configMap).toBe(bundleConfigMapName('orders'));
    expect(conditionOf(access, 'Stalled')?.status).toBe('False');
    expect(conditionOf(access, 'Reconciling')?.status).toBe('False');
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
    for (const [plural, name] of [
      ['guardrails', 'no-drop'],
      ['maskingpolicies', 'pii'],
    ] as const) {
      const policy = await env.eventually(`${plural}/${name} Ready`, async () => {
        const p = await api.get<AccessView>(gatehousePath(plural, namespace, name));
        return conditionOf(p, 'Ready')?.status === 'True' ? p : undefined;
      });
      expect(conditionOf(policy, 'Ready')?.message).toBe('used by DatabaseAccess orders');
    }

    // The namespace's masking key, made once for every sidecar of the namespace (tokens agree across pods).
    const maskingKey = await api.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${namespace}/secrets/gatehouse-masking-key`,
    );
    expect(Buffer.from(maskingKey.data?.['key'] ?? '', 'base64').toString()).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // And its audit signing key, so every sidecar's log verifies across restarts with the key pinned.
    const signingKey = await api.get<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${namespace}/secrets/gatehouse-audit-signing-key`,
    );
    const signingPublicKey = publicKeyFromPem(
      Buffer.from(signingKey.data?.['public.pem'] ?? '', 'base64').toString(),
    );
    expect(publicKeyFromPem(Buffer.from(signingKey.data?.['key.pem'] ?? '', 'base64').toString())).toBe(
      signingPublicKey,
    );

    const injected = await createSelectedPod(api, namespace, 'orders-0', 'orders');
    expect(injected.copies).toBe(1);
    expect(injected.placement).toBe('initContainers');
    const covered = await env.readyAccess(namespace, 'orders', (a) =>
      (a.status?.workloads ?? []).some((w) => w.current === 1),
    );
    expect(covered.status?.workloads).toEqual([
      { kind: 'Pod', name: 'orders-0', pods: 1, injected: 1, current: 1, missing: [] },
    ]);

    const running = await runSidecar(api, injected);
    sidecar = running.sidecar;
    const app = new pg.Client({ host: '127.0.0.1', port: sidecar.port, database: DATABASE, user: 'app' });
    await app.connect();
    app.on('error', () => {});
    expect((await app.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 2 }]);
    await expect(app.query('DROP TABLE scratch')).rejects.toMatchObject({ code: '42501' });
    expect(auditRecords(sidecar!).find((r) => r['type'] === 'log.open')?.['publicKey']).toBe(
      signingPublicKey,
    );
    const refused = await env.eventually('the refusal audited', async () =>
      auditRecords(sidecar!).find(
        (r) => r['type'] === 'statement' && String(r['statement']).startsWith('DROP'),
      ),
    );
    expect(refused).toMatchObject({
      subject: `system:serviceaccount:${namespace}:orders-app`,
      namespace,
      serviceAccount: 'orders-app',
      pod: 'orders-0',
    });
    expect(refused['outcome']).not.toBe('ok');
    // TRUNCATE is not blocked yet.
    await app.query('TRUNCATE scratch');

    // A policy change reaches the running sidecar through the ConfigMap, without a restart.
    const before = covered.status!.bundle!.hash;
    // The client claims another author; the operator's webhook stamps the API request's user instead.
    await api.patch(gatehousePath('guardrails', namespace, 'no-drop'), {
      metadata: { annotations: { 'gatehouse.dev/changed-by': 'someone-else' } },
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'truncate'], action: 'block' }] },
    });
    const stamped = await api.get<{ metadata: { annotations?: Record<string, string> } }>(
      gatehousePath('guardrails', namespace, 'no-drop'),
    );
    expect(stamped.metadata.annotations?.['gatehouse.dev/changed-by']).toBe(KUBE_ADMIN_USER);
    await env.readyAccess(namespace, 'orders', (a) => a.status?.bundle?.hash !== before);
    const pid = sidecar.child.pid;
    await running.kubelet.resyncConfigMap(VOLUME_BUNDLE);
    await env.eventually('TRUNCATE blocked after the reload', async () => {
      try {
        await app.query('TRUNCATE scratch');
        return undefined;
      } catch (error) {
        return (error as { code?: string }).code === '42501' ? true : undefined;
      }
    });
    expect(sidecar.child.pid).toBe(pid);
    expect(sidecar.child.exitCode).toBeNull();
    expect(sidecar.lines.some((l) => l.includes('policy reloaded'))).toBe(true);
    // The reload's audit record names who changed the Guardrail, as the API server authenticated them.
    const reload = await env.eventually('the policy.change record of the reload', async () =>
      auditRecords(sidecar!).find((r) => r['type'] === 'policy.change' && r['event'] === 'reloaded'),
    );
    expect(reload).toMatchObject({
      changedBy: KUBE_ADMIN_USER,
      changedByDocument: { [`Guardrail ${namespace}/no-drop`]: KUBE_ADMIN_USER },
      changed: [`Guardrail ${namespace}/no-drop`],
    });
    await app.end();
  }, 90_000);

  it('masks the email column through the sidecar', async () => {
    const app = new pg.Client({ host: '127.0.0.1', port: sidecar!.port, database: DATABASE, user: 'app' });
    await app.connect();
    const { rows } = await app.query('SELECT id, email FROM customers ORDER BY id');
    expect(rows.map((r: { id: number }) => r.id)).toEqual([1, 2]);
    for (const { email } of rows as { email: string }[]) expect(email).not.toContain('example.com');
    await app.end();
  });
});

describe('references, validation, rollout and deletion', () => {
  it('is Ready=False, naming what is missing, until the references exist', async () => {
    const { api } = env;
    const namespace = 'missing-refs';
    await createNamespace(api, namespace);
    await createAccess(namespace);
    const stalled = await env.eventually('Ready=False with ReferenceNotFound', async () => {
      const access = await api.get<AccessView>(gatehousePath('databaseaccesses', namespace, 'orders'));
      return conditionOf(access, 'Ready')?.reason === 'ReferenceNotFound' ? access : undefined;
    });
    const ready = conditionOf(stalled, 'Ready');
    expect(ready?.status).toBe('False');
    expect(ready?.message).toBe(
      'Secret "db-creds" not found; Guardrail "no-drop" not found; MaskingPolicy "pii" not found',
    );
    expect(conditionOf(stalled, 'Stalled')?.status).toBe('True');
    const events = await api.get<{
      items: { reason: string; type: string; involvedObject: { name: string } }[];
    }>(`/api/v1/namespaces/${namespace}/events`);
    expect(events.items).toContainEqual(
      expect.objectContaining({
        reason: 'ReferenceNotFound',
        type: 'Warning',
        involvedObject: expect.objectContaining({ name: 'orders' }),
      }),
    );
    expect(
      await api.getOptional(`/api/v1/namespaces/${namespace}/configmaps/${bundleConfigMapName('orders')}`),
    ).toBeUndefined();

    await createPolicies(api, namespace, pgInfo);
    // The Guardrail and MaskingPolicy are watched; the Secret is looked for again on the next pass.
    await env.readyAccess(namespace, 'orders');
  }, 60_000);

  it('leaves invalid resources to the CRD schema: the API server rejects them', async () => {
    const namespace = 'invalid';
    await createNamespace(env.api, namespace);
    const error = await env.api
      .create(gatehousePath('guardrails', namespace), {
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
    const { api } = env;
    const namespace = 'rollout';
    await createNamespace(api, namespace);
    await createPolicies(api, namespace, pgInfo);
    await api.create(`/apis/apps/v1/namespaces/${namespace}/deployments`, {
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'orders' } },
        template: {
          metadata: { labels: { app: 'orders' } },
          spec: { containers: [{ name: 'app', image: 'example.com/orders:1' }] },
        },
      },
    });
    // Created before the access: no sidecar, and the status must say so.
    await api.create(`/api/v1/namespaces/${namespace}/pods`, {
      metadata: { name: 'early', labels: { app: 'orders' } },
      spec: { containers: [{ name: 'app', image: 'example.com/orders:1' }] },
    });
    await createAccess(namespace);
    const stamp = async () =>
      (
        await api.get<{ spec: { template: { metadata: { annotations?: Record<string, string> } } } }>(
          `/apis/apps/v1/namespaces/${namespace}/deployments/web`,
        )
      ).spec.template.metadata.annotations?.[ANNOTATION_RESTARTED_FOR];
    const first = await env.eventually('the Deployment stamped', stamp);
    const access = await env.readyAccess(namespace, 'orders');
    expect(access.status?.workloads).toEqual([
      { kind: 'Deployment', name: 'web', pods: 0, injected: 0, current: 0, missing: [] },
      { kind: 'Pod', name: 'early', pods: 1, injected: 0, current: 0, missing: ['early'] },
    ]);

    // A guardrail change is hot-reloaded: no new pods.
    await api.patch(gatehousePath('guardrails', namespace, 'no-drop'), {
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'alter'] }] },
    });
    await env.readyAccess(namespace, 'orders', (a) => a.status?.bundle?.hash !== access.status?.bundle?.hash);
    expect(await stamp()).toBe(first);

    // A new sidecar port needs new pods.
    await api.patch(gatehousePath('databaseaccesses', namespace, 'orders'), {
      spec: { sidecar: { port: 15432 } },
    });
    const second = await env.eventually('the Deployment stamped again', async () => {
      const value = await stamp();
      return value !== first ? value : undefined;
    });
    await api.patch(gatehousePath('databaseaccesses', namespace, 'orders'), {
      spec: { sidecar: { port: 25432, rolloutStrategy: 'None' } },
    });
    await env.readyAccess(namespace, 'orders', (a) => a.metadata.generation === 3);
    expect(await stamp()).toBe(second);

    // A second access selecting the same pods is a conflict both report.
    await api.create(gatehousePath('databaseaccesses', namespace), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders-copy' },
      spec: accessSpec(pgInfo, DATABASE),
    });
    await env.readyAccess(
      namespace,
      'orders',
      (a) => a.status?.conflicts?.[0] === `${namespace}/orders-copy`,
    );
    const copy = await env.readyAccess(
      namespace,
      'orders-copy',
      (a) => a.status?.conflicts?.[0] === `${namespace}/orders`,
    );
    // The webhook gives the pod to "orders" (first by name), so the copy does not count it as missing.
    expect(copy.status?.workloads?.map((w) => `${w.kind}/${w.name}`)).toEqual(['Deployment/web']);
    await api.delete(gatehousePath('databaseaccesses', namespace, 'orders-copy'));
    await env.readyAccess(namespace, 'orders', (a) => a.status?.conflicts?.length === 0);

    await api.delete(gatehousePath('databaseaccesses', namespace, 'orders'));
    await env.eventually('the DatabaseAccess gone', async () =>
      (await api.getOptional(gatehousePath('databaseaccesses', namespace, 'orders'))) === undefined
        ? true
        : undefined,
    );
    // No garbage collector runs here: the finalizer deleted the bundle itself.
    expect(
      await api.getOptional(`/api/v1/namespaces/${namespace}/configmaps/${bundleConfigMapName('orders')}`),
    ).toBeUndefined();
  }, 60_000);

  it('publishes reconcile metrics and health', async () => {
    const text = await (await fetch(`http://127.0.0.1:${env.operator.metricsPort}/metrics`)).text();
    expect(text).toMatch(
      /gatehouse_operator_reconcile_total\{controller="databaseaccess",result="(success|requeue)"\} [1-9]/,
    );
    expect(text).toContain('gatehouse_operator_workqueue_depth{controller="databaseaccess"}');
    expect(text).toMatch(/^gatehouse_operator_leader 1$/m);
    // The pods the accesses above select, counted from their status (orders-0 carries its sidecar).
    expect(text).toMatch(/^gatehouse_operator_pods_without_sidecar\{namespace="shop",access="orders"\} 0$/m);
    // The chart's alerts and dashboard panels on the operator read what it exports (the others':
    // monitoring.test.ts).
    const rendered = await helm([
      'template',
      'gatehouse',
      CHART_DIR,
      '--set',
      'monitoring.prometheusRule.enabled=true,monitoring.dashboards.enabled=true',
    ]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const operatorQueries = monitoringQueries(
      parseAllDocuments(rendered.stdout).map(
        (d) => d.toJS() as { kind?: string; spec?: unknown; data?: unknown },
      ),
    ).filter(readsOperator);
    expect(operatorQueries.map((q) => q.where)).toEqual(
      expect.arrayContaining(['alert GatehouseSidecarMissing', 'alert GatehouseOperatorNotLeading']),
    );
    const scrape = seriesByMetric(text);
    expect(
      operatorQueries.flatMap((q) =>
        unbackedParts(q.expression, () => scrape).map((p) => `${q.where}: ${p}`),
      ),
    ).toEqual([]);
    expect((await fetch(`http://127.0.0.1:${env.operator.healthPort}/healthz`)).status).toBe(200);
    // The operator runs as the chart's ServiceAccount: nothing it did may have been refused by RBAC.
    expect(env.operator.lines.filter((line) => /forbidden/i.test(line))).toEqual([]);
  });

  it('hands the controllers to a second replica when the leader shuts down', async () => {
    const replica = await env.startReplica();
    await env.eventually('the replica ready', async () => {
      const response = await fetch(`http://127.0.0.1:${replica.healthPort}/readyz`).catch(() => undefined);
      return response?.ok ? true : undefined;
    });
    const leaderGauge = async (port: number) =>
      /^gatehouse_operator_leader (\d)$/m.exec(
        await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      )?.[1];
    expect(await leaderGauge(replica.metricsPort)).toBe('0');
    const stoppedAt = Date.now();
    await env.operator.stop();
    await env.eventually('the replica leading', async () =>
      replica.lines.some((l) => l.includes('controllers started')) ? true : undefined,
    );
    // The leader released its lease on the way out: no wait for it to expire (15 s).
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    // The policy objects below pass the policy-change webhook, now served by the replica alone.
    await env.routeWebhooksTo(replica);
    const namespace = 'after-handover';
    await createNamespace(env.api, namespace);
    await createPolicies(env.api, namespace, pgInfo);
    await createAccess(namespace);
    await env.readyAccess(namespace, 'orders');
  }, 60_000);
});
