import { isDeepStrictEqual } from 'node:util';
import { CHANGED_BY_ANNOTATION } from '../../../crds/common.ts';
import type { JsonPatchOperation } from '../workload/json-patch.ts';

/** The part of a DatabaseAccess, Guardrail or MaskingPolicy this webhook reads. */
export interface PolicyObjectView {
  readonly metadata?: { readonly annotations?: Readonly<Record<string, string>> };
  readonly spec?: unknown;
}

/**
 * Who changed a policy object, as the API server authenticated them: the JSON Patch that puts the
 * `gatehouse.dev/changed-by` annotation on it. A create, or an update that changes the spec, is
 * stamped with the request's user; any other update (labels, the operator's finalizer, a client that
 * rewrites the annotation alone) keeps the stamp it had, or none. Whatever the client wrote into the
 * annotation is replaced, so the annotation is never the client's word.
 */
export function stampPolicyChange(input: {
  readonly operation: 'CREATE' | 'UPDATE';
  readonly object: PolicyObjectView;
  readonly oldObject?: PolicyObjectView;
  readonly username: string;
}): JsonPatchOperation[] {
  const { object, oldObject } = input;
  const specChanged =
    input.operation === 'CREATE' ||
    oldObject === undefined ||
    !isDeepStrictEqual(object.spec, oldObject.spec);
  const wanted = specChanged ? input.username : oldObject.metadata?.annotations?.[CHANGED_BY_ANNOTATION];
  const annotations = object.metadata?.annotations;
  const present = annotations?.[CHANGED_BY_ANNOTATION];
  if (present === wanted) return [];
  const path = `/metadata/annotations/${CHANGED_BY_ANNOTATION.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  if (wanted === undefined) return [{ op: 'remove', path }];
  if (annotations === undefined)
    return [{ op: 'add', path: '/metadata/annotations', value: { [CHANGED_BY_ANNOTATION]: wanted } }];
  return [{ op: present === undefined ? 'add' : 'replace', path, value: wanted }];
}
