import type { ReconcileResult } from '../runtime/controller-runner.ts';
import type { KubeClient, ObjectMeta } from '../runtime/kube-api.ts';

/**
 * The finalizer step every controller that owns objects takes first: on deletion, `cleanUp` (deleting
 * what it made, for clusters without a garbage collector) and then the finalizer's removal; otherwise
 * the finalizer added if missing. Returns the reconcile's result when the object is going away, and
 * undefined when the controller should go on converging it.
 */
export async function finalizerStep(
  api: KubeClient,
  path: string,
  meta: ObjectMeta,
  finalizer: string,
  cleanUp: () => Promise<void>,
): Promise<ReconcileResult | undefined> {
  const finalizers = meta.finalizers ?? [];
  if (meta.deletionTimestamp) {
    if (!finalizers.includes(finalizer)) return { outcome: 'deleting' };
    await cleanUp();
    await setFinalizers(
      api,
      path,
      meta,
      finalizers.filter((f) => f !== finalizer),
    );
    return { outcome: 'finalized' };
  }
  if (!finalizers.includes(finalizer)) await setFinalizers(api, path, meta, [...finalizers, finalizer]);
  return undefined;
}

async function setFinalizers(
  api: KubeClient,
  path: string,
  meta: ObjectMeta,
  finalizers: string[],
): Promise<void> {
  // resourceVersion makes this a compare-and-swap: another writer's finalizer is never dropped.
  await api.patch(path, { metadata: { finalizers, resourceVersion: meta.resourceVersion } });
}
