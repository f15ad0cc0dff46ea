import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { parse } from 'yaml';
import { kubeRequest } from './kube-request.ts';
import { type KubeCluster, startKube } from './start-kube.ts';
import { KUBE_VERSIONS } from './versions.ts';

// The first run on a machine builds etcd and kube-apiserver from source; later runs start in seconds.
const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;
const AUDIENCE = 'gatehouse.dev';

type ObjectMeta = { name: string; namespace?: string; uid: string; generation?: number };
type Condition = { type: string; status: string };
type Pod = { metadata: ObjectMeta; spec: { nodeName?: string }; status: { phase: string } };
type TokenRequestStatus = { status: { token: string; expirationTimestamp: string } };
type TokenReview = {
  status: {
    authenticated?: boolean;
    audiences?: string[];
    error?: string;
    user?: { username: string; groups: string[]; extra?: Record<string, string[]> };
  };
};
type Widget = { metadata: ObjectMeta; spec: Record<string, unknown>; status?: { ready?: boolean } };
type Status = { message: string; reason: string };

describe.each(KUBE_VERSIONS)('kube-apiserver %s with etcd', (version) => {
  let kube: KubeCluster;

  beforeAll(async () => {
    kube = await startKube({ version });
  }, FIRST_RUN_TIMEOUT_MS);

  afterAll(() => kube?.stop());

  test('answers the kubeconfig admin with its release, and RBAC keeps anonymous users out', async () => {
    const config = parse(await readFile(kube.kubeconfigPath, 'utf8'));
    const cluster = config.clusters[0].cluster;
    const fromKubeconfig = {
      server: cluster.server,
      caFile: cluster['certificate-authority'],
      adminToken: config.users[0].user.token,
    };
    expect(fromKubeconfig.server).toBe(kube.server);

    const versionInfo = await kubeRequest<{ gitVersion: string }>(fromKubeconfig, { path: '/version' });
    expect(versionInfo.body.gitVersion).toBe(version);
    const namespaces = await kubeRequest(fromKubeconfig, { path: '/api/v1/namespaces' });
    expect(namespaces.status).toBe(200);

    const anonymous = await kubeRequest<Status>(kube, { path: '/api/v1/namespaces', as: 'anonymous' });
    expect(anonymous.status).toBe(403);
    expect(anonymous.body.message).toContain('system:anonymous');
    const wrongToken = await kubeRequest(kube, { path: '/api/v1/namespaces', as: { token: 'not-a-token' } });
    expect(wrongToken.status).toBe(401);
  });

  test('a Pod created directly stays Pending, and a token bound to it is accepted only for its audience and while it exists', async () => {
    const namespace = await createNamespace(kube);
    const { pod, token } = await podBoundToken(kube, namespace);
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.status.phase).toBe('Pending');

    const claims = decodeJwt(token);
    expect(claims.iss).toBe(kube.serviceAccountIssuer);
    expect(claims.aud).toEqual([AUDIENCE]);
    expect(claims.sub).toBe(`system:serviceaccount:${namespace}:app`);
    expect(claims['kubernetes.io']).toMatchObject({
      namespace,
      pod: { name: 'app', uid: pod.metadata.uid },
      serviceaccount: { name: 'app' },
    });

    const accepted = await reviewToken(kube, token, [AUDIENCE]);
    expect(accepted.status.authenticated).toBe(true);
    expect(accepted.status.audiences).toEqual([AUDIENCE]);
    expect(accepted.status.user?.username).toBe(`system:serviceaccount:${namespace}:app`);
    expect(accepted.status.user?.groups).toContain(`system:serviceaccounts:${namespace}`);
    expect(accepted.status.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['app']);

    const otherAudience = await reviewToken(kube, token, ['someone-else']);
    expect(otherAudience.status.authenticated).toBeFalsy();

    // Without a kubelet an unscheduled Pod is deleted at once, and with it goes the token's validity.
    const deleted = await kubeRequest(kube, {
      method: 'DELETE',
      path: `/api/v1/namespaces/${namespace}/pods/app`,
    });
    expect(deleted.status).toBe(200);
    const gone = await kubeRequest(kube, { path: `/api/v1/namespaces/${namespace}/pods/app` });
    expect(gone.status).toBe(404);
    // The API server caches a successful token authentication for 10 s, so the refusal comes after that.
    await vi.waitFor(
      async () => {
        const afterDelete = await reviewToken(kube, token, [AUDIENCE]);
        expect(afterDelete.status.authenticated).toBeFalsy();
      },
      { timeout: 20_000, interval: 500 },
    );
  });

  test('anonymous clients read the issuer discovery document and keys, and the keys verify a token', async () => {
    const discovery = await kubeRequest<{ issuer: string; jwks_uri: string }>(kube, {
      path: '/.well-known/openid-configuration',
      as: 'anonymous',
    });
    expect(discovery.status).toBe(200);
    expect(discovery.body.issuer).toBe(kube.serviceAccountIssuer);
    // Without --service-account-jwks-uri the server names itself, which is what a verifier here can reach.
    expect(discovery.body.jwks_uri).toBe(`${kube.server}/openid/v1/jwks`);

    const jwks = await kubeRequest<JSONWebKeySet>(kube, { path: '/openid/v1/jwks', as: 'anonymous' });
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });

    const { token } = await podBoundToken(kube, await createNamespace(kube));
    const keys = createLocalJWKSet(jwks.body);
    const verified = await jwtVerify(token, keys, { issuer: kube.serviceAccountIssuer, audience: AUDIENCE });
    expect(verified.protectedHeader.alg).toBe('RS256');
    await expect(
      jwtVerify(token, keys, { issuer: kube.serviceAccountIssuer, audience: 'someone-else' }),
    ).rejects.toThrow(/aud/);
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${payload}.${signature!.slice(0, -4)}AAAA`;
    await expect(jwtVerify(tampered, keys)).rejects.toThrow(/signature/);
  });

  test('a CustomResourceDefinition is served: objects are pruned, validated, and have a status subresource', async () => {
    const crd = await kubeRequest(kube, {
      method: 'POST',
      path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      body: widgetDefinition(),
    });
    expect(crd.status).toBe(201);
    await vi.waitFor(
      async () => {
        const current = await kubeRequest<{ status?: { conditions?: Condition[] } }>(kube, {
          path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.gatehouse.dev',
        });
        const established = current.body.status?.conditions?.find(
          (condition) => condition.type === 'Established',
        );
        expect(established?.status).toBe('True');
      },
      { timeout: 30_000, interval: 200 },
    );

    const namespace = await createNamespace(kube);
    const widgets = `/apis/test.gatehouse.dev/v1/namespaces/${namespace}/widgets`;
    const widget = (name: string, spec: Record<string, unknown>) => ({
      apiVersion: 'test.gatehouse.dev/v1',
      kind: 'Widget',
      metadata: { name },
      spec,
    });
    // The resource path may lag Established by a moment while the server installs its handler.
    const created = await vi.waitFor(
      async () => {
        const response = await kubeRequest<Widget>(kube, {
          method: 'POST',
          path: widgets,
          body: widget('small', { size: 3, colour: 'blue' }),
        });
        expect(response.status).toBe(201);
        return response.body;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(created.spec).toEqual({ size: 3 });
    expect(created.metadata.generation).toBe(1);

    const invalid = await kubeRequest<Status>(kube, {
      method: 'POST',
      path: widgets,
      body: widget('none', { size: 0 }),
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.message).toContain('spec.size');

    const status = await kubeRequest<Widget>(kube, {
      method: 'PATCH',
      path: `${widgets}/small/status`,
      contentType: 'application/merge-patch+json',
      body: { status: { ready: true } },
    });
    expect(status.status).toBe(200);
    expect(status.body.status).toEqual({ ready: true });
    expect(status.body.metadata.generation).toBe(1);

    const listed = await kubeRequest<{ items: Widget[] }>(kube, { path: widgets });
    expect(listed.body.items.map((item) => item.metadata.name)).toEqual(['small']);
  });
});

async function createNamespace(kube: KubeCluster): Promise<string> {
  const name = `test-${randomBytes(4).toString('hex')}`;
  const response = await kubeRequest(kube, {
    method: 'POST',
    path: '/api/v1/namespaces',
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
  });
  expect(response.status).toBe(201);
  return name;
}

/** A ServiceAccount and a Pod named app that runs as it, and a token for AUDIENCE bound to that Pod. */
async function podBoundToken(kube: KubeCluster, namespace: string): Promise<{ pod: Pod; token: string }> {
  const account = await kubeRequest(kube, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts`,
    body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app' } },
  });
  expect(account.status).toBe(201);
  const pod = await kubeRequest<Pod>(kube, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/pods`,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app' },
      spec: {
        serviceAccountName: 'app',
        automountServiceAccountToken: false,
        containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
      },
    },
  });
  expect(pod.status).toBe(201);
  const tokenRequest = await kubeRequest<TokenRequestStatus>(kube, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/app/token`,
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [AUDIENCE],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'app', uid: pod.body.metadata.uid },
      },
    },
  });
  expect(tokenRequest.status).toBe(201);
  return { pod: pod.body, token: tokenRequest.body.status.token };
}

async function reviewToken(kube: KubeCluster, token: string, audiences: string[]): Promise<TokenReview> {
  const review = await kubeRequest<TokenReview>(kube, {
    method: 'POST',
    path: '/apis/authentication.k8s.io/v1/tokenreviews',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
  });
  expect(review.status).toBe(201);
  return review.body;
}

function widgetDefinition() {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.test.gatehouse.dev' },
    spec: {
      group: 'test.gatehouse.dev',
      scope: 'Namespaced',
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          subresources: { status: {} },
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: {
                  type: 'object',
                  required: ['size'],
                  properties: { size: { type: 'integer', minimum: 1 } },
                },
                status: { type: 'object', properties: { ready: { type: 'boolean' } } },
              },
            },
          },
        },
      ],
    },
  };
}
