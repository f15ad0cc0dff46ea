import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import { Informer, type InformerEvent } from './informer.ts';
import { KubeApi, type KubeObject } from './kube-api.ts';

let cluster: KubeCluster;
let admin: KubeApi;

const NAMESPACE = 'informer';
const CONFIGMAPS = `/api/v1/namespaces/${NAMESPACE}/configmaps`;
const BINDINGS = `/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/rolebindings`;
const BINDING = {
  metadata: { name: 'watcher' },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'watcher' },
  subjects: [{ kind: 'ServiceAccount', name: 'watcher', namespace: NAMESPACE }],
};

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** An API client for a ServiceAccount whose only right is to list and watch ConfigMaps, while its RoleBinding exists. */
async function watcherApi(): Promise<KubeApi> {
  await admin.create('/api/v1/namespaces', { metadata: { name: NAMESPACE } });
  await admin.create(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { metadata: { name: 'watcher' } });
  await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NAMESPACE}/roles`, {
    metadata: { name: 'watcher' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }],
  });
  await admin.create(BINDINGS, BINDING);
  const { status } = await admin.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/watcher/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server: cluster.server, caFile: cluster.caFile }],
    users: [{ name: 'watcher', token: status.token }],
    contexts: [{ name: 'watcher', cluster: 'test', user: 'watcher' }],
    currentContext: 'watcher',
  });
  return new KubeApi(config);
}

beforeAll(async () => {
  cluster = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfigPath);
  admin = new KubeApi(config);
});

afterAll(async () => {
  await cluster?.stop();
});

describe('Informer against a real API server', () => {
  it('follows changes, and after a failure that ListWatch gives up on, restarts and lists again', async () => {
    const api = await watcherApi();
    await admin.create(CONFIGMAPS, { metadata: { name: 'a' } });
    const warnings: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _encoding, done) {
          warnings.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
          done();
        },
      }),
    );
    const informer = new Informer<KubeObject>(api, CONFIGMAPS, logger);
    const events: [InformerEvent, string][] = [];
    informer.on((event, object) => events.push([event, object.metadata.name]));
    await informer.start();
    expect(informer.synced).toBe(true);
    expect(informer.list().map((c) => c.metadata.name)).toEqual(['a']);
    await admin.create(CONFIGMAPS, { metadata: { name: 'b' } });
    await until('b seen', () => informer.get(NAMESPACE, 'b'), 10_000);

    // Forbidden from now on: the open watch lasts until client-node's 30 s inactivity timeout, then
    // every reconnection fails with 403, which ListWatch reports and does not retry.
    await admin.delete(`${BINDINGS}/watcher`);
    await admin.delete(`${CONFIGMAPS}/a`);
    await until('the failure noticed', () => warnings.includes('list/watch failed; restarting'), 45_000);
    await admin.create(CONFIGMAPS, { metadata: { name: 'c' } });
    await admin.create(BINDINGS, BINDING);
    await until('c seen after the restart', () => informer.get(NAMESPACE, 'c'), 20_000);
    expect(informer.get(NAMESPACE, 'a')).toBeUndefined();
    expect(events).toEqual(
      expect.arrayContaining([
        ['add', 'a'],
        ['add', 'b'],
        ['delete', 'a'],
        ['add', 'c'],
      ]),
    );
    await informer.stop();
  }, 90_000);
});
