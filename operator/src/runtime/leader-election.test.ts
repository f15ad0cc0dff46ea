import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KubeCluster, startKube } from '../../../test/harness/kube/start-kube.ts';
import { KubeApi } from './kube-api.ts';
import { LeaderElector } from './leader-election.ts';

let cluster: KubeCluster;
let api: KubeApi;
const logger = pino({ level: 'silent' });

beforeAll(async () => {
  cluster = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfigPath);
  api = new KubeApi(config);
  await api.create('/api/v1/namespaces', { metadata: { name: 'election' } });
});

afterAll(async () => {
  await cluster?.stop();
});

function candidate(identity: string, name: string) {
  return new LeaderElector({
    api,
    namespace: 'election',
    name,
    identity,
    logger,
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 200,
  });
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseTransitions?: number;
}

describe('LeaderElector against a real API server', () => {
  it('lets one of two candidates lead, and hands over at once when the leader releases', async () => {
    const a = candidate('a', 'release');
    const b = candidate('b', 'release');
    expect(await a.acquire(() => {})).toBe(true);
    let bLeads = false;
    const bAcquired = b
      .acquire(() => {})
      .then((won) => {
        bLeads = won;
      });
    // b keeps trying for longer than several renewals of a, and must not win while a renews.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(bLeads).toBe(false);
    expect(a.leading).toBe(true);
    const lease = await api.get<{ spec: LeaseSpec }>(
      '/apis/coordination.k8s.io/v1/namespaces/election/leases/release',
    );
    expect(lease.spec.holderIdentity).toBe('a');

    const released = Date.now();
    await a.stop();
    await bAcquired;
    expect(bLeads).toBe(true);
    // Released, not expired: b takes it on its next retry, well within the lease duration.
    expect(Date.now() - released).toBeLessThan(1500);
    const after = await api.get<{ spec: LeaseSpec }>(
      '/apis/coordination.k8s.io/v1/namespaces/election/leases/release',
    );
    expect(after.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.stop();
  }, 30_000);

  it('takes over a lease whose holder vanished only after it expires', async () => {
    // What a killed leader leaves behind: a lease it renewed a moment ago and will never renew again.
    const crashed = Date.now();
    await api.create('/apis/coordination.k8s.io/v1/namespaces/election/leases', {
      metadata: { name: 'crash' },
      spec: {
        holderIdentity: 'ghost',
        leaseDurationSeconds: 3,
        renewTime: new Date(crashed).toISOString().replace('Z', '000Z'),
        leaseTransitions: 4,
      },
    });
    const b = candidate('b', 'crash');
    expect(await b.acquire(() => {})).toBe(true);
    expect(Date.now() - crashed).toBeGreaterThanOrEqual(2800);
    const lease = await api.get<{ spec: LeaseSpec }>(
      '/apis/coordination.k8s.io/v1/namespaces/election/leases/crash',
    );
    expect(lease.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
    await b.stop();
  }, 30_000);
});
