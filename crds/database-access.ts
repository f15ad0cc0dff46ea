import Type, { type Static } from 'typebox';
import { type CelRule, documentSchema, ObjectName, Subject, stringEnum } from './common.ts';

/** Statement classes a grant can allow; sidecar/src/sql/analyze/statement-catalog.ts maps statements to them. */
export const STATEMENT_CLASSES = ['read', 'write', 'ddl', 'admin'] as const;
export type StatementClass = (typeof STATEMENT_CLASSES)[number];

/** The tools of Gatehouse's MCP server (sidecar/src/mcp/tools.ts), which `spec.mcp.tools` lists. */
export const MCP_TOOLS = ['list_tables', 'describe_table', 'query', 'explain', 'execute'] as const;
export type McpTool = (typeof MCP_TOOLS)[number];

/** A resource quantity such as `500m`, `128Mi` or `1`, as Kubernetes writes them. */
const Quantity = Type.Unsafe<string | number>({
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
});

const QuantityMap = Type.Object({}, { additionalProperties: Quantity });

const SecretKeyRef = Type.Object(
  {
    name: ObjectName,
    key: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const WorkloadSelector = Type.Object(
  {
    kind: Type.Optional(
      stringEnum(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod']),
    ),
    name: Type.Optional(ObjectName),
    matchLabels: Type.Optional(Type.Object({}, { additionalProperties: Type.String() })),
  },
  {
    additionalProperties: false,
    description: 'Workloads in the same namespace that get a sidecar: kind and name, or matchLabels.',
    'x-kubernetes-validations': [
      { rule: '!has(self.name) || has(self.kind)', message: 'workloadSelector.name needs a kind' },
      {
        rule: 'has(self.name) != has(self.matchLabels)',
        message: 'workloadSelector needs either name (with kind) or matchLabels, not both',
      },
    ] satisfies CelRule[],
  },
);

const Upstream = Type.Object(
  {
    protocol: Type.Optional(
      stringEnum(['postgres', 'mysql'], {
        default: 'postgres',
        description: 'Immutable: a sidecar speaks one protocol; create a new DatabaseAccess to switch.',
        'x-kubernetes-validations': [
          {
            rule: 'self == oldSelf',
            message: 'upstream.protocol is immutable; create a new DatabaseAccess to switch protocols',
          },
        ],
      }),
    ),
    host: Type.String({ minLength: 1 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    database: Type.Optional(Type.String({ minLength: 1 })),
    credentialsSecretRef: Type.Optional(
      Type.Object(
        {
          name: ObjectName,
          userKey: Type.Optional(Type.String({ minLength: 1, default: 'username' })),
          passwordKey: Type.Optional(Type.String({ minLength: 1, default: 'password' })),
        },
        { additionalProperties: false },
      ),
    ),
    tls: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(stringEnum(['disable', 'require', 'verify-full'], { default: 'require' })),
          caSecretRef: Type.Optional(SecretKeyRef),
          serverName: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const Sidecar = Type.Object(
  {
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    image: Type.Optional(Type.String({ minLength: 1 })),
    resources: Type.Optional(
      Type.Object(
        { requests: Type.Optional(QuantityMap), limits: Type.Optional(QuantityMap) },
        { additionalProperties: false },
      ),
    ),
    rolloutStrategy: Type.Optional(
      stringEnum(['Workload', 'None'], {
        default: 'Workload',
        description: 'Workload: a change rolls the selected workloads. None: only new pods see it.',
      }),
    ),
    mcp: Type.Optional(
      Type.Object(
        {
          port: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 65535,
              default: 8808,
              description: 'The loopback port of the MCP endpoint (http://127.0.0.1:PORT/mcp).',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            "Serve MCP (Streamable HTTP) on the pod's loopback for an AI workload: each tool call is a connection to the sidecar as the workload's own identity (docs/mcp.md).",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export const DatabaseAccessSpec = Type.Object(
  {
    subjects: Type.Array(Subject, { minItems: 1 }),
    allow: Type.Array(stringEnum(STATEMENT_CLASSES), {
      minItems: 1,
      'x-kubernetes-list-type': 'set',
    }),
    guardrails: Type.Optional(
      Type.Array(ObjectName, {
        default: [],
        description: 'Names of Guardrails in the same namespace that apply to these subjects.',
      }),
    ),
    maskingPolicies: Type.Optional(
      Type.Array(ObjectName, {
        default: [],
        description: 'Names of MaskingPolicies in the same namespace that apply to these subjects.',
      }),
    ),
    mcp: Type.Optional(
      Type.Object(
        {
          tools: Type.Optional(
            Type.Array(stringEnum(MCP_TOOLS), {
              'x-kubernetes-list-type': 'set',
              description:
                'The MCP tools these subjects may call; [] for none. Absent: the tools `allow` permits (read: list_tables, describe_table, query, explain; write, ddl or admin: execute).',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            "What these subjects may do through Gatehouse's MCP server, enforced by the proxy for tool calls it receives from its own MCP server (docs/mcp.md).",
        },
      ),
    ),
    workloadSelector: Type.Optional(WorkloadSelector),
    upstream: Type.Optional(Upstream),
    sidecar: Type.Optional(Sidecar),
  },
  { additionalProperties: false },
);

export const DatabaseAccessDocument = documentSchema('DatabaseAccess', DatabaseAccessSpec);

export type DatabaseAccessSpecType = Static<typeof DatabaseAccessSpec>;
export type DatabaseAccessDocumentType = Static<typeof DatabaseAccessDocument>;
