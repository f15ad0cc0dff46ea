import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type KubeEndpoint, type KubeResponse, kubeRequest } from '../test/harness/kube/kube-request.ts';
import { type KubeCluster, startKube } from '../test/harness/kube/start-kube.ts';
import { KUBE_VERSIONS } from '../test/harness/kube/versions.ts';
import { API_VERSION } from './common.ts';
import { API_KINDS } from './custom-resource-definitions.ts';

/**
 * The committed CRDs (crds/generated) against a real kube-apiserver of each tested release: the API
 * server's own validation (OpenAPI, CEL rules, list-map keys, the status subresource) is what users
 * meet, so that is what is checked here.
 */

type Status = { message?: string; reason?: string };
type Condition = { type: string; status: string };
type CrdStatus = { status?: { conditions?: Condition[] } };
type Table = { columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> };

const NAMESPACE = 'crd-test';
const GROUP_PATH = `/apis/${API_VERSION}`;
const ESTABLISHED_TIMEOUT_MS = 30_000;
/** The first run on a machine builds etcd and kube-apiserver from source; later runs start in seconds. */
const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;

async function committedCrds(): Promise<Array<Record<string, unknown>>> {
  return Promise.all(
    API_KINDS.map(async (apiKind) =>
      parse(
        await readFile(
          resolve(import.meta.dirname, 'generated', `${apiKind.plural}.gatehouse.dev.yaml`),
          'utf8',
        ),
      ),
    ),
  );
}

/** Applies the CRDs and waits until the API server serves them. */
async function installCrds(kube: KubeEndpoint): Promise<void> {
  for (const crd of await committedCrds()) {
    const created = await kubeRequest<Status>(kube, {
      method: 'POST',
      path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions?fieldValidation=Strict',
      body: crd,
    });
    expect(created.status, created.body.message).toBe(201);
  }
  const deadline = Date.now() + ESTABLISHED_TIMEOUT_MS;
  for (const apiKind of API_KINDS) {
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${apiKind.plural}.gatehouse.dev`;
    for (;;) {
      const crd = await kubeRequest<CrdStatus>(kube, { path });
      const established = crd.body.status?.conditions?.find((c) => c.type === 'Established');
      if (established?.status === 'True') break;
      if (Date.now() > deadline)
        throw new Error(`${apiKind.plural} not Established: ${JSON.stringify(crd.body)}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }
}

function accessBody(name: string, spec: Record<string, unknown>) {
  return { apiVersion: API_VERSION, kind: 'DatabaseAccess', metadata: { name }, spec };
}

const validAccessSpec = {
  subjects: [{ kind: 'ServiceAccount', name: 'orders' }],
  allow: ['read', 'write'],
  guardrails: ['no-destructive'],
  workloadSelector: { kind: 'Deployment', name: 'orders' },
  upstream: { host: 'orders-db.shop.svc', port: 5432, database: 'orders' },
};

/** A table request: what `kubectl get` prints, with the CRD's printer columns. */
function getTable(kube: KubeEndpoint, path: string): Promise<Table> {
  return readFile(kube.caFile).then(
    (ca) =>
      new Promise((done, fail) => {
        const outgoing = request(
          new URL(path, kube.server),
          {
            ca,
            headers: {
              accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
              authorization: `Bearer ${kube.adminToken}`,
            },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => done(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Table));
            response.on('error', fail);
          },
        );
        outgoing.on('error', fail);
        outgoing.end();
      }),
  );
}

function expectRejected(response: KubeResponse<Status>, ...fragments: string[]): void {
  expect(response.status, JSON.stringify(response.body)).toBe(422);
  for (const fragment of fragments) expect(response.body.message).toContain(fragment);
}

describe.each(KUBE_VERSIONS)('CRDs on kube-apiserver %s', (version) => {
  let kube: KubeCluster;
  const create = (plural: string, body: unknown) =>
    kubeRequest<Status & Record<string, never>>(kube, {
      method: 'POST',
      path: `${GROUP_PATH}/namespaces/${NAMESPACE}/${plural}`,
      body,
    });
  const get = <T>(plural: string, name: string) =>
    kubeRequest<T>(kube, { path: `${GROUP_PATH}/namespaces/${NAMESPACE}/${plural}/${name}` });
  const mergePatch = (path: string, body: unknown) =>
    kubeRequest<Status & { metadata?: { generation: number } }>(kube, {
      method: 'PATCH',
      path: `${GROUP_PATH}/namespaces/${NAMESPACE}/${path}`,
      body,
      contentType: 'application/merge-patch+json',
    });

  beforeAll(async () => {
    kube = await startKube({ version });
    await installCrds(kube);
    const namespace = await kubeRequest(kube, {
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } },
    });
    expect(namespace.status).toBe(201);
  }, FIRST_RUN_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  it('serves the kinds with their short names and the gatehouse category', async () => {
    const discovery = await kubeRequest<{
      resources: Array<{ name: string; kind: string; shortNames?: string[]; categories?: string[] }>;
    }>(kube, { path: GROUP_PATH });
    const kinds = discovery.body.resources.filter((resource) => !resource.name.includes('/'));
    expect(kinds.map(({ kind, shortNames, categories }) => ({ kind, shortNames, categories }))).toEqual(
      expect.arrayContaining([
        { kind: 'DatabaseAccess', shortNames: ['dba'], categories: ['gatehouse'] },
        { kind: 'Guardrail', shortNames: ['gr'], categories: ['gatehouse'] },
        { kind: 'MaskingPolicy', shortNames: ['mp'], categories: ['gatehouse'] },
      ]),
    );
    expect(discovery.body.resources.map((resource) => resource.name)).toEqual(
      expect.arrayContaining(['databaseaccesses/status', 'guardrails/status', 'maskingpolicies/status']),
    );
  });

  it('accepts a valid object of each kind and fills in the defaults', async () => {
    const access = await create('databaseaccesses', accessBody('orders', validAccessSpec));
    expect(access.status, access.body.message).toBe(201);
    const guardrail = await create('guardrails', {
      apiVersion: API_VERSION,
      kind: 'Guardrail',
      metadata: { name: 'no-destructive' },
      spec: { rules: [{ name: 'no-drop', kinds: ['drop', 'truncate'], tables: ['public.*'] }] },
    });
    expect(guardrail.status, guardrail.body.message).toBe(201);
    const masking = await create('maskingpolicies', {
      apiVersion: API_VERSION,
      kind: 'MaskingPolicy',
      metadata: { name: 'pii' },
      spec: {
        rules: [{ columns: ['public.customers.email'], method: 'partial' }],
        exemptions: [{ subject: { kind: 'Group', name: 'support' }, expires: '2026-12-31T23:59:59Z' }],
      },
    });
    expect(masking.status, masking.body.message).toBe(201);

    const stored = await get<{ spec: typeof validAccessSpec & { upstream: { protocol: string } } }>(
      'databaseaccesses',
      'orders',
    );
    expect(stored.body.spec.upstream.protocol).toBe('postgres');
    expect(stored.body.spec).toMatchObject({ guardrails: ['no-destructive'], maskingPolicies: [] });
    const storedGuardrail = await get<{ spec: { mode: string; rules: Array<{ action: string }> } }>(
      'guardrails',
      'no-destructive',
    );
    expect(storedGuardrail.body.spec.mode).toBe('enforce');
    expect(storedGuardrail.body.spec.rules[0]!.action).toBe('block');
    const storedMasking = await get<{ spec: { autoDetect: boolean; allowPredicatesOnMasked: boolean } }>(
      'maskingpolicies',
      'pii',
    );
    expect(storedMasking.body.spec).toMatchObject({ autoDetect: true, allowPredicatesOnMasked: false });
  });

  it('rejects a value outside an enum, naming the field and the allowed values', async () => {
    const response = await create(
      'databaseaccesses',
      accessBody('bad-enum', { ...validAccessSpec, allow: ['read', 'everything'] }),
    );
    expectRejected(response, 'spec.allow[1]', 'Unsupported value: "everything"', '"ddl"');
  });

  it('rejects a workloadSelector name without a kind (CEL)', async () => {
    const response = await create(
      'databaseaccesses',
      accessBody('no-kind', { ...validAccessSpec, workloadSelector: { name: 'orders' } }),
    );
    expectRejected(response, 'spec.workloadSelector', 'workloadSelector.name needs a kind');
  });

  it('rejects a workloadSelector with both a name and matchLabels, or with neither (CEL)', async () => {
    const both = await create(
      'databaseaccesses',
      accessBody('both', {
        ...validAccessSpec,
        workloadSelector: { kind: 'Deployment', name: 'orders', matchLabels: { app: 'orders' } },
      }),
    );
    expectRejected(both, 'workloadSelector needs either name (with kind) or matchLabels, not both');
    const neither = await create(
      'databaseaccesses',
      accessBody('neither', { ...validAccessSpec, workloadSelector: { kind: 'Deployment' } }),
    );
    expectRejected(neither, 'workloadSelector needs either name (with kind) or matchLabels, not both');
    const byLabels = await create(
      'databaseaccesses',
      accessBody('by-labels', { ...validAccessSpec, workloadSelector: { matchLabels: { app: 'orders' } } }),
    );
    expect(byLabels.status, byLabels.body.message).toBe(201);
  });

  it('keeps upstream.protocol immutable (CEL transition rule) while other fields change', async () => {
    const created = await create('databaseaccesses', accessBody('immutable', validAccessSpec));
    expect(created.status, created.body.message).toBe(201);
    const switched = await mergePatch('databaseaccesses/immutable', {
      spec: { upstream: { protocol: 'mysql' } },
    });
    expectRejected(switched, 'spec.upstream.protocol', 'upstream.protocol is immutable');
    const moved = await mergePatch('databaseaccesses/immutable', {
      spec: { upstream: { host: 'replica.db' } },
    });
    expect(moved.status, moved.body.message).toBe(200);
    expect(moved.body.metadata?.generation).toBe(2);
  });

  it('rejects a masking rule without columns or classifiers (CEL) and a malformed expiry', async () => {
    const noTarget = await create('maskingpolicies', {
      apiVersion: API_VERSION,
      kind: 'MaskingPolicy',
      metadata: { name: 'no-target' },
      spec: { rules: [{ method: 'redact' }] },
    });
    expectRejected(noTarget, 'spec.rules[0]', 'a masking rule needs columns, classifiers or both');
    const badExpiry = await create('maskingpolicies', {
      apiVersion: API_VERSION,
      kind: 'MaskingPolicy',
      metadata: { name: 'bad-expiry' },
      spec: { exemptions: [{ subject: { kind: 'User', name: 'ann' }, expires: 'next tuesday' }] },
    });
    expectRejected(badExpiry, 'spec.exemptions[0].expires', 'date-time');
  });

  it('rejects two guardrail rules with one name (list-map key)', async () => {
    const response = await create('guardrails', {
      apiVersion: API_VERSION,
      kind: 'Guardrail',
      metadata: { name: 'duplicate' },
      spec: {
        rules: [
          { name: 'no-drop', kinds: ['drop'] },
          { name: 'no-drop', kinds: ['truncate'] },
        ],
      },
    });
    expectRejected(response, 'spec.rules[1]', 'Duplicate value');
  });

  it('rejects guardrail rules whose tables, subjects or databases cannot mean what they say (CEL)', async () => {
    const guardrailWith = (name: string, rule: Record<string, unknown>) =>
      create('guardrails', {
        apiVersion: API_VERSION,
        kind: 'Guardrail',
        metadata: { name },
        spec: { rules: [{ name: 'r', kinds: ['drop'], ...rule }] },
      });
    expectRejected(
      await guardrailWith('tables-no-table-kind', { kinds: ['dynamic-sql'], tables: ['public.*'] }),
      'spec.rules[0]',
      'tables narrows only the kinds whose findings name tables',
    );
    expectRejected(
      await guardrailWith('empty-tables', { tables: [] }),
      'tables is empty and would match no table',
    );
    expectRejected(
      await guardrailWith('empty-subjects', { subjects: [] }),
      'subjects is empty and would match nobody',
    );
    expectRejected(
      await guardrailWith('empty-databases', { databases: [] }),
      'databases is empty and would match no database',
    );
    expectRejected(
      await guardrailWith('twice', { kinds: ['drop', 'drop'] }),
      'spec.rules[0].kinds[1]',
      'Duplicate value',
    );
    // Tables beside a kind that names tables: dynamic SQL may touch them too, so the mix is allowed.
    const mixed = await guardrailWith('mixed', {
      kinds: ['truncate', 'dynamic-sql'],
      tables: ['public.cust*'],
    });
    expect(mixed.status, mixed.body.message).toBe(201);
    const deleted = await kubeRequest<Status>(kube, {
      method: 'DELETE',
      path: `${GROUP_PATH}/namespaces/${NAMESPACE}/guardrails/mixed`,
    });
    expect(deleted.status, deleted.body.message).toBe(200);
  });

  it('writes status only through the status subresource, in metav1.Condition shape', async () => {
    const condition = {
      type: 'Ready',
      status: 'True',
      observedGeneration: 1,
      lastTransitionTime: '2026-11-26T06:00:00Z',
      reason: 'BundleCompiled',
      message: 'Policy bundle compiled; 1 of 1 pods carry the sidecar',
    };
    const status = {
      observedGeneration: 1,
      conditions: [condition],
      bundle: { configMap: 'gatehouse-bundle-orders', hash: 'sha256-3f1a' },
      workloads: [
        { kind: 'Deployment', name: 'orders', pods: 2, injected: 1, current: 1, missing: ['orders-7d9f'] },
      ],
      conflicts: [],
    };
    const ignored = await mergePatch('databaseaccesses/orders', { status });
    expect(ignored.status).toBe(200);
    expect((await get<{ status?: unknown }>('databaseaccesses', 'orders')).body.status).toBeUndefined();

    const written = await mergePatch('databaseaccesses/orders/status', { status });
    expect(written.status, written.body.message).toBe(200);
    expect((await get<{ status?: unknown }>('databaseaccesses', 'orders')).body.status).toEqual(status);

    const badReason = await mergePatch('databaseaccesses/orders/status', {
      status: { conditions: [{ ...condition, reason: 'not camel case' }] },
    });
    // 1.28 names the field from inside status (conditions[0].reason), newer releases from the root.
    expectRejected(badReason, 'conditions[0].reason', 'should match');
    const badStatus = await mergePatch('guardrails/no-destructive/status', {
      status: { conditions: [{ ...condition, status: 'Maybe' }] },
    });
    expectRejected(badStatus, 'conditions[0].status', 'Unsupported value: "Maybe"');
    const twice = await mergePatch('databaseaccesses/orders/status', {
      status: {
        workloads: [
          { kind: 'Deployment', name: 'orders', pods: 1, injected: 1, current: 1 },
          { kind: 'Deployment', name: 'orders', pods: 1, injected: 0, current: 0 },
        ],
      },
    });
    expectRejected(twice, 'workloads[1]', 'Duplicate value');
  });

  it('prints Ready from the conditions and a summary of each kind', async () => {
    const accesses = await getTable(kube, `${GROUP_PATH}/namespaces/${NAMESPACE}/databaseaccesses`);
    const columns = accesses.columnDefinitions.map((column) => column.name);
    expect(columns).toEqual(['Name', 'Ready', 'Upstream', 'Protocol', 'Allow', 'Bundle', 'Reason', 'Age']);
    const orders = accesses.rows.find((row) => row.cells[0] === 'orders')!;
    expect(orders.cells.slice(1, 7)).toEqual([
      'True',
      'orders-db.shop.svc',
      'postgres',
      '["read","write"]',
      'gatehouse-bundle-orders',
      'BundleCompiled',
    ]);
    const guardrails = await getTable(kube, `${GROUP_PATH}/namespaces/${NAMESPACE}/guardrails`);
    expect(guardrails.columnDefinitions.map((column) => column.name)).toEqual([
      'Name',
      'Ready',
      'Mode',
      'Rules',
      'Reason',
      'Age',
    ]);
    expect(guardrails.rows[0]!.cells.slice(0, 4)).toEqual(['no-destructive', null, 'enforce', 'no-drop']);
    const masking = await getTable(kube, `${GROUP_PATH}/namespaces/${NAMESPACE}/maskingpolicies`);
    expect(masking.rows[0]!.cells.slice(0, 3)).toEqual(['pii', null, true]);
  });
});
