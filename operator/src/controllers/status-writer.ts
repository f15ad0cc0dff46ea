import { isDeepStrictEqual } from 'node:util';
import type { KubeClient } from '../runtime/kube-api.ts';

/**
 * Writes `status` through the status subresource, unless it equals what the object already has: an
 * unchanged write would still bump resourceVersion and wake every watcher, this controller included.
 * Returns whether it wrote.
 */
export async function writeStatus(
  api: KubeClient,
  objectPath: string,
  current: unknown,
  status: object,
): Promise<boolean> {
  if (isDeepStrictEqual(stripUndefined(current), stripUndefined(status))) return false;
  // A merge patch of the whole status: lists (conditions, workloads) are replaced, not merged.
  const clearing = Object.fromEntries(
    Object.keys((current as Record<string, unknown> | undefined) ?? {})
      .filter((key) => !(key in status))
      .map((key) => [key, null]),
  );
  await api.patch(`${objectPath}/status`, { status: { ...clearing, ...status } });
  return true;
}

function stripUndefined(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}
