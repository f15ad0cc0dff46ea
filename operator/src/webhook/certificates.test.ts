import 'reflect-metadata';
import { KubeConfig, type V1Secret } from '@kubernetes/client-node';
import * as x509 from '@peculiar/x509';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { kubeRequest } from '../../../test/harness/kube/kube-request.ts';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import { createNamespace } from '../../../test/support/kube-fixtures.ts';
import {
  type CertificateKubeClient,
  ensureServingCertificate,
  kubeCertificateClient,
  patchCaBundle,
  startCertificateSource,
} from './certificates.ts';

const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;
const DAY_MS = 86_400_000;

let kube: KubeCluster;
let client: CertificateKubeClient;

beforeAll(async () => {
  kube = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(kube.kubeconfigPath);
  client = kubeCertificateClient(config);
}, FIRST_RUN_TIMEOUT_MS);

afterAll(() => kube?.stop());

function parse(pem: string): x509.X509Certificate[] {
  return x509.PemConverter.decode(pem).map((der) => new x509.X509Certificate(der));
}

async function readSecret(namespace: string, name: string): Promise<V1Secret> {
  return (await kubeRequest<V1Secret>(kube, { path: `/api/v1/namespaces/${namespace}/secrets/${name}` }))
    .body;
}

describe('ensureServingCertificate', () => {
  test('issues an ECDSA P-256 certificate for the service, chained to a CA, and reuses it while valid', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const options = { client, namespace, secretName: 'tls', service: 'gatehouse-webhook' };
    const first = await ensureServingCertificate(options);
    expect(first.renewed).toBe(true);
    const [serving] = parse(first.cert);
    const [ca] = parse(first.caBundle);
    const names = serving!
      .getExtension(x509.SubjectAlternativeNameExtension)!
      .names.items.map((n) => n.value);
    expect(names).toEqual([
      `gatehouse-webhook.${namespace}.svc`,
      `gatehouse-webhook.${namespace}.svc.cluster.local`,
    ]);
    expect(serving!.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(await serving!.verify({ publicKey: ca!.publicKey, signatureOnly: true })).toBe(true);
    expect(serving!.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(ca!.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(true);

    const secret = await readSecret(namespace, 'tls');
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Buffer.from(secret.data!['tls.crt']!, 'base64').toString()).toBe(first.cert);

    const again = await ensureServingCertificate(options);
    expect(again).toMatchObject({
      renewed: false,
      cert: first.cert,
      key: first.key,
      caBundle: first.caBundle,
    });
  });

  test('renews the serving certificate with less than a third of its validity left, under the same CA', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const start = Date.now();
    const options = { client, namespace, secretName: 'tls', service: 'svc' };
    const first = await ensureServingCertificate({ ...options, now: () => new Date(start) });
    const early = await ensureServingCertificate({ ...options, now: () => new Date(start + 200 * DAY_MS) });
    expect(early.renewed).toBe(false);
    const late = await ensureServingCertificate({ ...options, now: () => new Date(start + 250 * DAY_MS) });
    expect(late.renewed).toBe(true);
    expect(late.cert).not.toBe(first.cert);
    expect(late.caBundle).toBe(first.caBundle);
  });

  test('renews the CA before it expires and keeps trusting the old one until then', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const start = Date.now();
    const options = { client, namespace, secretName: 'tls', service: 'svc' };
    const first = await ensureServingCertificate({ ...options, now: () => new Date(start) });
    const later = await ensureServingCertificate({
      ...options,
      now: () => new Date(start + 4 * 365 * DAY_MS),
    });
    const bundle = parse(later.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]!.toString('pem')).toBe(parse(first.caBundle)[0]!.toString('pem'));
    const [serving] = parse(later.cert);
    expect(await serving!.verify({ publicKey: bundle[0]!.publicKey, signatureOnly: true })).toBe(true);
  });

  test('a certificate that does not name the service is replaced', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const base = { client, namespace, secretName: 'tls', service: 'svc' };
    const first = await ensureServingCertificate(base);
    const withIp = await ensureServingCertificate({ ...base, extraNames: ['127.0.0.1'] });
    expect(withIp.renewed).toBe(true);
    expect(withIp.caBundle).toBe(first.caBundle);
  });

  test('two replicas starting at once end up with one certificate', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const options = { client, namespace, secretName: 'tls', service: 'svc' };
    const [a, b] = await Promise.all([ensureServingCertificate(options), ensureServingCertificate(options)]);
    const stored = Buffer.from((await readSecret(namespace, 'tls')).data!['tls.crt']!, 'base64').toString();
    expect([a.cert, b.cert]).toContain(stored);
    expect((await ensureServingCertificate(options)).cert).toBe(stored);
  });
});

describe('patchCaBundle', () => {
  test('writes the bundle into every webhook of the configuration, and says when there is none', async () => {
    const name = 'gatehouse-certs-test';
    const webhook = (hook: string) => ({
      name: hook,
      clientConfig: { url: 'https://127.0.0.1:1/mutate-pods' },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
      failurePolicy: 'Ignore',
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      // Matches no namespace: this test must not intercept anything.
      namespaceSelector: { matchLabels: { 'never-set': 'x' } },
    });
    expect(await patchCaBundle(client, name, 'PEM')).toBe(false);
    const created = await kubeRequest(kube, {
      method: 'POST',
      path: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      body: {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name },
        webhooks: [webhook('a.gatehouse.dev'), webhook('b.gatehouse.dev')],
      },
    });
    expect(created.status).toBe(201);
    const issued = await ensureServingCertificate({
      client,
      namespace: await createNamespace(kube, 'certs'),
      secretName: 'tls',
      service: 'svc',
    });
    expect(await patchCaBundle(client, name, issued.caBundle)).toBe(true);
    const read = await kubeRequest<{ webhooks: Array<{ clientConfig: { caBundle: string } }> }>(kube, {
      path: `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`,
    });
    expect(read.body.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle, 'base64').toString())).toEqual([
      issued.caBundle,
      issued.caBundle,
    ]);
  });
});

describe('startCertificateSource in cert-manager mode', () => {
  test('serves what is in the Secret and picks up a new one', async () => {
    const namespace = await createNamespace(kube, 'certs');
    const issue = (service: string) =>
      ensureServingCertificate({ client, namespace: 'default', secretName: `scratch-${namespace}`, service });
    const write = async (method: 'POST' | 'PUT', cert: string, key: string) => {
      const response = await kubeRequest(kube, {
        method,
        path: `/api/v1/namespaces/${namespace}/secrets${method === 'PUT' ? '/cm-tls' : ''}`,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'kubernetes.io/tls',
          metadata: { name: 'cm-tls' },
          data: {
            'tls.crt': Buffer.from(cert).toString('base64'),
            'tls.key': Buffer.from(key).toString('base64'),
          },
        },
      });
      expect([200, 201]).toContain(response.status);
    };
    const logger = pino({ level: 'silent' });
    await expect(
      startCertificateSource({ mode: 'cert-manager', client, namespace, secretName: 'cm-tls', logger }),
    ).rejects.toThrow(/cert-manager Certificate ready/);
    const one = await issue('one');
    await write('POST', one.cert, one.key);
    const source = await startCertificateSource({
      mode: 'cert-manager',
      client,
      namespace,
      secretName: 'cm-tls',
      logger,
    });
    expect(source.current()).toEqual({ cert: one.cert, key: one.key });
    const two = await issue('two');
    await write('PUT', two.cert, two.key);
    await source.refresh();
    expect(source.current()).toEqual({ cert: two.cert, key: two.key });
    source.stop();
  });
});
