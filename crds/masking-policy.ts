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

export type MaskingRuleSpec = Static<typeof MaskingRule>;
export type MaskingPolicySpecType = Static<typeof MaskingPolicySpec>;
export type MaskingPolicyDocumentType = Static<typeof MaskingPolicyDocument>;
