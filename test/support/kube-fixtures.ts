import { randomBytes } from 'node:crypto';
import { expect, vi } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { DatabaseAccessSpec } from '../../crds/database-access.ts';
import { crdOpenApiSchema } from '../../crds/openapi.ts';
import type { DatabaseAccess } from '../../operator/src/workload/database-access.ts';
import { kubeRequest } from '../harness/kube/kube-request.ts';
import type { KubeCluster } from '../harness/kube/start-kube.ts';

/** Test helpers for the webhook and the status command against a real API server. */

export async function createNamespace(kube: KubeCluster, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const response = await kubeRequest(kube, {
    method: 'POST',
    path: '/api/v1/namespaces',
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'gatehouse-test': 'yes' } } },
  });
  expect(response.status).toBe(201);
  return name;
}

/**
 * The DatabaseAccess CustomResourceDefinition with the spec schema from crds/database-access.ts.
 * The chart's generated CRD (crds/ owns it) is the real one; this is enough to store and list objects.
 */
export async function installDatabaseAccessDefinition(kube: KubeCluster): Promise<void> {
  const response = await kubeRequest(kube, {
    method: 'POST',
    path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    body: {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'databaseaccesses.gatehouse.dev' },
      spec: {
        group: 'gatehouse.dev',
        scope: 'Namespaced',
        names: {
          plural: 'databaseaccesses',
          singular: 'databaseaccess',
          kind: 'DatabaseAccess',
          listKind: 'DatabaseAccessList',
        },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: crdOpenApiSchema(DatabaseAccessSpec),
                  status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                },
              },
            },
          },
        ],
      },
    },
  });
  expect([201, 409]).toContain(response.status);
  await vi.waitFor(
    async () => {
      const listed = await kubeRequest(kube, { path: `/apis/${API_VERSION}/databaseaccesses` });
      expect(listed.status).toBe(200);
    },
    { timeout: 30_000, interval: 200 },
  );
}

export async function createAccess(kube: KubeCluster, access: DatabaseAccess): Promise<void> {
  const namespace = access.metadata.namespace!;
  const response = await kubeRequest(kube, {
    method: 'POST',
    path: `/apis/${API_VERSION}/namespaces/${namespace}/databaseaccesses`,
    body: { apiVersion: API_VERSION, kind: 'DatabaseAccess', ...access },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
}

export async function listAccesses(kube: KubeCluster, namespace: string): Promise<DatabaseAccess[]> {
  const response = await kubeRequest<{ items: DatabaseAccess[] }>(kube, {
    path: `/apis/${API_VERSION}/namespaces/${namespace}/databaseaccesses`,
  });
  if (response.status !== 200)
    throw new Error(`listing DatabaseAccesses failed with HTTP ${response.status}`);
  return response.body.items;
}
