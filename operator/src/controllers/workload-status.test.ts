import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ANNOTATION_INJECTED, ANNOTATION_SPEC_HASH } from '../sidecar-layout.ts';
import { workloadOf, workloadStatuses } from './workload-status.ts';

function pod(
  name: string,
  options: { owner?: [string, string]; hash?: string; specHash?: string } = {},
): V1Pod {
  return {
    metadata: {
      name,
      labels: options.hash ? { 'pod-template-hash': options.hash } : {},
      annotations: options.specHash
        ? { [ANNOTATION_INJECTED]: 'true', [ANNOTATION_SPEC_HASH]: options.specHash }
        : {},
      ownerReferences: options.owner
        ? [
            {
              apiVersion: 'apps/v1',
              kind: options.owner[0],
              name: options.owner[1],
              uid: 'u',
              controller: true,
            },
          ]
        : [],
    },
  };
}

describe('workloadStatuses', () => {
  it('finds the Deployment behind a ReplicaSet, and treats a bare pod as its own workload', () => {
    expect(workloadOf(pod('web-7c9d8-abcde', { owner: ['ReplicaSet', 'web-7c9d8'], hash: '7c9d8' }))).toEqual(
      {
        kind: 'Deployment',
        name: 'web',
      },
    );
    expect(workloadOf(pod('db-0', { owner: ['StatefulSet', 'db'] }))).toEqual({
      kind: 'StatefulSet',
      name: 'db',
    });
    expect(workloadOf(pod('lonely'))).toEqual({ kind: 'Pod', name: 'lonely' });
  });

  it('counts pods with the current sidecar and names those missing it', () => {
    const statuses = workloadStatuses(
      [
        pod('web-a', { owner: ['ReplicaSet', 'web-1'], hash: '1', specHash: 'h2' }),
        pod('web-b', { owner: ['ReplicaSet', 'web-1'], hash: '1', specHash: 'h1' }),
        pod('web-c', { owner: ['ReplicaSet', 'web-1'], hash: '1' }),
        pod('tool', { specHash: 'h2' }),
        { metadata: { name: 'opted-out', labels: { 'gatehouse.dev/inject': 'disabled' } } },
      ],
      'h2',
      [{ kind: 'DaemonSet', name: 'agent' }],
    );
    expect(statuses).toEqual([
      { kind: 'DaemonSet', name: 'agent', pods: 0, injected: 0, current: 0, missing: [] },
      { kind: 'Deployment', name: 'web', pods: 3, injected: 2, current: 1, missing: ['web-b', 'web-c'] },
      { kind: 'Pod', name: 'tool', pods: 1, injected: 1, current: 1, missing: [] },
    ]);
  });
});
