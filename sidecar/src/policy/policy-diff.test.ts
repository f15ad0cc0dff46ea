import { describe, expect, it } from 'vitest';
import { policyChangeEvent, policyDigest } from './policy-diff.ts';

const doc = (kind: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind,
  metadata: { name },
  spec,
});

describe('policyDigest', () => {
  it('is the same for the same policy written with other key order, and differs for another', () => {
    const a = [{ kind: 'Guardrail', metadata: { name: 'g' }, spec: { mode: 'enforce', rules: [] } }];
    const b = [{ spec: { rules: [], mode: 'enforce' }, metadata: { name: 'g' }, kind: 'Guardrail' }];
    expect(policyDigest(a)).toBe(policyDigest(b));
    expect(policyDigest(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(policyDigest([{ ...a[0], spec: { mode: 'dryRun', rules: [] } }])).not.toBe(policyDigest(a));
    expect(policyDigest([])).toBeUndefined();
  });
});

describe('policyChangeEvent', () => {
  it('lists every rule of an added and a removed document', () => {
    const event = policyChangeEvent(
      [doc('Guardrail', 'old', { rules: [{ name: 'a' }, { name: 'b' }] })],
      [doc('Guardrail', 'new', { rules: [{ name: 'c' }] })],
      'f.yaml',
      undefined,
    );
    expect(event).toMatchObject({
      event: 'reloaded',
      added: ['Guardrail new'],
      removed: ['Guardrail old'],
      rules: { added: ['Guardrail new/c'], removed: ['Guardrail old/a', 'Guardrail old/b'], changed: [] },
      summary: 'added Guardrail new; removed Guardrail old',
    });
    expect(event).not.toHaveProperty('changedBy');
  });

  it('names masking rules, which have no names, by their place', () => {
    const before = [doc('MaskingPolicy', 'pii', { rules: [{ columns: ['email'], method: 'redact' }] })];
    const after = [
      doc('MaskingPolicy', 'pii', {
        rules: [
          { columns: ['email'], method: 'hash' },
          { columns: ['ssn'], method: 'redact' },
        ],
        exemptions: [{ subjects: [{ kind: 'User', name: 'dpo' }] }],
      }),
    ];
    expect(policyChangeEvent(before, after, 'f.yaml', 'alice')).toMatchObject({
      changedBy: 'alice',
      rules: { added: ['MaskingPolicy pii/#2'], changed: ['MaskingPolicy pii/#1'], removed: [] },
      fields: ['MaskingPolicy pii: spec.exemptions'],
    });
  });

  it("names the users the operator's webhook stamped on the documents added or changed", () => {
    const stamped = (name: string, author: string | undefined, rules: unknown[]) => ({
      ...doc('Guardrail', name, { rules }),
      metadata: {
        name,
        ...(author !== undefined && { annotations: { 'gatehouse.dev/changed-by': author } }),
      },
    });
    const before = [stamped('a', 'bob', [{ name: 'x' }]), stamped('b', 'bob', [{ name: 'y' }])];
    const after = [
      stamped('a', 'carol', [{ name: 'x', action: 'warn' }]),
      stamped('b', 'bob', [{ name: 'y' }]),
      stamped('c', 'alice', [{ name: 'z' }]),
      stamped('d', undefined, [{ name: 'w' }]),
    ];
    const event = policyChangeEvent(before, after, 'bundle.yaml', undefined);
    expect(event.changedBy).toBe('alice, carol');
    expect(event.changedByDocument).toEqual({ 'Guardrail a': 'carol', 'Guardrail c': 'alice' });
    // The config's own policy.changedBy, when its writer sets one, is the record's changedBy.
    expect(policyChangeEvent(before, after, 'bundle.yaml', 'ci-job').changedBy).toBe('ci-job');
    // Nothing stamped, nothing named.
    const plain = policyChangeEvent(
      [doc('Guardrail', 'a', { rules: [] })],
      [doc('Guardrail', 'a', { rules: [{ name: 'n' }] })],
      'f.yaml',
      undefined,
    );
    expect(plain).not.toHaveProperty('changedBy');
    expect(plain).not.toHaveProperty('changedByDocument');
  });

  it('at start, has no before and says what was loaded', () => {
    const event = policyChangeEvent(undefined, [], 'f.yaml', undefined);
    expect(event).toMatchObject({ event: 'loaded', summary: 'loaded no policy' });
    expect(event.before).toBeUndefined();
    expect(event.after).toBeUndefined();
  });
});
