import Type, { type Static } from 'typebox';
import { documentSchema, LabelName, Subject, stringEnum } from './common.ts';

/**
 * What a guardrail rule can match. The SQL analysis reports each of these as a finding on a
 * statement; sidecar/src/sql/analyze/statement-facts.ts says exactly when each one is reported.
 */
export const GUARDRAIL_RULE_KINDS = [
  'drop',
  'truncate',
  'delete-without-where',
  'update-without-where',
  'alter',
  'grant',
  'multi-statement',
  'dynamic-sql',
  'file-access',
  'copy-program',
  'identity-change',
  'unknown-statement',
] as const;
export type GuardrailRuleKind = (typeof GUARDRAIL_RULE_KINDS)[number];

export const GUARDRAIL_ACTIONS = ['block', 'warn', 'requireApproval'] as const;
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];

export const GuardrailRule = Type.Object(
  {
    name: LabelName,
    kinds: Type.Array(stringEnum(GUARDRAIL_RULE_KINDS), { minItems: 1 }),
    tables: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Glob patterns (`*`, `?`) over `schema.table` or `table` (any schema). Without it the rule matches every table. Statements whose tables cannot be known (dynamic SQL, identity changes...) match any pattern.',
      }),
    ),
    subjects: Type.Optional(
      Type.Array(Subject, { description: 'Only for these subjects; without it, for everyone.' }),
    ),
    databases: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Glob patterns over the upstream database name; without it, every database.',
      }),
    ),
    action: Type.Optional(stringEnum(GUARDRAIL_ACTIONS, { default: 'block' })),
    message: Type.Optional(
      Type.String({ description: 'Shown to the client after the reason; say what to do instead.' }),
    ),
  },
  { additionalProperties: false },
);

export const GuardrailSpec = Type.Object(
  {
    mode: Type.Optional(
      stringEnum(['enforce', 'dryRun'], {
        default: 'enforce',
        description: 'dryRun records what the rules would have done and lets every statement run.',
      }),
    ),
    rules: Type.Array(GuardrailRule, {
      minItems: 1,
      // The API server refuses two rules with one name: audit records and messages name the rule.
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  },
  { additionalProperties: false },
);

export const GuardrailDocument = documentSchema('Guardrail', GuardrailSpec);

export type GuardrailRuleSpec = Static<typeof GuardrailRule>;
export type GuardrailSpecType = Static<typeof GuardrailSpec>;
export type GuardrailDocumentType = Static<typeof GuardrailDocument>;
