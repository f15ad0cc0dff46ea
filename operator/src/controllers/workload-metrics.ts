import { Gauge, type Registry } from 'prom-client';

/** What the gauges read: DatabaseAccesses as the informer holds them, with the status the leader wrote. */
export interface AccessesWithStatus {
  list(): readonly {
    readonly metadata: { readonly name?: string; readonly namespace?: string };
    readonly status?: { readonly workloads?: readonly WorkloadCounts[] };
  }[];
}

/**
 * Pods each DatabaseAccess selects and their sidecars, read from the access status at scrape time, so
 * that every replica (informers run on all of them) answers the same and the alerts need no leader.
 * A selected pod without a sidecar reaches the database around the proxy, or not at all: that is the
 * alert GatehouseSidecarMissing. An outdated sidecar enforces the policy of an older spec.
 */
export function registerWorkloadMetrics(registry: Registry, accesses: AccessesWithStatus): void {
  const gauge = (name: string, help: string, count: (w: WorkloadCounts) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['namespace', 'access'],
      registers: [registry],
      collect() {
        this.reset();
        for (const access of accesses.list()) {
          const workloads = access.status?.workloads;
          if (workloads === undefined) continue;
          const labels = { namespace: access.metadata.namespace ?? '', access: access.metadata.name ?? '' };
          this.set(
            labels,
            workloads.reduce((n, w) => n + count(w), 0),
          );
        }
      },
    });
  gauge(
    'gatehouse_operator_pods_selected',
    'Pods a DatabaseAccess selects and carries (from its status).',
    (w) => w.pods,
  );
  gauge(
    'gatehouse_operator_pods_without_sidecar',
    'Pods a DatabaseAccess selects that run without any Gatehouse sidecar (from its status).',
    (w) => Math.max(0, w.pods - w.injected),
  );
  gauge(
    'gatehouse_operator_pods_outdated_sidecar',
    'Pods a DatabaseAccess selects whose sidecar was injected from an older spec (from its status).',
    (w) => Math.max(0, w.injected - w.current),
  );
}

type WorkloadCounts = { readonly pods: number; readonly injected: number; readonly current: number };
