import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../crds/common.ts';
import {
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_MOUNT,
  bundleConfigMapName,
  VOLUME_BUNDLE,
} from '../../operator/src/sidecar-layout.ts';
import { createCertificateAuthority, pemBundle } from '../../sidecar/src/tls/certificates.ts';
import { freePort } from '../harness/free-port.ts';
import { startChartCollector } from './support/chart-collector.ts';
import type { CollectorProcess } from './support/collector-process.ts';
import {
  COLLECTOR_SERVICE,
  conditionOf,
  gatehousePath,
  OPERATOR_NAMESPACE,
  type OperatorCluster,
  startOperatorCluster,
} from './support/operator-cluster.ts';
import {
  accessSpec,
  createNamespace,
  createPolicies,
  createSelectedPod,
  seedDatabase,
} from './support/operator-fixtures.ts';
import { materializeVolumes, runContainer, type SidecarProcess } from './support/play-kubelet.ts';

/**
 * The chart's collector, as the operator runs it: the operator issues the collector's certificate
 * into its Secret, every bundle ships to `https://` and carries the CA that verifies it, and a
 * sidecar played from a real injected pod ships its records to a real collector (TLS, TokenReview of
 * the pod's token) that serves the certificate from that Secret. A sidecar whose CA is not the
 * collector's ships nothing, and loses nothing: the records arrive once its bundle is right again.
 */

const pgInfo = inject('postgres');
const DATABASE = 'operator_collector_tls';
const NAMESPACE = 'shop';
const CLUSTER = 'e2e-tls';
const READER = { name: 'auditor', password: 'auditor-secret' };

let env: OperatorCluster;
let port: number;
let collector: CollectorProcess | undefined;
let collectorCa: string;
const sidecars: SidecarProcess[] = [];

/** GET on the collector's API over TLS, verified with the CA from the operator's Secret. */
function api<T>(path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${port}${path}`,
      {
        ca: collectorCa,
        headers: {
          authorization: `Basic ${Buffer.from(`${READER.name}:${READER.password}`).toString('base64')}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`${path}: ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text) as T);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

type Source = { cluster: string; namespace: string; pod: string; status: string; records: number };
const sourceOf = async (pod: string) =>
  (await api<{ items: Source[] }>('/v1/sources')).items.find((s) => s.pod === pod);

beforeAll(async () => {
  port = await freePort();
  [env] = await Promise.all([
    startOperatorCluster({ collector: { url: `https://127.0.0.1:${port}`, cluster: CLUSTER } }),
    seedDatabase(pgInfo, DATABASE),
  ]);
}, 240_000);

afterAll(async () => {
  for (const sidecar of sidecars) await sidecar.stop();
  await collector?.stop();
  await env?.stop();
});

async function runSelectedPod(pod: string, beforeStart?: (bundleDir: string) => void) {
  const injected = await createSelectedPod(env.api, NAMESPACE, pod, 'orders');
  const kubelet = await materializeVolumes(env.api, injected.pod, injected.container);
  beforeStart?.(kubelet.mounts.get(BUNDLE_MOUNT)!);
  const sidecar = await runContainer(injected.container, kubelet, [
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
  ]);
  sidecars.push(sidecar);
  const client = new pg.Client({ host: '127.0.0.1', port: sidecar.port, database: DATABASE, user: 'app' });
  await client.connect();
  await client.query('SELECT count(*) FROM customers');
  await client.end();
  return { sidecar, kubelet };
}

describe('shipping to the chart collector over TLS', () => {
  it("issues the collector's certificate, and a sidecar ships to it verified with the CA from its bundle", async () => {
    // The collector as the chart runs it: TLS from the Secret's files, pods authenticated by TokenReview.
    const chart = await startChartCollector(env, port, {
      storeDatabase: 'operator_collector_tls_store',
      readers: [READER],
    });
    collector = chart.process;
    collectorCa = chart.ca;
    const served = new X509Certificate(chart.certificate);
    // The Service's names, the host of the URL the bundles name, and those of a port-forward.
    for (const name of [
      COLLECTOR_SERVICE,
      `${COLLECTOR_SERVICE}.${OPERATOR_NAMESPACE}.svc`,
      `${COLLECTOR_SERVICE}.${OPERATOR_NAMESPACE}.svc.cluster.local`,
      'localhost',
    ])
      expect(served.checkHost(name)).toBe(name);
    expect(served.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(served.verify(new X509Certificate(collectorCa).publicKey)).toBe(true);

    await createNamespace(env.api, NAMESPACE);
    await env.api.create(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, {
      metadata: { name: 'orders-app' },
    });
    await createPolicies(env.api, NAMESPACE, pgInfo);
    await env.api.create(gatehousePath('databaseaccesses', NAMESPACE), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(pgInfo, DATABASE),
    });
    const access = await env.readyAccess(
      NAMESPACE,
      'orders',
      (a) => conditionOf(a, 'AuditShipping')?.status === 'True',
    );
    expect(conditionOf(access, 'AuditShipping')?.reason).toBe('CollectorTrusted');
    const bundle = await env.api.get<{ data: Record<string, string> }>(
      `/api/v1/namespaces/${NAMESPACE}/configmaps/${bundleConfigMapName('orders')}`,
    );
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe(collectorCa);
    const proxy = parseAllDocuments(bundle.data[BUNDLE_CONFIG_KEY]!)[0]!.toJS() as {
      audit: { ship: Record<string, string> };
    };
    expect(proxy.audit.ship).toMatchObject({
      url: `https://127.0.0.1:${port}`,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      cluster: CLUSTER,
      namespace: NAMESPACE,
    });

    await runSelectedPod('orders-0');
    const statement = await env.eventually('the statement of orders-0 in the collector', async () => {
      const page = await api<{ items: { statement: string; pod?: string }[] }>('/v1/statements?since=10m');
      return page.items.find((s) => s.statement.includes('customers'));
    });
    expect(statement.statement).toContain('FROM customers');
    expect(await sourceOf('orders-0')).toMatchObject({
      cluster: CLUSTER,
      namespace: NAMESPACE,
      status: 'ok',
    });
  }, 120_000);

  it('ships nothing from a sidecar whose bundle CA is not the collector CA, and everything once it is', async () => {
    const stranger = await createCertificateAuthority('not the collector', new Date(), 30);
    const { sidecar, kubelet } = await runSelectedPod('orders-1', (bundleDir) =>
      // What a tampered bundle, or one from before a switch of the collector's CA, would hold.
      writeFileSync(join(bundleDir, BUNDLE_COLLECTOR_CA_KEY), pemBundle([stranger.certificate])),
    );
    const refusal = await env.eventually('the shipper refusing the certificate', async () =>
      sidecar.lines.find((line) => line.includes('cannot ship audit records')),
    );
    expect(refusal).toMatch(/unable to verify the first certificate/);
    // The TLS handshake failed before any request: the collector holds nothing from that pod.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await sourceOf('orders-1')).toBeUndefined();

    // The kubelet brings the bundle's real CA back: the same sidecar ships what waited in its file.
    await kubelet.resyncConfigMap(VOLUME_BUNDLE);
    const source = await env.eventually(
      'the records of orders-1 after the CA was put right',
      async () => {
        const found = await sourceOf('orders-1');
        return found && found.records >= 3 ? found : undefined;
      },
      40_000,
    );
    expect(source).toMatchObject({ status: 'ok', namespace: NAMESPACE });
  }, 90_000);
});
