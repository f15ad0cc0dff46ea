import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Caller,
  collectorAuthenticator,
  kubeTokenReviewer,
  mayShip,
  Unauthenticated,
} from '../../operator/src/collector/collector-auth.ts';
import { consoleApp } from '../../operator/src/collector/console/console-app.ts';
import { ConsoleSessions } from '../../operator/src/collector/console/console-sessions.ts';
import { CollectorStore } from '../../operator/src/collector/store.ts';
import { openDriver } from '../../operator/src/collector/store-driver.ts';
import { KubeApi } from '../../operator/src/runtime/kube-api.ts';
import { type KubeCluster, startKube } from '../harness/kube/start-kube.ts';

/**
 * In a cluster a sidecar ships with its pod's projected token, which the collector checks with a
 * real TokenReview: the token is good only for its own namespace and pod, only with the collector's
 * audience, and never as a reader unless listed.
 */

const NAMESPACE = 'shop';
let kube: KubeCluster;
let api: KubeApi;

async function podToken(pod: string, audience: string): Promise<string> {
  const created = await api.create<{ metadata: { uid: string } }>(`/api/v1/namespaces/${NAMESPACE}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod },
    spec: { serviceAccountName: 'orders', containers: [{ name: 'app', image: 'example.invalid/app' }] },
  });
  const answer = await api.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/orders/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [audience],
        expirationSeconds: 3600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod, uid: created.metadata.uid },
      },
    },
  );
  return answer.status.token;
}

beforeAll(async () => {
  kube = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(kube.kubeconfigPath);
  api = new KubeApi(config);
  await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NAMESPACE },
  });
  await api.create(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'orders' },
  });
});
afterAll(() => kube?.stop());

describe('collector authentication by TokenReview', () => {
  const authenticate = () =>
    collectorAuthenticator({
      shipperTokens: [],
      readers: [],
      tokenReviewer: kubeTokenReviewer(api, ['gatehouse.dev']),
    });
  const source = (pod: string, namespace = NAMESPACE) => ({
    cluster: 'c',
    namespace,
    pod,
    database: 'shop',
    logKeyId: '0123456789abcdef',
  });

  it("lets a pod ship its own records, and no other pod's or namespace's", async () => {
    const caller: Caller = await authenticate()(`Bearer ${await podToken('orders-0', 'gatehouse.dev')}`);
    expect(caller).toMatchObject({
      subject: 'system:serviceaccount:shop:orders',
      shipper: true,
      reader: false,
      boundTo: { namespace: NAMESPACE, pod: 'orders-0' },
    });
    expect(mayShip(caller, source('orders-0'))).toBeUndefined();
    expect(mayShip(caller, source('orders-1'))).toMatch(/belongs to pod orders-0/);
    expect(mayShip(caller, source('orders-0', 'billing'))).toMatch(/namespace shop only/);
  });

  it('refuses a token made for another audience, and one that is not a token', async () => {
    const other = await podToken('orders-2', 'https://kubernetes.default.svc');
    for (const header of [`Bearer ${other}`, 'Bearer not-a-token', undefined, 'Basic Zm9vOmJhcg==']) {
      await expect(authenticate()(header)).rejects.toBeInstanceOf(Unauthenticated);
    }
  });
});

describe('console sign-in with a Kubernetes token', () => {
  it('signs in a subject the console names, by TokenReview, and refuses the rest', async () => {
    const store = await CollectorStore.open(await openDriver('pglite:memory'));
    try {
      const app = consoleApp({
        store,
        logger: pino({ level: 'silent' }),
        approvals: undefined,
        sessions: new ConsoleSessions(store.db, { ttlMs: 60_000 }),
        access: { viewers: [{ subject: 'system:serviceaccount:shop:orders' }], approvers: [], readers: [] },
        localUsers: undefined,
        tokenReviewer: kubeTokenReviewer(api, ['gatehouse.dev']),
      });
      const signIn = (token: string) =>
        app.request('/sign-in', {
          method: 'POST',
          body: new URLSearchParams({ method: 'token', token, next: '/console/integrity' }),
        });
      const good = await signIn(await podToken('orders-3', 'gatehouse.dev'));
      expect(good.status).toBe(303);
      expect(good.headers.get('location')).toBe('/console/integrity');
      const cookie = good.headers.get('set-cookie')!.split(';')[0]!;
      const page = await app.request('/integrity', { headers: { cookie } });
      expect(await page.text()).toContain('system:serviceaccount:shop:orders (viewer)');

      await api.create(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'stranger' },
      });
      const stranger = await api.create<{ status: { token: string } }>(
        `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/stranger/token`,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { audiences: ['gatehouse.dev'] },
        },
      );
      const refused = await signIn(stranger.status.token);
      expect(refused.status).toBe(401);
      expect(await refused.text()).toContain('system:serviceaccount:shop:stranger may not read the audit');
      const forged = await signIn('not-a-token');
      expect(forged.status).toBe(401);
      expect(await forged.text()).toContain('did not pass TokenReview');
    } finally {
      await store.close();
    }
  });
});
