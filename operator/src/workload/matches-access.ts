import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { DatabaseAccess } from './database-access.ts';

/**
 * Whether a DatabaseAccess selects a pod: same namespace, and every condition of its
 * workloadSelector holds (kind+name through the pod's owners, matchLabels against its labels, as a
 * Kubernetes label selector: an empty matchLabels selects every pod; a name without a kind means a
 * Deployment). An access without a selector selects nothing: it serves a gateway, not sidecars. A
 * pod without a namespace (as in an admission request, where the namespace travels beside the
 * object) is taken to be in the access's namespace.
 */
export function matchesAccess(pod: V1Pod, access: DatabaseAccess): boolean {
  const podNamespace = pod.metadata?.namespace;
  const accessNamespace = access.metadata.namespace;
  if (podNamespace && accessNamespace && podNamespace !== accessNamespace) return false;
  const selector = access.spec.workloadSelector;
  if (selector === undefined) return false;
  const byName = selector.name !== undefined || selector.kind !== undefined;
  if (!byName && selector.matchLabels === undefined) return false;
  if (selector.matchLabels !== undefined) {
    const labels = pod.metadata?.labels ?? {};
    for (const [key, value] of Object.entries(selector.matchLabels)) {
      if (labels[key] !== value) return false;
    }
  }
  if (byName && !ownedByWorkload(pod, selector.kind, selector.name)) return false;
  return true;
}

/** Pods made by a ReplicaSet of a Deployment carry this label; the ReplicaSet is `<deployment>-<hash>`. */
const POD_TEMPLATE_HASH = 'pod-template-hash';
/** The characters Kubernetes encodes ReplicaSet hashes in, and the digits of a CronJob's Job suffix. */
const REPLICA_SET_SUFFIX = /^[bcdfghjklmnpqrstvwxz2456789]+$/;
const CRON_JOB_SUFFIX = /^[0-9]+$/;

/** A selector that names a workload without a kind means a Deployment, the usual case. */
const DEFAULT_KIND = 'Deployment';

function ownedByWorkload(pod: V1Pod, kind = DEFAULT_KIND, name: string | undefined): boolean {
  if (kind === 'Pod') return name === undefined || pod.metadata?.name === name;
  return controllingOwners(pod).some((owner) => {
    switch (kind) {
      case 'Deployment':
        return (
          owner.kind === 'ReplicaSet' && (name === undefined || replicaSetOfDeployment(pod, owner.name, name))
        );
      case 'CronJob':
        return owner.kind === 'Job' && (name === undefined || suffixed(owner.name, name, CRON_JOB_SUFFIX));
      default:
        return owner.kind === kind && (name === undefined || owner.name === name);
    }
  });
}

/** The controller reference when there is one; otherwise every owner (hand-made references may omit the flag). */
function controllingOwners(pod: V1Pod): V1OwnerReference[] {
  const owners = pod.metadata?.ownerReferences ?? [];
  const controllers = owners.filter((owner) => owner.controller === true);
  return controllers.length > 0 ? controllers : owners;
}

function replicaSetOfDeployment(pod: V1Pod, replicaSet: string, deployment: string): boolean {
  const templateHash = pod.metadata?.labels?.[POD_TEMPLATE_HASH];
  if (templateHash !== undefined) return replicaSet === `${deployment}-${templateHash}`;
  return suffixed(replicaSet, deployment, REPLICA_SET_SUFFIX);
}

function suffixed(ownerName: string, workload: string, suffix: RegExp): boolean {
  return ownerName.startsWith(`${workload}-`) && suffix.test(ownerName.slice(workload.length + 1));
}
