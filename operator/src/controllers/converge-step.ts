import type { ReconcileResult } from '../runtime/controller-runner.ts';
import type { KubeClient } from '../runtime/kube-api.ts';
import { type Condition, type DesiredCondition, standardConditions } from './conditions.ts';
import { writeStatus } from './status-writer.ts';

interface StatusWithConditions {
  readonly conditions?: Condition[];
  readonly observedGeneration?: number;
}

/**
 * How every controller of a kind with status converges one object: conditions Unknown before the
 * first pass, then `converge`; when it throws, Ready False with the error (and an event by `report`)
 * before the error goes to the work queue's backoff.
 */
export async function convergeWithStatus<S extends StatusWithConditions>(step: {
  readonly api: KubeClient;
  readonly path: string;
  readonly generation: number | undefined;
  readonly current: S | undefined;
  /** The object's conditions merged with `desired` (mergeConditions over its status). */
  readonly conditions: (desired: DesiredCondition[]) => Condition[];
  readonly report: (message: string, status: S) => Promise<void>;
  readonly converge: (status: S) => Promise<ReconcileResult>;
}): Promise<ReconcileResult> {
  let status = (step.current ?? {}) as S;
  if (!status.conditions?.length) {
    status = { ...status, conditions: step.conditions(standardConditions({ kind: 'unknown' })) };
    await writeStatus(step.api, step.path, step.current, status);
  }
  try {
    return await step.converge(status);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const next = {
      ...status,
      observedGeneration: step.generation,
      conditions: step.conditions(
        standardConditions({ kind: 'retrying', reason: 'ReconcileError', message }),
      ),
    };
    await step.report(message, status);
    await writeStatus(step.api, step.path, status, next).catch(() => {});
    throw error;
  }
}
