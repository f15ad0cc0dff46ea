import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../crds/common.ts';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import type { KubeObject } from '../runtime/kube-api.ts';
import { gatehousePath } from './api-paths.ts';
import type { Condition } from './conditions.ts';
import type { DatabaseAccessObject } from './database-access-controller.ts';
import { PolicyController } from './policy-controller.ts';

/** Each state of a Guardrail or MaskingPolicy reconcile against FakeKubeApi. */

const NS = 'shop';
type Policy = KubeObject & {
  spec: unknown;
  status?: { observedGeneration?: number; conditions?: Condition[] };
};

async function world(kind: 'Guardrail' | 'MaskingPolicy' = 'Guardrail') {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  const controller = new PolicyController(
    kind,
    api,
    api.informer<Policy>(gatehousePath(kind)),
    api.informer<DatabaseAccessObject>(gatehousePath('DatabaseAccess')),
  );
  return {
    api,
    reconcile: (name: string) => controller.reconcile(`${NS}/${name}`),
    get: (name: string) => api.get<Policy>(gatehousePath(kind, NS, name)),
    create: (name: string, spec: unknown) =>
      api.create(gatehousePath(kind, NS), { apiVersion: API_VERSION, kind, metadata: { name }, spec }),
  };
}

const rules = [{ name: 'no-drops', kinds: ['drop'], action: 'block' }];

async function createAccess(api: FakeKubeApi, name: string, guardrails: string[]) {
  await api.create(gatehousePath('DatabaseAccess', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name },
    spec: { subjects: [{ kind: 'ServiceAccount', name: 'app' }], allow: ['read'], guardrails },
  });
}

function ready(policy: Policy): string | undefined {
  const found = policy.status?.conditions?.find((c) => c.type === 'Ready');
  return found && `${found.status} ${found.reason}: ${found.message}`;
}

describe('PolicyController reconcile states', () => {
  it('accepts a valid Guardrail, names its users, and follows the generation', async () => {
    const w = await world();
    await w.create('no-drop', { rules });
    expect(await w.reconcile('no-drop')).toEqual({ outcome: 'Ready' });
    let policy = await w.get('no-drop');
    expect(ready(policy)).toBe('True Accepted: not used by any DatabaseAccess');
    expect(policy.status?.observedGeneration).toBe(1);
    expect(policy.status?.conditions?.map((c) => `${c.type}=${c.status}@${c.observedGeneration}`)).toEqual([
      'Ready=True@1',
      'Reconciling=False@1',
      'Stalled=False@1',
    ]);

    await createAccess(w.api, 'orders', ['no-drop']);
    await createAccess(w.api, 'billing', ['no-drop', 'other']);
    await createAccess(w.api, 'reports', ['other']);
    await w.reconcile('no-drop');
    expect(ready(await w.get('no-drop'))).toBe('True Accepted: used by DatabaseAccess billing, orders');

    await w.api.patch(gatehousePath('Guardrail', NS, 'no-drop'), {
      spec: { rules: [{ name: 'no-drops', kinds: ['drop', 'truncate'] }] },
    });
    await w.reconcile('no-drop');
    policy = await w.get('no-drop');
    expect(policy.metadata.generation).toBe(2);
    expect(policy.status?.observedGeneration).toBe(2);
    expect(policy.status?.conditions?.every((c) => c.observedGeneration === 2)).toBe(true);
  });

  it('is Stalled with InvalidPolicy when the sidecar loader refuses what the CRD schema lets through', async () => {
    const w = await world();
    await w.create('twice', {
      rules: [
        { name: 'r', kinds: ['drop'] },
        { name: 'r', kinds: ['truncate'] },
      ],
    });
    expect(await w.reconcile('twice')).toEqual({ outcome: 'InvalidPolicy' });
    const policy = await w.get('twice');
    expect(ready(policy)).toMatch(/^False InvalidPolicy: .*spec\.rules\[1\]\.name.*earlier rule/);
    expect(policy.status?.conditions?.find((c) => c.type === 'Stalled')?.status).toBe('True');

    await w.api.patch(gatehousePath('Guardrail', NS, 'twice'), { spec: { rules } });
    expect(await w.reconcile('twice')).toEqual({ outcome: 'Ready' });
  });

  it('checks a MaskingPolicy the same way', async () => {
    const w = await world('MaskingPolicy');
    await w.create('pii', { rules: [{ columns: ['customers.email'], method: 'redact' }] });
    expect(await w.reconcile('pii')).toEqual({ outcome: 'Ready' });
    await w.create('empty', { rules: [{ method: 'redact' }] });
    expect(await w.reconcile('empty')).toEqual({ outcome: 'InvalidPolicy' });
    expect(ready(await w.get('empty'))).toMatch(/needs columns, classifiers or both/);
  });

  it('writes nothing when the status would not change, and nothing for a policy gone or being deleted', async () => {
    const w = await world();
    await w.create('no-drop', { rules });
    await w.reconcile('no-drop');
    let since = w.api.requests.length;
    await w.reconcile('no-drop');
    expect(w.api.writes(since)).toEqual([]);

    since = w.api.requests.length;
    expect(await w.reconcile('absent')).toEqual({ outcome: 'gone' });
    await w.api.patch(gatehousePath('Guardrail', NS, 'no-drop'), {
      metadata: { finalizers: ['example.com/f'] },
    });
    await w.api.delete(gatehousePath('Guardrail', NS, 'no-drop'));
    since = w.api.requests.length;
    expect(await w.reconcile('no-drop')).toEqual({ outcome: 'gone' });
    expect(w.api.writes(since)).toEqual([]);
  });
});
