import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { API_VERSION } from '../../../crds/common.ts';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import { FakeKubeApi } from './fake-kube-api.ts';
import { KubeApi, KubeApiError, type KubeClient, type KubeObject } from './kube-api.ts';

/**
 * The fake's rules, checked against a real kube-apiserver with the same steps: what the controller
 * unit tests rely on the fake for must be what the server does.
 */

type Subject = { name: string; api: KubeClient };
const subjects: Subject[] = [{ name: 'FakeKubeApi', api: new FakeKubeApi() }];
let cluster: KubeCluster | undefined;

beforeAll(async () => {
  cluster = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfigPath);
  const real = new KubeApi(config);
  const dir = join(import.meta.dirname, '../../../crds/generated');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')))
    await real.create(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      parse(readFileSync(join(dir, file), 'utf8')),
    );
  // Established takes a moment; a list answering 200 is what the tests need.
  for (let i = 0; ; i++) {
    const ok = await real.list(`/apis/${API_VERSION}/guardrails`).then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (i > 200) throw new Error('the Guardrail CRD was not served within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  subjects.push({ name: 'kube-apiserver', api: real });
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

async function namespace(api: KubeClient): Promise<string> {
  const name = `contract-${randomBytes(4).toString('hex')}`;
  await api.create('/api/v1/namespaces', { metadata: { name } });
  return name;
}

async function failure(promise: Promise<unknown>): Promise<{ status: number; reason: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KubeApiError);
  return { status: (error as KubeApiError).status, reason: (error as KubeApiError).reason };
}

type Guardrail = KubeObject & { spec: unknown; status?: Record<string, unknown> };
const guardrail = (name: string) => ({
  apiVersion: API_VERSION,
  kind: 'Guardrail',
  metadata: { name },
  spec: { rules: [{ name: 'r', kinds: ['drop'] }] },
  status: { observedGeneration: 7 },
});

describe.each(['FakeKubeApi', 'kube-apiserver'])('the API server contract: %s', (name) => {
  const subject = () => subjects.find((s) => s.name === name)!;
  const cm = (ns: string, name = '') => `/api/v1/namespaces/${ns}/configmaps${name && `/${name}`}`;

  it(`answers 404, 409 AlreadyExists and a missing namespace as the server does`, async () => {
    const { api } = subject();
    const ns = await namespace(api);
    expect(await failure(api.get(cm(ns, 'nope')))).toEqual({ status: 404, reason: 'NotFound' });
    expect(await api.getOptional(cm(ns, 'nope'))).toBeUndefined();
    await api.delete(cm(ns, 'nope'));
    await api.create(cm(ns), { metadata: { name: 'a' }, data: { k: 'v' } });
    expect(await failure(api.create(cm(ns), { metadata: { name: 'a' } }))).toEqual({
      status: 409,
      reason: 'AlreadyExists',
    });
    expect((await failure(api.create(cm(`absent-${ns}`), { metadata: { name: 'a' } }))).status).toBe(404);
    expect((await failure(api.patch(cm(ns, 'nope'), { data: { k: 'v' } }))).status).toBe(404);
    expect((await failure(api.get(`/apis/${API_VERSION}/namespaces/${ns}/nonsenses`))).status).toBe(404);
  });

  it('refuses a write with a stale resourceVersion and leaves an unchanged object unchanged', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    const first = await api.create<KubeObject>(cm(ns), { metadata: { name: 'a' }, data: { k: '1' } });
    const second = await api.patch<KubeObject>(cm(ns, 'a'), { data: { k: '2' } });
    expect(second.metadata.resourceVersion).not.toBe(first.metadata.resourceVersion);
    const stale = { metadata: { resourceVersion: first.metadata.resourceVersion } };
    expect(await failure(api.patch(cm(ns, 'a'), { ...stale, data: { k: '3' } }))).toEqual({
      status: 409,
      reason: 'Conflict',
    });
    expect(
      await failure(
        api.replace(cm(ns, 'a'), { metadata: { name: 'a', ...stale.metadata }, data: { k: '3' } }),
      ),
    ).toEqual({ status: 409, reason: 'Conflict' });
    const same = await api.patch<KubeObject>(cm(ns, 'a'), {
      metadata: { resourceVersion: second.metadata.resourceVersion },
      data: { k: '2' },
    });
    expect(same.metadata.resourceVersion).toBe(second.metadata.resourceVersion);
    const replaced = await api.replace<KubeObject & { data: unknown }>(cm(ns, 'a'), {
      metadata: { name: 'a' },
      data: { k: '4' },
    });
    expect(replaced.data).toEqual({ k: '4' });
  });

  it('keeps an object with finalizers until the last is removed, and takes no new one meanwhile', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    await api.create(cm(ns), { metadata: { name: 'a', finalizers: ['example.com/one', 'example.com/two'] } });
    await api.delete(cm(ns, 'a'));
    const deleting = await api.get<KubeObject>(cm(ns, 'a'));
    expect(deleting.metadata.deletionTimestamp).toEqual(expect.any(String));
    expect(
      (
        await failure(
          api.patch(cm(ns, 'a'), {
            metadata: { finalizers: ['example.com/one', 'example.com/two', 'x.io/new'] },
          }),
        )
      ).status,
    ).toBe(422);
    await api.patch(cm(ns, 'a'), {
      metadata: { finalizers: ['example.com/two'], resourceVersion: deleting.metadata.resourceVersion },
    });
    expect((await api.get<KubeObject>(cm(ns, 'a'))).metadata.finalizers).toEqual(['example.com/two']);
    await api.patch(cm(ns, 'a'), { metadata: { finalizers: null } });
    expect(await api.getOptional(cm(ns, 'a'))).toBeUndefined();
  });

  it('keeps status and spec apart on a custom resource, counting spec changes in generation', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    const path = `/apis/${API_VERSION}/namespaces/${ns}/guardrails`;
    const created = await api.create<Guardrail>(path, guardrail('g'));
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const ignored = await api.patch<Guardrail>(`${path}/g`, { status: { observedGeneration: 3 } });
    expect(ignored.status).toBeUndefined();
    expect(ignored.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    const status = await api.patch<Guardrail>(`${path}/g/status`, {
      spec: { rules: [{ name: 'other', kinds: ['alter'] }] },
      status: { observedGeneration: 1 },
    });
    expect(status.status).toEqual({ observedGeneration: 1 });
    expect(status.spec).toEqual(created.spec);
    expect(status.metadata.generation).toBe(1);
    const labelled = await api.patch<Guardrail>(`${path}/g`, { metadata: { labels: { a: 'b' } } });
    expect(labelled.metadata.generation).toBe(1);
    const changed = await api.patch<Guardrail>(`${path}/g`, {
      spec: { rules: [{ name: 'r', kinds: ['alter'] }] },
    });
    expect(changed.metadata.generation).toBe(2);
    expect(changed.status).toEqual({ observedGeneration: 1 });
    const { status: _s, ...withoutStatus } = changed;
    delete (withoutStatus.metadata as { resourceVersion?: string }).resourceVersion;
    expect((await failure(api.replace(`${path}/g`, withoutStatus))).status).toBe(422);
    expect((await failure(api.patch(`${path}/g`, { spec: {} }, 'strategic'))).status).toBe(415);
    await api.patch(`${path}/g`, { metadata: { finalizers: ['example.com/f'] } });
    await api.delete(`${path}/g`);
    const deleting = await api.get<Guardrail>(`${path}/g`);
    expect(deleting.metadata.generation).toBe(3);
  });

  it('counts a Deployment pod template change in generation', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    const path = `/apis/apps/v1/namespaces/${ns}/deployments`;
    const template = {
      metadata: { labels: { app: 'a' } },
      spec: { containers: [{ name: 'c', image: 'i' }] },
    };
    const created = await api.create<KubeObject>(path, {
      metadata: { name: 'web' },
      spec: { selector: { matchLabels: { app: 'a' } }, template },
    });
    expect(created.metadata.generation).toBe(1);
    const stamped = await api.patch<KubeObject>(`${path}/web`, {
      metadata: { resourceVersion: created.metadata.resourceVersion },
      spec: { template: { metadata: { annotations: { 'gatehouse.dev/x': 'h' } } } },
    });
    expect(stamped.metadata.generation).toBe(2);
  });

  it('folds a Secret stringData into data', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    const secret = await api.create<{ data?: Record<string, string>; stringData?: unknown }>(
      `/api/v1/namespaces/${ns}/secrets`,
      { metadata: { name: 's' }, data: { a: Buffer.from('x').toString('base64') }, stringData: { b: 'y' } },
    );
    expect(secret.stringData).toBeUndefined();
    expect(secret.data).toEqual({ a: 'eA==', b: 'eQ==' });
  });

  it('lists by label and field selectors, in name order', async () => {
    const { api } = subject();
    const ns = await namespace(api);
    const labels: Record<string, Record<string, string>> = {
      d: { app: 'a', tier: 'web' },
      c: { app: 'b' },
      b: { tier: 'web' },
      a: {},
    };
    for (const [name, l] of Object.entries(labels))
      await api.create(cm(ns), { metadata: { name, labels: l } });
    const names = async (query: { labelSelector?: string; fieldSelector?: string }) =>
      (await api.list<KubeObject>(cm(ns), query)).items
        .map((i) => i.metadata.name)
        .filter((n) => n.length === 1);
    expect(await names({})).toEqual(['a', 'b', 'c', 'd']);
    expect(await names({ labelSelector: 'app=a' })).toEqual(['d']);
    expect(await names({ labelSelector: 'app==a,tier=web' })).toEqual(['d']);
    expect(await names({ labelSelector: 'app!=a' })).toEqual(['a', 'b', 'c']);
    expect(await names({ labelSelector: 'app in (a,b)' })).toEqual(['c', 'd']);
    expect(await names({ labelSelector: 'app notin (a)' })).toEqual(['a', 'b', 'c']);
    expect(await names({ labelSelector: 'tier' })).toEqual(['b', 'd']);
    expect(await names({ labelSelector: '!app' })).toEqual(['a', 'b']);
    expect(await names({ fieldSelector: 'metadata.name=c' })).toEqual(['c']);
    expect(await names({ fieldSelector: 'metadata.name!=c', labelSelector: 'app' })).toEqual(['d']);
    expect((await failure(api.list(cm(ns), { labelSelector: 'app=(' }))).status).toBe(400);
  });
});

describe('FakeKubeApi watch and informer', () => {
  it('sends ADDED, MODIFIED and DELETED to the collection watchers, and a held informer lags until released', async () => {
    const api = new FakeKubeApi();
    await api.create('/api/v1/namespaces', { metadata: { name: 'w' } });
    await api.create('/api/v1/namespaces', { metadata: { name: 'other' } });
    const seen: string[] = [];
    api.watch('/api/v1/namespaces/w/configmaps', (type, o) => seen.push(`${type} ${o.metadata.name}`));
    const everywhere: string[] = [];
    api.watch('/api/v1/configmaps', (type, o) =>
      everywhere.push(`${type} ${o.metadata.namespace}/${o.metadata.name}`),
    );
    const informer = api.informer<KubeObject & { data?: Record<string, string> }>(
      '/api/v1/namespaces/w/configmaps',
    );
    await api.create('/api/v1/namespaces/w/configmaps', { metadata: { name: 'a' }, data: { k: '1' } });
    await api.create('/api/v1/namespaces/other/configmaps', { metadata: { name: 'b' } });
    await api.patch('/api/v1/namespaces/w/configmaps/a', { data: { k: '1' } });
    expect(informer.get('w', 'a')?.data).toEqual({ k: '1' });
    informer.hold();
    await api.patch('/api/v1/namespaces/w/configmaps/a', { data: { k: '2' } });
    expect(informer.get('w', 'a')?.data).toEqual({ k: '1' });
    informer.release();
    expect(informer.get('w', 'a')?.data).toEqual({ k: '2' });
    await api.delete('/api/v1/namespaces/w/configmaps/a');
    expect(informer.list()).toEqual([]);
    expect(seen).toEqual(['ADDED a', 'MODIFIED a', 'DELETED a']);
    expect(everywhere).toEqual(['ADDED w/a', 'ADDED other/b', 'MODIFIED w/a', 'DELETED w/a']);
  });

  it('fails the request a test names, once', async () => {
    const api = new FakeKubeApi();
    api.failNext((method, path) => method === 'GET' && path === '/version', 503, 'ServiceUnavailable');
    expect(await failure(api.get('/version'))).toEqual({ status: 503, reason: 'ServiceUnavailable' });
    expect(await api.get('/version')).toMatchObject({ major: '1' });
  });
});
