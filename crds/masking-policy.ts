import Type, { type Static } from 'typebox';
import { type CelRule, documentSchema, Subject, stringEnum } from './common.ts';

export const MASKING_CLASSIFIERS = [
  'email',
  'phone',
  'ssn',
  'national-id',
  'card',
  'iban',
  'ip',
  'person-name',
  'street-address',
  'date-of-birth',
  'secret',
] as const;
export type MaskingClassifier = (typeof MASKING_CLASSIFIERS)[number];

export const MASKING_METHODS = ['redact', 'partial', 'hash', 'tokenize', 'nullify'] as const;
export type MaskingMethod = (typeof MASKING_METHODS)[number];

export const MaskingRule = Type.Object(
  {
    columns: Type.Optional(
      Type.Array(
        Type.String({
          minLength: 1,
          pattern: '^[^.\\s]+(\\.[^.\\s]+){1,2}$',
          description: '`table.column` or `schema.table.column`; `*` and `?` are wildcards.',
        }),
      ),
    ),
    classifiers: Type.Optional(Type.Array(stringEnum(MASKING_CLASSIFIERS))),
    method: stringEnum(MASKING_METHODS),
  },
  {
    additionalProperties: false,
    description: 'Needs columns, classifiers or both.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.columns) || has(self.classifiers)',
        message: 'a masking rule needs columns, classifiers or both',
      },
    ] satisfies CelRule[],
  },
);

export const MaskingExemption = Type.Object(
  {
    subject: Subject,
    expires: Type.String({
      format: 'date-time',
      description: 'RFC 3339 time after which the subject sees masked values again.',
    }),
  },
  { additionalProperties: false },
);

/** Who may open clear access to this policy's masked columns for a while (`gatehouse request-access`). */
export const MaskingAccessRequests = Type.Object(
  {
    approvers: Type.Array(Subject, {
      minItems: 1,
      description: 'Who may approve or deny a request for clear access: users, groups, service accounts.',
    }),
    maxDurationSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 604800,
        default: 3600,
        description:
          'The longest clear access a request may ask for; longer requests are refused. A request not decided within its duration expires.',
      }),
    ),
    allowSelfApproval: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Whether a requester who is also an approver may approve their own request.',
      }),
    ),
    openOnRefusalSeconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 604800,
        description:
          'When set, a statement refused because it filters or compares on masked columns opens a request for clear access to them, for this long, and its error names the request. At most maxDurationSeconds.',
      }),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [
      {
        rule: 'self.approvers.size() >= 1',
        message: 'accessRequests needs at least one approver',
      },
      {
        rule: '!has(self.openOnRefusalSeconds) || self.openOnRefusalSeconds <= (has(self.maxDurationSeconds) ? self.maxDurationSeconds : 3600)',
        message: 'openOnRefusalSeconds may not exceed maxDurationSeconds',
      },
    ] satisfies CelRule[],
  },
);

export const MaskingPolicySpec = Type.Object(
  {
    autoDetect: Type.Optional(
      Type.Boolean({
        default: true,
        description: 'Classify columns by name and values by content, and mask what looks sensitive.',
      }),
    ),
    rules: Type.Optional(Type.Array(MaskingRule, { default: [] })),
    exemptions: Type.Optional(Type.Array(MaskingExemption, { default: [] })),
    accessRequests: Type.Optional(MaskingAccessRequests),
    allowPredicatesOnMasked: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'Allow WHERE, JOIN, ORDER BY and GROUP BY over masked columns. Off, because such predicates reveal values one question at a time.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const MaskingPolicyDocument = documentSchema('MaskingPolicy', MaskingPolicySpec);

export type MaskingAccessRequestsSpec = Static<typeof MaskingAccessRequests>;
export type MaskingRuleSpec = Static<typeof MaskingRule>;
export type MaskingPolicySpecType = Static<typeof MaskingPolicySpec>;
export type MaskingPolicyDocumentType = Static<typeof MaskingPolicyDocument>;
