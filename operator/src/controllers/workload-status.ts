import type { V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_INJECTED,
  ANNOTATION_SPEC_HASH,
  INJECT_DISABLED,
  LABEL_INJECT,
} from '../sidecar-layout.ts';

/** One workload a DatabaseAccess covers, and how many of its pods carry the current sidecar. */
export interface WorkloadStatus {
  kind: string;
  name: string;
  pods: number;
  /** Pods with a Gatehouse sidecar of any version. */
  injected: number;
  /** Pods whose sidecar matches the access as it is now. */
  current: number;
  /** Pods that should carry the current sidecar and do not (not injected, or injected from an older spec); the first 100. */
  missing: string[];
}

const POD_TEMPLATE_HASH = 'pod-template-hash';
/** The status lists this many missing pods per workload; `pods` and `current` still count them all. */
const MAX_MISSING = 100;

/** The workload a pod belongs to: its controller, seen through a Deployment's ReplicaSet; the pod itself when bare. */
export function workloadOf(pod: V1Pod): { kind: string; name: string } {
  const owners = pod.metadata?.ownerReferences ?? [];
  const owner = owners.find((o) => o.controller) ?? owners[0];
  if (!owner) return { kind: 'Pod', name: pod.metadata?.name ?? '' };
  const hash = pod.metadata?.labels?.[POD_TEMPLATE_HASH];
  if (owner.kind === 'ReplicaSet' && hash !== undefined && owner.name.endsWith(`-${hash}`))
    return { kind: 'Deployment', name: owner.name.slice(0, -hash.length - 1) };
  return { kind: owner.kind, name: owner.name };
}

/**
 * Groups the selected pods by workload (plus `workloads` known to be selected, even without pods),
 * sorted by kind and name so the status is stable. Pods being deleted, and pods that opted out of
 * injection (`gatehouse.dev/inject: disabled`), are left out: nobody expects a sidecar in them.
 */
export function workloadStatuses(
  pods: readonly V1Pod[],
  currentHash: string,
  workloads: readonly { kind: string; name: string }[] = [],
): WorkloadStatus[] {
  const byKey = new Map<string, WorkloadStatus>();
  const entry = (w: { kind: string; name: string }) => {
    const key = `${w.kind}/${w.name}`;
    let status = byKey.get(key);
    if (!status) {
      status = { kind: w.kind, name: w.name, pods: 0, injected: 0, current: 0, missing: [] };
      byKey.set(key, status);
    }
    return status;
  };
  for (const workload of workloads) entry(workload);
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || optedOut(pod)) continue;
    const status = entry(workloadOf(pod));
    const annotations = pod.metadata?.annotations ?? {};
    status.pods++;
    if (annotations[ANNOTATION_INJECTED] !== undefined) status.injected++;
    if (annotations[ANNOTATION_SPEC_HASH] === currentHash) status.current++;
    else status.missing.push(pod.metadata?.name ?? '');
  }
  for (const status of byKey.values()) status.missing = status.missing.sort().slice(0, MAX_MISSING);
  return [...byKey.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

function optedOut(pod: V1Pod): boolean {
  return (
    pod.metadata?.labels?.[LABEL_INJECT] === INJECT_DISABLED ||
    pod.metadata?.annotations?.[LABEL_INJECT] === INJECT_DISABLED
  );
}
