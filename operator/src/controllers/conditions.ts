/** A metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type DesiredCondition = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

/**
 * The conditions to write: `desired`, stamped with the generation they describe, each keeping its
 * previous lastTransitionTime while its status has not changed, so an unchanged world writes an
 * unchanged status (and so causes no further watch events).
 */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  desired: readonly DesiredCondition[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  return desired.map((condition) => {
    const before = previous?.find((c) => c.type === condition.type);
    return {
      ...condition,
      ...(generation !== undefined && { observedGeneration: generation }),
      lastTransitionTime:
        before && before.status === condition.status ? before.lastTransitionTime : rfc3339(now),
    };
  });
}

/** Ready, Reconciling and Stalled, as kstatus reads them, for one outcome of a reconcile. */
export function standardConditions(
  outcome:
    | { kind: 'unknown' }
    | { kind: 'ready'; reason: string; message: string }
    | { kind: 'stalled'; reason: string; message: string }
    | { kind: 'retrying'; reason: string; message: string },
): DesiredCondition[] {
  switch (outcome.kind) {
    case 'unknown':
      return [
        {
          type: 'Ready',
          status: 'Unknown',
          reason: 'Reconciling',
          message: 'First seen; not reconciled yet',
        },
        {
          type: 'Reconciling',
          status: 'True',
          reason: 'Reconciling',
          message: 'First seen; not reconciled yet',
        },
        {
          type: 'Stalled',
          status: 'Unknown',
          reason: 'Reconciling',
          message: 'First seen; not reconciled yet',
        },
      ];
    case 'ready':
      return [
        { type: 'Ready', status: 'True', reason: outcome.reason, message: outcome.message },
        { type: 'Reconciling', status: 'False', reason: outcome.reason, message: '' },
        { type: 'Stalled', status: 'False', reason: outcome.reason, message: '' },
      ];
    case 'stalled':
      // Waiting for a person: a missing reference or an invalid spec does not fix itself.
      return [
        { type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message },
        { type: 'Reconciling', status: 'False', reason: outcome.reason, message: '' },
        { type: 'Stalled', status: 'True', reason: outcome.reason, message: outcome.message },
      ];
    case 'retrying':
      return [
        { type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message },
        { type: 'Reconciling', status: 'True', reason: outcome.reason, message: outcome.message },
        { type: 'Stalled', status: 'False', reason: outcome.reason, message: '' },
      ];
  }
}

/** metav1.Time: RFC 3339 in seconds. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
