import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerWorkloadMetrics } from './workload-metrics.ts';

describe('registerWorkloadMetrics', () => {
  it('counts selected pods without a sidecar and with an outdated one, per access, from the status', async () => {
    const registry = new Registry();
    const workload = (pods: number, injected: number, current: number) => ({
      kind: 'Deployment',
      name: 'w',
      pods,
      injected,
      current,
      missing: [],
    });
    let accesses = [
      {
        metadata: { name: 'orders', namespace: 'shop' },
        status: { workloads: [workload(3, 2, 1), workload(2, 2, 2)] },
      },
      { metadata: { name: 'fresh', namespace: 'shop' } },
    ];
    registerWorkloadMetrics(registry, { list: () => accesses });
    const text = await registry.metrics();
    expect(text).toContain('gatehouse_operator_pods_selected{namespace="shop",access="orders"} 5');
    expect(text).toContain('gatehouse_operator_pods_without_sidecar{namespace="shop",access="orders"} 1');
    expect(text).toContain('gatehouse_operator_pods_outdated_sidecar{namespace="shop",access="orders"} 1');
    expect(text).not.toContain('access="fresh"');
    // A deleted access leaves no stale series behind.
    accesses = [];
    expect(await registry.metrics()).not.toContain('access="orders"');
  });
});
