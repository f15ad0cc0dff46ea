import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { CommonStatus, DatabaseAccessStatus, type DatabaseAccessStatusType } from './status.ts';

const ready = {
  type: 'Ready',
  status: 'True',
  observedGeneration: 3,
  lastTransitionTime: '2026-11-26T06:00:00Z',
  reason: 'BundleCompiled',
  message: 'Policy bundle compiled',
} as const;

describe('status schemas, for the controllers that write status', () => {
  it('accept a status in the shape the API server stores', () => {
    const status: DatabaseAccessStatusType = {
      observedGeneration: 3,
      conditions: [ready],
      bundle: { configMap: 'gatehouse-bundle-orders', hash: 'sha256-3f1a' },
      workloads: [
        { kind: 'Deployment', name: 'orders', pods: 2, injected: 2, current: 1, missing: ['orders-1'] },
      ],
      conflicts: ['shop/legacy-orders'],
    };
    expect(Value.Errors(DatabaseAccessStatus, status)).toEqual([]);
    expect(Value.Check(CommonStatus, { observedGeneration: 1, conditions: [ready] })).toBe(true);
  });

  it.each([
    ['a reason that is not CamelCase', { conditions: [{ ...ready, reason: 'bundle compiled' }] }],
    ['a status other than True, False or Unknown', { conditions: [{ ...ready, status: 'Yes' }] }],
    ['a transition time that is not RFC 3339', { conditions: [{ ...ready, lastTransitionTime: 'now' }] }],
    ['a negative generation', { observedGeneration: -1 }],
    ['a field the CRD does not have', { phase: 'Ready' }],
  ])('reject %s', (_, status) => {
    expect(Value.Check(CommonStatus, status)).toBe(false);
  });
});
