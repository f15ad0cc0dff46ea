import Type, { type Static } from 'typebox';
import { ObjectName, stringEnum } from './common.ts';

/**
 * What the operator writes under `.status` of each kind, through the status subresource. The
 * conditions follow metav1.Condition field for field, so generic tools (kubectl wait, Argo CD, kstatus)
 * read them as they read built-in kinds.
 */

/** The condition types every kind reports; kstatus and our Argo CD health checks read these three. */
export const CONDITION_TYPES = ['Ready', 'Reconciling', 'Stalled'] as const;
export type ConditionName = (typeof CONDITION_TYPES)[number];

export const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

/** metav1.Condition: the same fields, limits and patterns as the Kubernetes API declares for it. */
export const Condition = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      description:
        'Ready, Reconciling or Stalled; a DatabaseAccess also reports AuditShipping when the operator ships to a collector.',
    }),
    status: stringEnum(CONDITION_STATUSES),
    observedGeneration: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        description: 'The .metadata.generation the condition was set for.',
      }),
    ),
    lastTransitionTime: Type.String({
      format: 'date-time',
      description: 'When the status last changed from one value to another.',
    }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: 'A CamelCase word for programs: why the condition is what it is.',
    }),
    message: Type.String({ maxLength: 32768, description: 'For people: what happened, what to do.' }),
  },
  { additionalProperties: false },
);

export const Conditions = Type.Array(Condition, {
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

export const ObservedGeneration = Type.Integer({
  format: 'int64',
  minimum: 0,
  description: 'The .metadata.generation the operator last acted on.',
});

/** The status of a Guardrail and of a MaskingPolicy: whether the operator accepted the current spec. */
export const CommonStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
  },
  { additionalProperties: false },
);

/** How far injection got for one selected workload. */
export const WorkloadStatus = Type.Object(
  {
    kind: Type.String({ minLength: 1, description: 'Deployment, StatefulSet, DaemonSet, ... or Pod.' }),
    name: ObjectName,
    pods: Type.Integer({ minimum: 0, description: 'Pods of the workload that exist now.' }),
    injected: Type.Integer({ minimum: 0, description: 'Pods that carry a Gatehouse sidecar.' }),
    current: Type.Integer({
      minimum: 0,
      description: 'Pods whose sidecar was injected for the current spec and bundle.',
    }),
    missing: Type.Optional(
      Type.Array(ObjectName, {
        description:
          'Pods that should carry the current sidecar and do not: created while the webhook was unreachable, or injected for an older spec.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const DatabaseAccessStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    bundle: Type.Optional(
      Type.Object(
        {
          configMap: ObjectName,
          hash: Type.String({ minLength: 1, description: 'Digest of the compiled policy bundle.' }),
        },
        { additionalProperties: false, description: 'The policy bundle compiled from this access.' },
      ),
    ),
    workloads: Type.Optional(
      Type.Array(WorkloadStatus, {
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['kind', 'name'],
      }),
    ),
    conflicts: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Other DatabaseAccesses that select the same workloads, as namespace/name.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type StatusCondition = Static<typeof Condition>;
export type CommonStatusType = Static<typeof CommonStatus>;
export type WorkloadStatusType = Static<typeof WorkloadStatus>;
export type DatabaseAccessStatusType = Static<typeof DatabaseAccessStatus>;
export type GuardrailStatusType = CommonStatusType;
export type MaskingPolicyStatusType = CommonStatusType;
