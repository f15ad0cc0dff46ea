import Type, { type Static } from 'typebox';
import { ApprovalRequestSpec, type ApprovalRequestStatus } from '../../../crds/approval-request.ts';

/**
 * What a sidecar and the operator say to each other about approvals, over HTTPS on the operator's
 * webhook port (the sidecar authenticates with its projected service-account token):
 *
 *   POST /approvals/v1/requests                  NewApprovalRequest → ApprovalRequestView (201, or 200 when it exists)
 *   GET  /approvals/v1/requests/ID?waitSeconds=N  the view, once it is no longer Pending or after N s (≤ 30)
 *   POST /approvals/v1/requests/ID/withdraw      the client cancelled while it waited
 *   POST /approvals/v1/requests/ID/executed      the approved statement ran
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
