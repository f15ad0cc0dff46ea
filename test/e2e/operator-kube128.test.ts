import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { gatehousePath, type OperatorCluster, startOperatorCluster } from './support/operator-cluster.ts';
import {
  accessSpec,
  createNamespace,
  createPolicies,
  createSelectedPod,
  runSidecar,
  seedDatabase,
} from './support/operator-fixtures.ts';
import type { SidecarProcess } from './support/play-kubelet.ts';

const pgInfo = inject('postgres');
const DATABASE = 'operator_e2e_kube128';

let env: OperatorCluster;
let sidecar: SidecarProcess | undefined;

beforeAll(async () => {
  [env] = await Promise.all([startOperatorCluster({ version: 'v1.28.15' }), seedDatabase(pgInfo, DATABASE)]);
}, 240_000);

afterAll(async () => {
  await sidecar?.stop();
  await env?.stop();
});

describe('gatehouse operator on Kubernetes 1.28 (before native sidecars)', () => {
  it('injects a plain sidecar container that enforces the compiled policy', async () => {
    const { api } = env;
    const namespace = 'shop';
    await createNamespace(api, namespace);
    await api.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: 'orders-app' } });
    await createPolicies(api, namespace, pgInfo);
    await api.create(gatehousePath('databaseaccesses', namespace), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(pgInfo, DATABASE),
    });
    await env.readyAccess(namespace, 'orders');
    const injected = await createSelectedPod(api, namespace, 'orders-0', 'orders');
    expect(injected.placement).toBe('containers');
    expect(injected.copies).toBe(1);
    expect(injected.container.restartPolicy).toBeUndefined();
    await env.readyAccess(namespace, 'orders', (a) =>
      (a.status?.workloads ?? []).some((w) => w.current === 1),
    );

    sidecar = (await runSidecar(api, injected)).sidecar;
    const app = new pg.Client({ host: '127.0.0.1', port: sidecar.port, database: DATABASE, user: 'app' });
    await app.connect();
    app.on('error', () => {});
    expect((await app.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 2 }]);
    await expect(app.query('DROP TABLE scratch')).rejects.toMatchObject({ code: '42501' });
    await app.end();
  }, 90_000);
});
