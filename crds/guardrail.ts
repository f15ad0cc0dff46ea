import Type, { type Static } from 'typebox';
import { type CelRule, documentSchema, LabelName, ObjectName, Subject, stringEnum } from './common.ts';

/**
 * What the SQL analysis reports as a finding on a statement; sidecar/src/sql/analyze/statement-facts.ts
 * says exactly when each one is reported.
 */
export const FINDING_KINDS = [
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

/**
 * What a guardrail rule can match: the findings, and `unknown-shape`, which the analysis cannot
 * report: a statement whose shape no person approved for its identity (see docs/approvals.md).
 */
export const GUARDRAIL_RULE_KINDS = [...FINDING_KINDS, 'unknown-shape'] as const;
export type GuardrailRuleKind = (typeof GUARDRAIL_RULE_KINDS)[number];

/** Kinds whose findings name the tables they concern, so that a rule's `tables` can narrow them. */
export const TABLE_RULE_KINDS = [
  'drop',
  'truncate',
  'delete-without-where',
  'update-without-where',
  'alter',
  'grant',
] as const satisfies readonly GuardrailRuleKind[];

/**
 * The checks of a rule that its schema cannot say, as the API server's CEL rules and, with the same
 * messages, as load-policy.ts's checks of local policy files. An empty list would silently match
 * nothing (tables, databases) or nobody (subjects); tables on kinds that never name tables would
 * silently match every statement of them.
 */
export const GUARDRAIL_RULE_CHECKS = {
  kindsOrRowLimit: {
    rule: 'has(self.kinds) != (has(self.maxAffectedRows) || has(self.maxAffectedRowsPerMinute))',
    message:
      'a rule either matches findings (kinds) or limits the rows statements change (maxAffectedRows, maxAffectedRowsPerMinute): give one of the two, in separate rules if you need both',
  },
  tablesNeedTableKind: {
    rule: `!has(self.tables) || !has(self.kinds) || self.kinds.exists(k, k in [${TABLE_RULE_KINDS.map((k) => `'${k}'`).join(', ')}])`,
    message: `tables narrows only the kinds whose findings name tables (${TABLE_RULE_KINDS.join(', ')}); this rule has none of them, so leave tables out`,
  },
  tablesNotEmpty: {
    rule: '!has(self.tables) || size(self.tables) > 0',
    message:
      'tables is empty and would match no table; list patterns, or leave tables out to match every table',
  },
  subjectsNotEmpty: {
    rule: '!has(self.subjects) || size(self.subjects) > 0',
    message:
      'subjects is empty and would match nobody; list subjects, or leave subjects out to match everyone',
  },
  approvalNeedsRequireApproval: {
    rule: "!has(self.approval) || (has(self.action) && self.action == 'requireApproval') || (has(self.kinds) && self.kinds.exists(k, k == 'unknown-shape'))",
    message:
      'approval says who may release a held statement or approve learned shapes; it belongs only on a rule whose action is requireApproval or whose kinds include unknown-shape',
  },
  databasesNotEmpty: {
    rule: '!has(self.databases) || size(self.databases) > 0',
    message:
      'databases is empty and would match no database; list patterns, or leave databases out to match every database',
  },
} as const satisfies Record<string, CelRule>;

export const GUARDRAIL_ACTIONS = ['block', 'warn', 'requireApproval'] as const;
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];

export const GUARDRAIL_MODES = ['enforce', 'dryRun'] as const;

export const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const ClockTime = Type.String({
  pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$',
  description: '`HH:MM`, 24-hour clock.',
});

/** A recurring span of the week in one time zone; `to` before `from` runs past midnight. */
export const ApprovalWindow = Type.Object(
  {
    days: Type.Optional(
      Type.Array(stringEnum(WEEKDAYS), {
        minItems: 1,
        'x-kubernetes-list-type': 'set',
        description: 'The days the window opens on (the day `from` falls on); without it, every day.',
      }),
    ),
    from: ClockTime,
    to: ClockTime,
    timeZone: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'An IANA time zone such as `Europe/Paris`; without it, UTC.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const AUTO_APPROVE_TESTS = [
  'subjects',
  'windows',
  'kinds',
  'tables',
  'maxAffectedRows',
  'sensitiveColumns',
  'noDenialForHours',
] as const;

export const AUTO_APPROVE_CHECKS = {
  someTest: {
    rule: AUTO_APPROVE_TESTS.map((test) => `has(self.${test})`).join(' || '),
    message: `a condition with no test would approve every statement the rule holds; give at least one of ${AUTO_APPROVE_TESTS.join(', ')}`,
  },
} as const satisfies Record<string, CelRule>;

/**
 * A condition under which a held statement is approved without a person. Every field given must hold;
 * a fact the proxy could not establish (rows not measured, tables not known) fails the field.
 */
export const AutoApproveCondition = Type.Object(
  {
    name: LabelName,
    subjects: Type.Optional(
      Type.Array(Subject, { minItems: 1, description: 'The requester is one of these.' }),
    ),
    windows: Type.Optional(
      Type.Array(ApprovalWindow, {
        minItems: 1,
        maxItems: 14,
        description: 'The statement arrives inside one of these windows.',
      }),
    ),
    kinds: Type.Optional(
      Type.Array(stringEnum(GUARDRAIL_RULE_KINDS, { maxLength: 32 }), {
        minItems: 1,
        'x-kubernetes-list-type': 'set',
        description: 'Every finding of the statement is of one of these kinds.',
      }),
    ),
    tables: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          'Every table the statement names matches one of these patterns (`schema.table` globs; a pattern with a schema matches only tables whose schema the statement names).',
      }),
    ),
    maxAffectedRows: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'The rows the statement was measured to change (under a rolled-back savepoint) are at most this many.',
      }),
    ),
    sensitiveColumns: Type.Optional(
      stringEnum(['none'], {
        description: '`none`: the statement touches no masked or sensitive column.',
      }),
    ),
    noDenialForHours: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 720,
        description: 'No request of the requester was denied in the last this many hours.',
      }),
    ),
  },
  { additionalProperties: false, 'x-kubernetes-validations': [AUTO_APPROVE_CHECKS.someTest] },
);

export const NOTIFY_TYPES = ['slack', 'webhook'] as const;

export const NOTIFY_CHECKS = {
  urlOrSecret: {
    rule: 'has(self.url) != has(self.urlSecretRef)',
    message: 'give url or urlSecretRef, one of the two',
  },
} as const satisfies Record<string, CelRule>;

/**
 * Where a new request is announced. `slack`: a Slack-compatible incoming webhook (Slack, Mattermost,
 * Rocket.Chat take the same `text`/`blocks` message); `webhook`: the request as JSON.
 */
export const NotifyTarget = Type.Object(
  {
    type: stringEnum(NOTIFY_TYPES),
    url: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 2048,
        pattern: '^https?://',
        description:
          'The endpoint. An incoming-webhook URL is a credential: in a cluster prefer urlSecretRef, which keeps it out of the Guardrail.',
      }),
    ),
    onDecision: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Announce the decision too (approved, denied, expired), not only the new request.',
      }),
    ),
    urlSecretRef: Type.Optional(
      Type.Object(
        {
          name: ObjectName,
          key: Type.String({ minLength: 1, maxLength: 253 }),
        },
        {
          additionalProperties: false,
          description:
            "A Secret in the Guardrail's namespace holding the URL. A standalone proxy reads it as the file `$GATEHOUSE_NOTIFY_SECRETS_DIR/NAME/KEY` (the layout of a mounted Secret).",
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': [NOTIFY_CHECKS.urlOrSecret],
  },
);

/** Who may release a statement a requireApproval rule holds, and for how long it waits. */
export const ApprovalSettings = Type.Object(
  {
    approvers: Type.Array(Subject, {
      minItems: 1,
      description: 'Who may approve or deny: users, groups, service accounts.',
    }),
    waitSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 3600,
        default: 120,
        description:
          'How long the session waits for a decision before it answers that the request is still pending.',
      }),
    ),
    ttlSeconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 604800,
        default: 900,
        description:
          'How long a request stays open for a decision, and how long an approval stays usable: a client that gave up waiting may run the identical statement once within it.',
      }),
    ),
    allowSelfApproval: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Whether a requester who is also an approver may approve their own request.',
      }),
    ),
    notify: Type.Optional(
      Type.Array(NotifyTarget, {
        minItems: 1,
        maxItems: 10,
        description:
          'Where each new request is announced; a delivery that fails is logged and never holds the statement longer.',
      }),
    ),
    autoApprove: Type.Optional(
      Type.Array(AutoApproveCondition, {
        minItems: 1,
        maxItems: 20,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        description: 'Conditions that approve without a person; the decision names the condition.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const GuardrailRule = Type.Object(
  {
    name: LabelName,
    // maxLength and maxItems bound the API server's cost estimate of the CEL rules below.
    kinds: Type.Optional(
      Type.Array(stringEnum(GUARDRAIL_RULE_KINDS, { maxLength: 32 }), {
        minItems: 1,
        maxItems: GUARDRAIL_RULE_KINDS.length,
        // A kind named twice is a typo; the API server refuses duplicates in a set.
        'x-kubernetes-list-type': 'set',
        description:
          'The findings this rule matches (see docs/guardrails.md). A rule has kinds or a row limit, not both.',
      }),
    ),
    maxAffectedRows: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'The most rows one transaction may update or delete, as the database counts them (rows changed by triggers, foreign-key cascades and functions included; inserted rows are not counted). Every statement that may change rows runs under the check; one that takes its transaction over the limit is rolled back and refused with the count. Applies to statements that write a table matching `tables` (or whose tables cannot be known).',
      }),
    ),
    maxAffectedRowsPerMinute: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'The most rows one identity may update or delete over any 60 seconds, across its sessions and transactions on this proxy (each proxy counts its own sessions).',
      }),
    ),
    tables: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Glob patterns (`*`, `?`) over `schema.table` or `table` (any schema). Without it the rule matches every table. Statements whose tables cannot be known (dynamic SQL, identity changes...) match any pattern. On a row-limit rule: the statements writing a matching table.',
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
    mode: Type.Optional(
      stringEnum(GUARDRAIL_MODES, {
        description:
          "dryRun: this rule records what it would have done (an audit note and a log line) and lets the statement run, whatever its action; enforce, or without it: as the Guardrail's mode says. A Guardrail in dryRun keeps all its rules in dryRun.",
      }),
    ),
    message: Type.Optional(
      Type.String({ description: 'Shown to the client after the reason; say what to do instead.' }),
    ),
    approval: Type.Optional(ApprovalSettings),
  },
  {
    additionalProperties: false,
    'x-kubernetes-validations': Object.values(GUARDRAIL_RULE_CHECKS) satisfies CelRule[],
  },
);

export const GuardrailSpec = Type.Object(
  {
    mode: Type.Optional(
      stringEnum(GUARDRAIL_MODES, {
        default: 'enforce',
        description: 'dryRun records what the rules would have done and lets every statement run.',
      }),
    ),
    rules: Type.Array(GuardrailRule, {
      minItems: 1,
      // Bounds the API server's cost estimate of the rules' CEL checks; a guardrail of more rules is
      // better split into several Guardrails.
      maxItems: 100,
      // The API server refuses two rules with one name: audit records and messages name the rule.
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  },
  { additionalProperties: false },
);

export const GuardrailDocument = documentSchema('Guardrail', GuardrailSpec);

export type GuardrailRuleSpec = Static<typeof GuardrailRule>;
export type ApprovalSettingsSpec = Static<typeof ApprovalSettings>;
export type AutoApproveConditionSpec = Static<typeof AutoApproveCondition>;
export type ApprovalWindowSpec = Static<typeof ApprovalWindow>;
export type NotifyTargetSpec = Static<typeof NotifyTarget>;
export type GuardrailSpecType = Static<typeof GuardrailSpec>;
export type GuardrailDocumentType = Static<typeof GuardrailDocument>;
