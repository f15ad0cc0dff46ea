import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { describe, expect, test } from 'vitest';
import type { DatabaseAccess } from './database-access.ts';
import { matchesAccess } from './matches-access.ts';
import { selectAccess } from './select-access.ts';

type Selector = NonNullable<DatabaseAccess['spec']['workloadSelector']>;

function access(name: string, workloadSelector: Selector | undefined, namespace = 'shop'): DatabaseAccess {
  return {
    metadata: { name, namespace },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'app' }],
      allow: ['read'],
      ...(workloadSelector !== undefined && { workloadSelector }),
    },
  };
}

function pod(
  options: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    owner?: [string, string];
  } = {},
): V1Pod {
  const owner: V1OwnerReference[] =
    options.owner === undefined
      ? []
      : [
          {
            apiVersion: 'apps/v1',
            kind: options.owner[0],
            name: options.owner[1],
            uid: 'u',
            controller: true,
          },
        ];
  return {
    metadata: {
      name: options.name ?? 'p',
      ...(options.namespace !== undefined && { namespace: options.namespace }),
      labels: options.labels ?? {},
      ownerReferences: owner,
    },
    spec: { containers: [{ name: 'app' }] },
  };
}

describe('matchesAccess', () => {
  test.each([
    ['labels match', { matchLabels: { app: 'a' } }, pod({ labels: { app: 'a', tier: 'x' } }), true],
    ['a label differs', { matchLabels: { app: 'a' } }, pod({ labels: { app: 'b' } }), false],
    ['empty matchLabels selects every pod', { matchLabels: {} }, pod(), true],
    ['no selector selects nothing', undefined, pod(), false],
    ['an empty selector selects nothing', {}, pod(), false],
    ['other namespace', { matchLabels: {} }, pod({ namespace: 'staging' }), false],
    ['pod without namespace (admission)', { matchLabels: {} }, pod(), true],
    [
      'Deployment through its ReplicaSet',
      { kind: 'Deployment', name: 'web' },
      pod({ owner: ['ReplicaSet', 'web-7d9f8c5b4'] }),
      true,
    ],
    [
      'a name without kind means Deployment',
      { name: 'web' },
      pod({ owner: ['ReplicaSet', 'web-7d9f8c5b4'] }),
      true,
    ],
    [
      'Deployment web is not web-api',
      { kind: 'Deployment', name: 'web' },
      pod({ owner: ['ReplicaSet', 'web-api-7d9f8c5b4'] }),
      false,
    ],
    [
      'pod-template-hash decides when present',
      { kind: 'Deployment', name: 'web' },
      pod({ owner: ['ReplicaSet', 'web-7d9f8c5b4'], labels: { 'pod-template-hash': '5555' } }),
      false,
    ],
    ['StatefulSet by name', { kind: 'StatefulSet', name: 'db' }, pod({ owner: ['StatefulSet', 'db'] }), true],
    ['DaemonSet by name', { kind: 'DaemonSet', name: 'agent' }, pod({ owner: ['DaemonSet', 'agent'] }), true],
    ['Job by name', { kind: 'Job', name: 'migrate' }, pod({ owner: ['Job', 'migrate'] }), true],
    ['kind must agree', { kind: 'Job', name: 'db' }, pod({ owner: ['StatefulSet', 'db'] }), false],
    [
      'CronJob through its Job',
      { kind: 'CronJob', name: 'report' },
      pod({ owner: ['Job', 'report-29012345'] }),
      true,
    ],
    ['Pod by its own name', { kind: 'Pod', name: 'runner' }, pod({ name: 'runner' }), true],
    ['Pod by another name', { kind: 'Pod', name: 'runner' }, pod({ name: 'walker' }), false],
    [
      'kind+name and labels must both hold',
      { kind: 'StatefulSet', name: 'db', matchLabels: { app: 'db' } },
      pod({ owner: ['StatefulSet', 'db'], labels: { app: 'other' } }),
      false,
    ],
  ] as const)('%s', (_name, selector, subject, expected) => {
    expect(matchesAccess(subject, access('a', selector as Selector | undefined))).toBe(expected);
  });
});

describe('selectAccess', () => {
  test('kind+name beats labels, then the first name wins; the others are reported', () => {
    const subject = pod({ labels: { app: 'web' }, owner: ['ReplicaSet', 'web-7d9f8c5b4'] });
    const selection = selectAccess(subject, [
      access('b-labels', { matchLabels: { app: 'web' } }),
      access('z-named', { kind: 'Deployment', name: 'web' }),
      access('a-labels', { matchLabels: { app: 'web' } }),
      access('unrelated', { matchLabels: { app: 'other' } }),
    ]);
    expect(selection.chosen?.metadata.name).toBe('z-named');
    expect(selection.passedOver.map((passed) => passed.access.metadata.name)).toEqual([
      'a-labels',
      'b-labels',
    ]);
    expect(selection.passedOver[0]?.reason).toContain('z-named was chosen');
  });

  test('nothing selects the pod', () => {
    expect(selectAccess(pod(), [access('x', { matchLabels: { app: 'x' } })])).toEqual({ passedOver: [] });
  });
});
