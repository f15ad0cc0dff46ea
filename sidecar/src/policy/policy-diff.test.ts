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

  it('at start, has no before and says what was loaded', () => {
    const event = policyChangeEvent(undefined, [], 'f.yaml', undefined);
    expect(event).toMatchObject({ event: 'loaded', summary: 'loaded no policy' });
    expect(event.before).toBeUndefined();
    expect(event.after).toBeUndefined();
  });
});
