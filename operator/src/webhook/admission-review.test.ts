import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import type { DatabaseAccess } from '../workload/database-access.ts';
import type { JsonPatchOperation } from '../workload/json-patch.ts';
import { type AdmissionDeps, type AdmissionReview, handleAdmissionReview } from './admission-review.ts';

const accessFor = (name: string, app: string): DatabaseAccess => ({
  metadata: { name, namespace: 'shop' },
  spec: {
    subjects: [{ kind: 'ServiceAccount', name: 'app' }],
    allow: ['read'],
    workloadSelector: { matchLabels: { app } },
    upstream: { host: 'pg', database: 'orders' },
  },
});

const appPod: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'orders-', labels: { app: 'orders' } },
  spec: { containers: [{ name: 'app', image: 'app:1' }] },
};

function review(overrides: Partial<NonNullable<AdmissionReview['request']>> = {}): AdmissionReview {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: appPod,
      ...overrides,
    },
  };
}

function deps(listAccesses: AdmissionDeps['listAccesses']): AdmissionDeps {
  return {
    listAccesses,
    image: 'registry.invalid/gatehouse:1',
    serverVersion: { major: 1, minor: 30 },
    logger: pino({ level: 'silent' }),
  };
}

function decodePatch(review: AdmissionReview): JsonPatchOperation[] {
  return JSON.parse(Buffer.from(review.response!.patch!, 'base64').toString('utf8')) as JsonPatchOperation[];
}

describe('handleAdmissionReview', () => {
  test('a selected pod gets a base64 JSONPatch, with the uid echoed', async () => {
    const seen: string[] = [];
    const answer = await handleAdmissionReview(
      review(),
      deps((namespace) => {
        seen.push(namespace);
        return [accessFor('orders-db', 'orders')];
      }),
    );
    expect(seen).toEqual(['shop']);
    expect(answer).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true, patchType: 'JSONPatch' },
    });
    const paths = decodePatch(answer).map((operation) => `${operation.op} ${operation.path}`);
    expect(paths).toEqual([
      'add /metadata/annotations',
      'add /spec/initContainers',
      'replace /spec/containers',
      'add /spec/volumes',
      'add /spec/serviceAccountName',
    ]);
    // The namespace came from the request, not the object, and is not patched in.
    expect(paths.some((path) => path.includes('namespace'))).toBe(false);
  });

  test('several accesses: one is injected and the others come back as warnings', async () => {
    const answer = await handleAdmissionReview(
      review(),
      deps(() => [accessFor('second', 'orders'), accessFor('first', 'orders')]),
    );
    expect(answer.response?.warnings).toEqual([
      expect.stringMatching(/^gatehouse: DatabaseAccess second also selects/),
    ]);
    const annotations = decodePatch(answer)[0] as { value: Record<string, string> };
    expect(annotations.value['gatehouse.dev/injected']).toBe('first');
  });

  test('an opted-out pod is left alone, without warnings about overlapping accesses', async () => {
    const optedOut = {
      ...appPod,
      metadata: { labels: { app: 'orders', 'gatehouse.dev/inject': 'disabled' } },
    };
    const answer = await handleAdmissionReview(
      review({ object: optedOut }),
      deps(() => [accessFor('second', 'orders'), accessFor('first', 'orders')]),
    );
    expect(answer.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
  });

  test.each<[string, Partial<NonNullable<AdmissionReview['request']>>]>([
    ['an UPDATE', { operation: 'UPDATE' as const }],
    ['another kind', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }],
    ['a subresource', { subResource: 'ephemeralcontainers' }],
    ['a dry run of an unselected pod', { dryRun: true, object: { ...appPod, metadata: { labels: {} } } }],
  ])('%s is allowed untouched', async (_name, overrides) => {
    let listed = false;
    const answer = await handleAdmissionReview(
      review(overrides),
      deps(() => {
        listed = true;
        return [accessFor('orders-db', 'orders')];
      }),
    );
    expect(answer.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    if (overrides.dryRun !== true) expect(listed).toBe(false);
  });

  test('a failure admits the pod without a sidecar and logs it', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const answer = await handleAdmissionReview(review(), {
      ...deps(() => {
        throw new Error('informer not synced');
      }),
      logger,
    });
    expect(answer.response).toEqual({ uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'injection failed: pod admitted without a sidecar' });
  });
});
