import { isDeepStrictEqual } from 'node:util';
import type { V1Pod } from '@kubernetes/client-node';

/** One RFC 6902 operation, as admission webhooks return them. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** The parts of a pod the injector changes; nothing else is ever patched. */
const PATCHED_PATHS = [
  ['metadata', 'annotations'],
  ['spec', 'initContainers'],
  ['spec', 'containers'],
  ['spec', 'volumes'],
  ['spec', 'serviceAccountName'],
] as const;

/**
 * The patch that turns `before` into `after`, whole list by whole list: a replaced list is easier
 * to read in an audit log than index-shifting operations, and it cannot misapply when the API
 * server has defaulted fields in between.
 */
export function podPatch(before: V1Pod, after: V1Pod): JsonPatchOperation[] {
  const operations: JsonPatchOperation[] = [];
  for (const [section, field] of PATCHED_PATHS) {
    const old = (before[section] as Record<string, unknown> | undefined)?.[field];
    const now = (after[section] as Record<string, unknown> | undefined)?.[field];
    if (isDeepStrictEqual(old, now)) continue;
    const path = `/${section}/${field}`;
    if (now === undefined) operations.push({ op: 'remove', path });
    else if (old === undefined) operations.push({ op: 'add', path, value: now });
    else operations.push({ op: 'replace', path, value: now });
  }
  return operations;
}
