import type { Identity } from '../identity/identity.ts';
import type { Grant, Policy } from './load-policy.ts';
import { anySubjectMatches } from './subject-matches.ts';

/**
 * The grants that apply to `identity` on `database`: every DatabaseAccess whose subjects include it
 * and whose upstream database, if it names one, is this one.
 */
export function grantsFor(identity: Identity, policy: Policy, database: string): Grant[] {
  return policy.grants.filter(
    (grant) =>
      anySubjectMatches(grant.access.spec.subjects, identity, grant.access.metadata.namespace) &&
      (grant.access.spec.upstream?.database === undefined ||
        grant.access.spec.upstream.database === database),
  );
}
