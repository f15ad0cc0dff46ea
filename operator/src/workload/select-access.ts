import type { V1Pod } from '@kubernetes/client-node';
import type { DatabaseAccess } from './database-access.ts';
import { matchesAccess } from './matches-access.ts';

export type AccessSelection = {
  /** The one access whose sidecar the pod gets, if any selects it. */
  chosen?: DatabaseAccess;
  /** Other accesses that also select the pod and are not injected, each with a sentence saying so. */
  passedOver: Array<{ access: DatabaseAccess; reason: string }>;
};

/**
 * One sidecar per pod: the app finds its database through one set of variables (PGHOST, DATABASE_URL...),
 * so a second sidecar would get no traffic, and two sidecars would fight over the default port. When
 * several accesses select a pod, the most specific wins (a kind+name selector before a label
 * selector), then the first by name; the others are reported so the overlap can be fixed.
 */
export function selectAccess(pod: V1Pod, accesses: readonly DatabaseAccess[]): AccessSelection {
  const matching = accesses.filter((access) => matchesAccess(pod, access)).sort(bySpecificityThenName);
  const [chosen, ...others] = matching;
  if (chosen === undefined) return { passedOver: [] };
  return {
    chosen,
    passedOver: others.map((access) => ({
      access,
      reason: `DatabaseAccess ${access.metadata.name} also selects this pod; only one sidecar is injected per pod and ${chosen.metadata.name} was chosen (kind+name selectors before label selectors, then by name)`,
    })),
  };
}

function bySpecificityThenName(a: DatabaseAccess, b: DatabaseAccess): number {
  const specificity = (access: DatabaseAccess) => (access.spec.workloadSelector?.name === undefined ? 1 : 0);
  return specificity(a) - specificity(b) || a.metadata.name.localeCompare(b.metadata.name, 'en');
}
