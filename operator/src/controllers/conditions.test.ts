import { describe, expect, it } from 'vitest';
import { mergeConditions, standardConditions } from './conditions.ts';

const T0 = new Date('2026-01-01T00:00:00.123Z');
const T1 = new Date('2026-01-01T00:05:00Z');

describe('mergeConditions', () => {
  it('stamps the generation and keeps the transition time while the status holds', () => {
    const first = mergeConditions(undefined, standardConditions({ kind: 'unknown' }), 1, T0);
    expect(first.map((c) => [c.type, c.status, c.lastTransitionTime, c.observedGeneration])).toEqual([
      ['Ready', 'Unknown', '2026-01-01T00:00:00Z', 1],
      ['Reconciling', 'True', '2026-01-01T00:00:00Z', 1],
      ['Stalled', 'Unknown', '2026-01-01T00:00:00Z', 1],
    ]);
    const ready = mergeConditions(
      first,
      standardConditions({ kind: 'ready', reason: 'BundleCompiled', message: 'ok' }),
      2,
      T1,
    );
    expect(ready.find((c) => c.type === 'Ready')).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'BundleCompiled',
      message: 'ok',
      observedGeneration: 2,
      lastTransitionTime: '2026-01-01T00:05:00Z',
    });
    const again = mergeConditions(
      ready,
      standardConditions({ kind: 'ready', reason: 'BundleCompiled', message: 'ok' }),
      2,
      new Date('2026-01-02T00:00:00Z'),
    );
    expect(again).toEqual(ready);
  });

  it('marks a stalled resource not ready and not reconciling', () => {
    const conditions = standardConditions({
      kind: 'stalled',
      reason: 'ReferenceNotFound',
      message: 'Guardrail "g" not found',
    });
    expect(conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      'Ready=False',
      'Reconciling=False',
      'Stalled=True',
    ]);
  });
});
