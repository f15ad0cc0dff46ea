import Type, { type Static } from 'typebox';
import { ObjectName, Subject, stringEnum } from './common.ts';

/**
 * A statement held for approval in a sidecar, as the operator writes it on the sidecar's behalf (the
 * sidecar has no API credentials). The spec is what the request is about and never changes; the
 * status is the decision. Who decided is stamped by the operator's admission webhook from the
 * request's authenticated user (`userInfo`), never taken from what the client wrote: see
 * docs/approvals.md, "Who decided, in Kubernetes".
 */

export const APPROVAL_REQUEST_PHASES = [
  'Pending',
  'Approved',
  'Denied',
  'Expired',
  'Executed',
  'Withdrawn',
] as const;

export const APPROVAL_VERDICTS = ['approve', 'deny'] as const;

const Timestamp = (description: string) => Type.String({ format: 'date-time', description });

/** A requireApproval rule that held the statement, with what it says about deciding. */
const HoldingRule = Type.Object(
  {
    guardrail: Type.String({
      ...ObjectName,
      description: "The Guardrail's name, or the MaskingPolicy's for an access request.",
    }),
    // An access request's rule is its MaskingPolicy's `accessRequests`, which no Guardrail rule is called.
    rule: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?|accessRequests)$',
      description: "The Guardrail rule's name, or accessRequests for an access request.",
    }),
    namespace: Type.Optional(
      Type.String({
        minLength: 1,
        description: "The Guardrail's namespace (ServiceAccount approvers default to it).",
      }),
    ),
    approvers: Type.Array(Subject, {
      minItems: 1,
      description: 'Who may decide: users, groups, service accounts.',
    }),
    allowSelfApproval: Type.Boolean({ description: 'Whether the requester may decide their own request.' }),
    waitSeconds: Type.Integer({ minimum: 1 }),
    ttlSeconds: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

export const ApprovalRequestSpec = Type.Object(
  {
    identity: Type.Object(
      {
        subject: Type.String({ minLength: 1, description: 'Who sent the statement.' }),
        groups: Type.Array(Type.String()),
      },
      { additionalProperties: false, description: 'The requester, as the sidecar authenticated it.' },
    ),
    database: Type.String({ minLength: 1 }),
    statement: Type.String({
      maxLength: 262144,
      description: 'The exact text an approval releases; visible to whoever may read this object.',
    }),
    parametersHash: Type.String({
      maxLength: 64,
      description: "SHA-256 of the statement's bound parameters ('' for none).",
    }),
    fingerprint: Type.Optional(
      Type.String({ description: "A digest of the statement's shape: what an approval of the shape binds." }),
    ),
    shape: Type.Optional(
      Type.String({
        maxLength: 262144,
        description:
          'The statement with literals as placeholders: what notifications carry, never the values.',
      }),
    ),
    rules: Type.Array(HoldingRule, { minItems: 1 }),
    impact: Type.Optional(
      Type.Object(
        {
          affectedRows: Type.Optional(Type.Integer({ minimum: 0 })),
          estimatedRows: Type.Optional(Type.Number({ minimum: 0 })),
          dependents: Type.Optional(Type.Array(Type.String())),
          sensitiveColumns: Type.Optional(Type.Array(Type.String())),
          tables: Type.Optional(Type.Array(Type.String())),
        },
        { additionalProperties: false, description: 'What the statement would do, as far as measured.' },
      ),
    ),
    access: Type.Optional(
      Type.Object(
        {
          columns: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 100 }),
          forSeconds: Type.Integer({ minimum: 1 }),
          issuer: Type.Optional(
            Type.String({ description: "The requester's token issuer; absent for a local user." }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'A request for clear access to masked columns, not a statement: approved, the requester sees them in clear for forSeconds.',
        },
      ),
    ),
    requestedBy: Type.String({
      minLength: 1,
      description: 'The sidecar that asked: its service account, from the TokenReview of its token.',
    }),
    requestedByPod: Type.Optional(
      Type.Object(
        { name: Type.String({ minLength: 1 }), uid: Type.String({ minLength: 1 }) },
        {
          additionalProperties: false,
          description:
            "The sidecar's pod, from the TokenReview of its pod-bound token: a restarted sidecar ends its own earlier Pending requests.",
        },
      ),
    ),
    requestedAt: Timestamp('When the sidecar asked.'),
    expiresAt: Timestamp('A request no one decided expires then.'),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      { rule: 'self == oldSelf', message: 'the spec of an ApprovalRequest is immutable' },
    ],
  },
);

export const ApprovalRequestStatus = Type.Object(
  {
    phase: Type.Optional(stringEnum(APPROVAL_REQUEST_PHASES)),
    decision: Type.Optional(
      Type.Object(
        {
          verdict: stringEnum(APPROVAL_VERDICTS, {
            description: 'What the approver wrote: approve or deny.',
          }),
          reason: Type.String({
            minLength: 1,
            maxLength: 1000,
            description: 'What the approver wrote: why.',
          }),
          shapeForSeconds: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 2592000,
              description:
                "Approve the statement's shape for the requester for this long, not only this text.",
            }),
          ),
          by: Type.Optional(
            Type.String({ description: "Stamped by the operator's webhook from the API request's user." }),
          ),
          groups: Type.Optional(Type.Array(Type.String(), { description: "Stamped: the user's groups." })),
          at: Type.Optional(Timestamp('Stamped: when the decision was admitted.')),
          condition: Type.Optional(
            Type.String({ description: 'The auto-approval condition, when no person decided.' }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    executedAt: Type.Optional(Timestamp('When the approved statement ran.')),
    message: Type.Optional(Type.String({ description: 'Why the phase is what it is.' })),
  },
  { additionalProperties: false },
);

export type ApprovalRequestSpecValue = Static<typeof ApprovalRequestSpec>;
export type ApprovalRequestStatusValue = Static<typeof ApprovalRequestStatus>;
export type ApprovalRequestPhase = (typeof APPROVAL_REQUEST_PHASES)[number];
