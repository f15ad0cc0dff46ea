import type { Static } from 'typebox';
import type { Subject } from '../../../crds/common.ts';
import type { Identity } from '../identity/identity.ts';

export type SubjectSpec = Static<typeof Subject>;

/**
 * Whether `identity` is `subject`: a ServiceAccount by its token subject
 * `system:serviceaccount:NAMESPACE:NAME` (namespace defaulting to that of the document naming it),
 * a User by its subject exactly, a Group by membership.
 */
export function subjectMatches(
  subject: SubjectSpec,
  identity: Pick<Identity, 'subject' | 'groups'>,
  documentNamespace?: string,
): boolean {
  switch (subject.kind) {
    case 'ServiceAccount': {
      const namespace = subject.namespace ?? documentNamespace;
      return (
        namespace !== undefined && identity.subject === `system:serviceaccount:${namespace}:${subject.name}`
      );
    }
    case 'User':
      return identity.subject === subject.name;
    case 'Group':
      return identity.groups.includes(subject.name);
    default:
      return false;
  }
}

export function anySubjectMatches(
  subjects: readonly SubjectSpec[],
  identity: Pick<Identity, 'subject' | 'groups'>,
  documentNamespace?: string,
): boolean {
  return subjects.some((subject) => subjectMatches(subject, identity, documentNamespace));
}
