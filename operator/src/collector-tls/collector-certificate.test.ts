import { X509Certificate } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import { isConflict, type KubeClient, resourcePath } from '../runtime/kube-api.ts';
import { CertificateConflictError, type CertificateKubeClient } from '../webhook/certificates.ts';
import { type CollectorTls, startCollectorTls } from './collector-certificate.ts';

/**
 * The collector's certificate as the operator keeps it (mode self) or finds it (cert-manager), and
 * the CA the bundles carry: every change of that CA recompiles the bundles.
 */

const NS = 'gatehouse-system';
const SECRET = `/api/v1/namespaces/${NS}/secrets/gatehouse-collector-tls`;
const logger = pino({ level: 'silent' });
let running: CollectorTls | undefined;
afterEach(() => running?.stop());

async function until<T>(probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The webhook's certificate code over the fake API server (the operator gives it the real one). */
function certificateClient(api: KubeClient): CertificateKubeClient {
  const conflictsAsErrors = async <T>(call: Promise<T>): Promise<T> => {
    try {
      return await call;
    } catch (error) {
      if (isConflict(error)) throw new CertificateConflictError(String(error));
      throw error;
    }
  };
  const notUsed = () => Promise.reject(new Error('the collector has no webhook configuration'));
  return {
    readSecret: (namespace, name) =>
      api.getOptional<V1Secret>(resourcePath('v1', 'secrets', namespace, name)),
    createSecret: (namespace, secret) =>
      conflictsAsErrors(api.create<V1Secret>(resourcePath('v1', 'secrets', namespace), secret)),
    replaceSecret: (namespace, secret) =>
      conflictsAsErrors(
        api.replace<V1Secret>(resourcePath('v1', 'secrets', namespace, secret.metadata!.name!), secret),
      ),
    readMutatingWebhookConfiguration: notUsed,
    replaceMutatingWebhookConfiguration: notUsed,
  };
}

async function world(mode: 'self' | 'cert-manager') {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  let changes = 0;
  running = startCollectorTls({
    api,
    client: certificateClient(api),
    namespace: NS,
    secretName: 'gatehouse-collector-tls',
    service: 'gatehouse-collector',
    url: 'https://gatehouse-collector.gatehouse-system.svc:7450',
    mode,
    logger,
    onCaChanged: () => changes++,
    intervalMs: 20,
  });
  return { api, tls: running, changes: () => changes };
}

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('the collector certificate', () => {
  it("issues it for the Service's names from a CA of the collector's own, and hands that CA to the bundles", async () => {
    const { api, tls, changes } = await world('self');
    const ca = await until(() => tls.ca());
    expect(changes()).toBe(1);
    const secret = await api.get<{ type: string; data: Record<string, string> }>(SECRET);
    expect(secret.type).toBe('kubernetes.io/tls');
    const decode = (key: string) => Buffer.from(secret.data[key]!, 'base64').toString('utf8');
    expect(decode('ca.crt')).toBe(ca);
    const served = new X509Certificate(decode('tls.crt'));
    expect(served.verify(new X509Certificate(ca).publicKey)).toBe(true);
    expect(new X509Certificate(ca).subject).toContain(
      'gatehouse-collector-ca gatehouse-system/gatehouse-collector',
    );
    expect(served.subjectAltName?.split(', ').sort()).toEqual(
      [
        'gatehouse-collector',
        'gatehouse-collector.gatehouse-system',
        'gatehouse-collector.gatehouse-system.svc',
        'gatehouse-collector.gatehouse-system.svc.cluster.local',
        // A reader's `kubectl port-forward`, verified with the CA (docs/collector.md).
        'localhost',
      ]
        .map((name) => `DNS:${name}`)
        .concat('IP Address:127.0.0.1')
        .sort(),
    );
    // Unchanged on later looks: the same certificate, no recompilation.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await api.get<{ data: Record<string, string> }>(SECRET)).data['tls.crt']).toBe(
      secret.data['tls.crt'],
    );
    expect(changes()).toBe(1);
  });

  it("with cert-manager, only reads the Secret's ca.crt: none until it holds a certificate, then every change", async () => {
    const { api, tls, changes } = await world('cert-manager');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await tls.ca()).toBeUndefined();
    expect(await api.getOptional(SECRET)).toBeUndefined();
    expect(changes()).toBe(0);

    // cert-manager wrote a certificate, but an issuer that gives no CA: still none, nothing trusted blindly.
    await api.create(`/api/v1/namespaces/${NS}/secrets`, {
      metadata: { name: 'gatehouse-collector-tls' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64('cert'), 'tls.key': b64('key'), 'ca.crt': b64('') },
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await tls.ca()).toBeUndefined();

    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const current = await api.get<Record<string, unknown>>(SECRET);
    await api.replace(SECRET, { ...current, data: { 'tls.crt': b64('cert'), 'ca.crt': b64(pem) } });
    await until(() => (changes() === 1 ? true : undefined));
    expect(await tls.ca()).toBe(pem);
  });
});
