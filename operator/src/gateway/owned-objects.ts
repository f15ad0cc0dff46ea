import { createHash } from 'node:crypto';
import { isConflict, type KubeClient, type KubeObject } from '../runtime/kube-api.ts';
import { ANNOTATION_DESIRED_HASH } from './gateway-layout.ts';

export type EnsureResult = 'created' | 'updated' | 'unchanged' | 'conflict';

/**
 * Makes the object at `collection/name` what `desired` says, when the owner (by uid) controls it:
 * created when missing, replaced when what was last written differs (the hash of `desired` in an
 * annotation, so fields the API server fills in do not count as drift), left alone when it is
 * someone else's ('conflict'). Replace carries the resourceVersion: a concurrent change is a 409.
 */
export async function ensureOwned(
  api: KubeClient,
  collection: string,
  desired: KubeObject & Record<string, unknown>,
  ownerUid: string,
): Promise<EnsureResult> {
  const hash = createHash('sha256').update(JSON.stringify(desired)).digest('hex').slice(0, 16);
  const body = {
    ...desired,
    metadata: {
      ...desired.metadata,
      annotations: { ...desired.metadata.annotations, [ANNOTATION_DESIRED_HASH]: hash },
    },
  };
  const path = `${collection}/${encodeURIComponent(desired.metadata.name)}`;
  const existing = await api.getOptional<KubeObject>(path);
  if (!existing) {
    await api.create(collection, body);
    return 'created';
  }
  if (!existing.metadata.ownerReferences?.some((o) => o.uid === ownerUid)) return 'conflict';
  if (existing.metadata.annotations?.[ANNOTATION_DESIRED_HASH] === hash) return 'unchanged';
  await api.replace(path, {
    ...body,
    metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion },
  });
  return 'updated';
}

/** Deletes the object when `ownerUid` owns it; anything else at that name is not ours to delete. */
export async function deleteOwned(api: KubeClient, path: string, ownerUid: string): Promise<void> {
  const existing = await api.getOptional<KubeObject>(path);
  if (existing?.metadata.ownerReferences?.some((o) => o.uid === ownerUid)) await api.delete(path);
}

/**
 * Creates the object at `collection/name` when missing, and never writes it again: for objects
 * whose content never changes, so the operator needs no right to update them. 'conflict' when an
 * object of that name is not the owner's.
 */
export async function createOwned(
  api: KubeClient,
  collection: string,
  desired: KubeObject,
  ownerUid: string,
): Promise<'created' | 'unchanged' | 'conflict'> {
  const path = `${collection}/${encodeURIComponent(desired.metadata.name)}`;
  const ours = (object: KubeObject) =>
    object.metadata.ownerReferences?.some((o) => o.uid === ownerUid) ? 'unchanged' : 'conflict';
  const existing = await api.getOptional<KubeObject>(path);
  if (existing) return ours(existing);
  try {
    await api.create(collection, desired);
  } catch (error) {
    if (!isConflict(error)) throw error;
    // Made meanwhile (another replica, or someone else): whose it is decides.
    return ours(await api.get<KubeObject>(path));
  }
  return 'created';
}
