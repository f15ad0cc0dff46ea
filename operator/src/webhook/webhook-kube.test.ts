import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { KubeConfig, type V1Container, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { kubeRequest } from '../../../test/harness/kube/kube-request.ts';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import { KUBE_VERSIONS } from '../../../test/harness/kube/versions.ts';
import {
  createAccess,
  createNamespace,
  installDatabaseAccessDefinition,
  listAccesses,
} from '../../../test/support/kube-fixtures.ts';
import { ANNOTATION_INJECTED, ANNOTATION_SPEC_HASH, TOKEN_MOUNT } from '../sidecar-layout.ts';
import { parseServerVersion } from '../workload/server-version.ts';
import { handleAdmissionReview } from './admission-review.ts';
import {
  type CertificateSource,
  ensureServingCertificate,
  kubeCertificateClient,
  startCertificateSource,
} from './certificates.ts';
import { MUTATE_PODS_PATH, startWebhookServer, type WebhookServer } from './webhook-server.ts';

const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;
const IMAGE = 'registry.invalid/gatehouse:test';
const WEBHOOK_CONFIGURATION = 'gatehouse-test-injector';
const OPERATOR_NAMESPACE = 'gatehouse-system';
const SECRET = 'gatehouse-webhook-tls';

describe.each(KUBE_VERSIONS)('the pod webhook behind kube-apiserver %s', (version) => {
  let kube: KubeCluster;
  let server: WebhookServer;
  let certificates: CertificateSource;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    kube = await startKube({ version });
    await installDatabaseAccessDefinition(kube);
    await kubeRequest(kube, {
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE } },
    });
    const config = new KubeConfig();
    config.loadFromFile(kube.kubeconfigPath);
    const client = kubeCertificateClient(config);
    const versionInfo = await kubeRequest<{ major: string; minor: string }>(kube, { path: '/version' });
    const serverVersion = parseServerVersion(versionInfo.body);
    certificates = await startCertificateSource({
      mode: 'self-managed',
      client,
      namespace: OPERATOR_NAMESPACE,
      secretName: SECRET,
      service: 'gatehouse-webhook',
      webhookConfigurationName: WEBHOOK_CONFIGURATION,
      extraNames: ['127.0.0.1'],
      logger,
    });
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certificate: certificates.current,
      handler: (review) =>
        handleAdmissionReview(review, {
          listAccesses: (namespace) => listAccesses(kube, namespace),
          image: IMAGE,
          serverVersion,
          logger,
        }),
      logger,
    });
    const registered = await kubeRequest(kube, {
      method: 'POST',
      path: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      body: webhookConfiguration(`https://127.0.0.1:${server.address.port}${MUTATE_PODS_PATH}`),
    });
    expect(registered.status).toBe(201);
    // The configuration exists now, so this refresh writes the caBundle into it.
    await certificates.refresh();
  }, FIRST_RUN_TIMEOUT_MS);

  afterAll(async () => {
    certificates?.stop();
    await server?.close();
    await kube?.stop();
  });

  test('the CA is in the webhook configuration and the Secret is a kubernetes.io/tls Secret', async () => {
    const configuration = await kubeRequest<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(
      kube,
      {
        path: `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIGURATION}`,
      },
    );
    const secret = await kubeRequest<V1Secret>(kube, {
      path: `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${SECRET}`,
    });
    expect(secret.body.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.body.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(configuration.body.webhooks[0]?.clientConfig.caBundle).toBe(secret.body.data?.['ca.crt']);
  });

  test('a pod created through the API server gets its sidecar, in the form this release supports', async () => {
    const namespace = await createNamespace(kube);
    await createAccess(kube, ordersAccess(namespace));
    const created = await createPod(kube, namespace, ordersPod('orders-1'));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const pod = created.body;
    const native = version !== 'v1.28.15';
    const sidecars = native ? (pod.spec?.initContainers ?? []) : (pod.spec?.containers ?? []);
    const sidecar = sidecars[0] as V1Container;
    expect(sidecar.name).toBe('gatehouse-orders-db');
    expect(sidecar.image).toBe(IMAGE);
    if (native) expect(sidecar.restartPolicy).toBe('Always');
    else expect(pod.spec?.initContainers).toBeUndefined();
    expect(sidecar.volumeMounts?.map((mount) => mount.mountPath)).toContain(TOKEN_MOUNT);
    const app = pod.spec?.containers.find((container) => container.name === 'app');
    expect(app?.env).toEqual([
      { name: 'PGHOST', value: '127.0.0.1' },
      { name: 'PGPORT', value: '5432' },
      { name: 'DATABASE_URL', value: 'postgres://127.0.0.1:5432/orders' },
    ]);
    expect(app?.volumeMounts?.some((mount) => mount.mountPath === TOKEN_MOUNT)).toBeFalsy();
    expect(pod.metadata?.annotations?.[ANNOTATION_INJECTED]).toBe('orders-db');
    const token = pod.spec?.volumes?.find((volume) => volume.name === 'gatehouse-token');
    expect(token?.projected?.sources?.[0]?.serviceAccountToken).toEqual({
      audience: 'gatehouse.dev',
      expirationSeconds: 3600,
      path: 'token',
    });
  });

  test('a copy of an injected pod is admitted unchanged: one sidecar, same hash', async () => {
    const namespace = await createNamespace(kube);
    await createAccess(kube, ordersAccess(namespace));
    const original = (await createPod(kube, namespace, ordersPod('orders-1'))).body;
    const copy: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'orders-2',
        labels: original.metadata?.labels ?? {},
        annotations: original.metadata?.annotations ?? {},
      },
      spec: original.spec!,
    };
    const created = await createPod(kube, namespace, copy);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const all = [...(created.body.spec?.initContainers ?? []), ...(created.body.spec?.containers ?? [])];
    expect(all.filter((container) => container.name === 'gatehouse-orders-db')).toHaveLength(1);
    expect(created.body.metadata?.annotations?.[ANNOTATION_SPEC_HASH]).toBe(
      original.metadata?.annotations?.[ANNOTATION_SPEC_HASH],
    );
    expect(created.body.spec?.containers.find((c) => c.name === 'app')?.env).toHaveLength(3);
  });

  test('opted-out and unselected pods are admitted untouched; conflicts come back as warnings', async () => {
    const namespace = await createNamespace(kube);
    await createAccess(kube, ordersAccess(namespace));
    const optedOut = ordersPod('orders-out');
    optedOut.metadata!.labels!['gatehouse.dev/inject'] = 'disabled';
    const other = ordersPod('other');
    other.metadata!.labels = { app: 'other' };
    for (const pod of [optedOut, other]) {
      const created = await createPod(kube, namespace, pod);
      expect(created.status).toBe(201);
      expect(created.body.metadata?.annotations?.[ANNOTATION_INJECTED]).toBeUndefined();
      expect(created.body.spec?.containers.map((container) => container.name)).toEqual(['app']);
    }
    const conflicting = ordersPod('orders-conflict');
    conflicting.spec!.containers[0]!.env = [{ name: 'PGPORT', value: '6543' }];
    const created = await createPodWithWarnings(kube, namespace, conflicting);
    expect(created.status).toBe(201);
    expect(created.warnings.join('\n')).toMatch(/gatehouse: container app already sets PGPORT/);
    expect(created.body.spec?.containers.find((c) => c.name === 'app')?.env?.[0]).toEqual({
      name: 'PGPORT',
      value: '6543',
    });
  });

  test('a valid certificate is reused, not renewed', async () => {
    const config = new KubeConfig();
    config.loadFromFile(kube.kubeconfigPath);
    const again = await ensureServingCertificate({
      client: kubeCertificateClient(config),
      namespace: OPERATOR_NAMESPACE,
      secretName: SECRET,
      service: 'gatehouse-webhook',
      extraNames: ['127.0.0.1'],
    });
    expect(again.renewed).toBe(false);
    expect(again.cert).toBe(certificates.current().cert);
  });
});

function ordersAccess(namespace: string) {
  return {
    metadata: { name: 'orders-db', namespace },
    spec: {
      subjects: [{ kind: 'ServiceAccount' as const, name: 'orders' }],
      allow: ['read' as const],
      workloadSelector: { matchLabels: { app: 'orders' } },
      upstream: {
        protocol: 'postgres' as const,
        host: 'orders.db.internal',
        database: 'orders',
        credentialsSecretRef: { name: 'orders-db-credentials' },
      },
    },
  };
}

function ordersPod(name: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'orders' } },
    spec: {
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'registry.invalid/orders:1' }],
    },
  };
}

function webhookConfiguration(url: string) {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION },
    webhooks: [
      {
        name: 'pods.gatehouse.dev',
        clientConfig: { url },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        // Fail here, so a webhook the API server cannot reach shows as an error, not as a pod without sidecar.
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
        reinvocationPolicy: 'IfNeeded',
        namespaceSelector: { matchLabels: { 'gatehouse-test': 'yes' } },
      },
    ],
  };
}

function createPod(kube: KubeCluster, namespace: string, pod: V1Pod) {
  return kubeRequest<V1Pod>(kube, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/pods`,
    body: pod,
  });
}

/** kubeRequest does not return headers; admission warnings come in Warning headers. */
async function createPodWithWarnings(
  kube: KubeCluster,
  namespace: string,
  pod: V1Pod,
): Promise<{ status: number; body: V1Pod; warnings: string[] }> {
  const ca = await readFile(kube.caFile);
  const payload = JSON.stringify(pod);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      new URL(`/api/v1/namespaces/${namespace}/pods`, kube.server),
      {
        method: 'POST',
        ca,
        headers: {
          authorization: `Bearer ${kube.adminToken}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const header = response.headers['warning'];
          resolve({
            status: response.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as V1Pod,
            warnings: header === undefined ? [] : [header].flat(),
          });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}
