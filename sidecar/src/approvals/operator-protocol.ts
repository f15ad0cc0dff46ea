import Type, { type Static } from 'typebox';
import {
  ApprovalRequestSpec,
  type ApprovalRequestSpecValue,
  type ApprovalRequestStatus,
} from '../../../crds/approval-request.ts';

/**
 * What a sidecar and the operator say to each other about approvals, over HTTPS on the operator's
 * webhook port (the sidecar authenticates with its projected service-account token):
 *
 *   POST /approvals/v1/requests                  NewApprovalRequest → ApprovalRequestView (201, or 200 when it exists)
 *   GET  /approvals/v1/requests/ID?waitSeconds=N  the view, once it is no longer Pending or after N s (≤ 30)
 *   POST /approvals/v1/requests/ID/withdraw      the client cancelled while it waited
 *   POST /approvals/v1/requests/ID/executed      the approved statement ran
 *   POST /approvals/v1/requests/restore          RestoreApprovals → RestoreAnswer: a sidecar starting again
 *
 * Errors are JSON `{"problem", "message"}`, as on a standalone proxy's approvals API.
 */
export const OPERATOR_APPROVALS_PREFIX = '/approvals/v1/requests';
export const MAX_WAIT_SECONDS = 30;

const spec = ApprovalRequestSpec.properties;

export const NewApprovalRequest = Type.Object(
  {
    id: Type.String({
      pattern: '^ar-[0-9a-f]{16}$',
      description: "The sidecar's request id; the object's name.",
    }),
    identity: spec.identity,
    database: spec.database,
    statement: spec.statement,
    parametersHash: spec.parametersHash,
    fingerprint: spec.fingerprint,
    shape: spec.shape,
    rules: spec.rules,
    impact: spec.impact,
    access: spec.access,
    autoApproved: Type.Optional(
      Type.Object(
        { condition: Type.String({ minLength: 1, maxLength: 1000 }) },
        {
          additionalProperties: false,
          description: "The sidecar's rule conditions released it without a person.",
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type NewApprovalRequestValue = Static<typeof NewApprovalRequest>;

/** What a sidecar is told of a request: its phase and, once decided, the stamped decision. */
export interface ApprovalRequestView {
  readonly id: string;
  readonly namespace: string;
  readonly phase: NonNullable<Static<typeof ApprovalRequestStatus>['phase']>;
  readonly decision?: Static<typeof ApprovalRequestStatus>['decision'];
}

/**
 * A sidecar starting: what of its service account's earlier requests on `database` still stands, and
 * its earlier process's requests ended. `keep` are the ids this process made already (a restore
 * retried after sessions began): they are its own, live, and never ended.
 */
export const RestoreApprovals = Type.Object(
  {
    database: spec.database,
    keep: Type.Array(Type.String({ pattern: '^ar-[0-9a-f]{16}$' }), { maxItems: 10000 }),
  },
  { additionalProperties: false },
);
export type RestoreApprovalsValue = Static<typeof RestoreApprovals>;

/** An ApprovalRequest as a starting sidecar is told of it. */
export interface RestoredRequestView {
  readonly id: string;
  readonly phase: ApprovalRequestView['phase'];
  readonly spec: Omit<ApprovalRequestSpecValue, 'requestedBy' | 'requestedByPod'>;
  readonly decision?: ApprovalRequestView['decision'];
  /** Until when its approval counts (ISO): an access request's end; absent for a statement's. */
  readonly until?: string;
}

export interface RestoreAnswer {
  /** Approvals that outlive their session: shapes approved for a period, approved access requests. */
  readonly standing: readonly RestoredRequestView[];
  /** The earlier process's requests ended now: Pending ones Withdrawn, unused approvals of an exact text Expired. */
  readonly ended: readonly RestoredRequestView[];
  /** When the requests of the service account on the database were denied (noDenialForHours). */
  readonly denials: readonly { readonly subject: string; readonly at: string }[];
}
