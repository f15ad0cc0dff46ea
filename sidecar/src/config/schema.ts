import Type, { type Static } from 'typebox';
import { API_VERSION } from '../../../crds/common.ts';

/**
 * The proxy's own settings (the first document of the config file). Policy kinds (DatabaseAccess,
 * Guardrail, MaskingPolicy) are separate documents with their own schemas in crds/.
 */

const HostPort = Type.String({
  pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]*):[0-9]{1,5}$',
  description: 'HOST:PORT, for example 127.0.0.1:6432 ([::1]:6432 for IPv6)',
});

const SecretValue = Type.Object(
  {
    value: Type.Optional(Type.String({ description: 'Inline value. Prefer `file` outside development.' })),
    file: Type.Optional(
      Type.String({ description: 'Path of a file holding the value (trailing newline ignored).' }),
    ),
    env: Type.Optional(Type.String({ description: 'Name of an environment variable holding the value.' })),
  },
  { additionalProperties: false, description: 'Exactly one of value, file or env.' },
);

export const UpstreamTlsMode = Type.Enum(['disable', 'require', 'verify-full']);

const Upstream = Type.Object(
  {
    url: Type.Optional(
      Type.String({
        description:
          'postgres://USER:PASSWORD@HOST:PORT/DATABASE (or mysql://). Fields set below override the URL.',
      }),
    ),
    // No default here: the loader takes the URL's scheme first, then postgres.
    protocol: Type.Optional(Type.Enum(['postgres', 'mysql'])),
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    database: Type.Optional(Type.String({ minLength: 1 })),
    user: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), SecretValue], {
        description: 'The database user: a name, or a SecretValue (a file mounted from a Secret, in a pod).',
      }),
    ),
    password: Type.Optional(SecretValue),
    tls: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(UpstreamTlsMode),
          caFile: Type.Optional(Type.String({ description: 'CA bundle (PEM) for verify-full.' })),
          serverName: Type.Optional(Type.String({ description: 'Name to verify instead of host.' })),
        },
        { additionalProperties: false },
      ),
    ),
    connectTimeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
  },
  { additionalProperties: false },
);

const JwtVerification = Type.Object(
  {
    issuer: Type.String({ minLength: 1, description: 'Expected `iss` claim.' }),
    audience: Type.Union(
      [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })],
      {
        description: 'Expected `aud` claim (one value or a list, any of which may match).',
      },
    ),
    jwksUrl: Type.Optional(Type.String({ description: "URL of the issuer's JSON Web Key Set." })),
    jwksFile: Type.Optional(Type.String({ description: 'A JSON Web Key Set in a local file.' })),
    publicKeyFile: Type.Optional(
      Type.String({ description: 'A PEM public key (SPKI) that signs the tokens.' }),
    ),
    algorithms: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Accepted JWS algorithms; default: RS256, ES256 and the rest of the asymmetric ones.',
      }),
    ),
    clockToleranceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 300, default: 30 })),
    groupsClaim: Type.Optional(
      Type.String({ default: 'groups', description: 'Claim that lists the groups of an OIDC user.' }),
    ),
    subjectClaim: Type.Optional(
      Type.String({ default: 'sub', description: 'Claim that names the subject.' }),
    ),
  },
  { additionalProperties: false },
);

const LocalUser = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1, description: 'Development only: stored and compared in clear.' }),
    groups: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);

const IdentityConfig = Type.Object(
  {
    mode: Type.Enum(['token', 'token-file', 'local']),
    token: Type.Optional(JwtVerification),
    tokenFile: Type.Optional(
      Type.Object(
        {
          path: Type.String({ minLength: 1, description: "The pod's projected service-account token." }),
          verify: JwtVerification,
        },
        { additionalProperties: false },
      ),
    ),
    local: Type.Optional(
      Type.Object({ users: Type.Array(LocalUser, { minItems: 1 }) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);

/** Shipping the audit file to the collector (docs/collector.md). */
const AuditShip = Type.Object(
  {
    url: Type.String({
      pattern: '^https?://',
      description:
        'The collector, e.g. https://gatehouse-collector.gatehouse-system.svc:7450; plain http only to loopback (http://127.0.0.1:7450).',
    }),
    tokenFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "A file holding the token sent to the collector: the pod's projected service-account token in a cluster (re-read on every batch), or a shared shipper token.",
      }),
    ),
    token: Type.Optional(
      Type.String({
        minLength: 16,
        description: 'A shared shipper token written in the config (development).',
      }),
    ),
    caFile: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'CA certificate (PEM) that verifies an https collector, instead of the system CAs; read again for every batch, and nothing is sent while it holds no certificate.',
      }),
    ),
    cluster: Type.Optional(
      Type.String({
        minLength: 1,
        default: 'local',
        description: 'The cluster name recorded with every record.',
      }),
    ),
    namespace: Type.Optional(
      Type.String({ minLength: 1, description: 'Default: $POD_NAMESPACE, else "standalone".' }),
    ),
    pod: Type.Optional(Type.String({ minLength: 1, description: 'Default: $POD_NAME, else the host name.' })),
    batchRecords: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
  },
  { additionalProperties: false },
);

/** A copy of every written record sent to an HTTP endpoint in batches (docs/compliance.md). */
/** `audit.http` of the proxy, and `forward.http` of the collector: the same sink. */
export const AuditHttp = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      description: 'http:// or https:// endpoint that takes POSTed batches.',
    }),
    shape: Type.Optional(
      Type.Enum(['jsonl', 'splunk-hec'], {
        default: 'jsonl',
        description: 'jsonl: one JSON value a line; splunk-hec: Splunk HTTP Event Collector events.',
      }),
    ),
    format: Type.Optional(
      Type.Enum(['records', 'ocsf'], {
        default: 'records',
        description: 'records: the audit records as written; ocsf: OCSF 1.5.0 events.',
      }),
    ),
    token: Type.Optional(SecretValue),
    batchRecords: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 500 })),
    batchIntervalSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 1 })),
    maxBufferedRecords: Type.Optional(Type.Integer({ minimum: 1, default: 100_000 })),
    timeoutSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
  },
  { additionalProperties: false },
);

const Audit = Type.Object(
  {
    file: Type.Optional(
      Type.String({ minLength: 1, description: 'JSON-lines audit log; created if missing, appended to.' }),
    ),
    stdout: Type.Optional(
      Type.Boolean({ default: true, description: 'Also write each record to stdout (pino JSON).' }),
    ),
    signingKeyFile: Type.Optional(
      Type.String({
        description:
          'Ed25519 private key (PKCS#8 PEM) that signs checkpoints. Without it an ephemeral key is made at start.',
      }),
    ),
    previousSigningKeyFile: Type.Optional(
      Type.String({
        description:
          'The Ed25519 key that signed the log so far, when signingKeyFile replaces it: it signs the change in the log.',
      }),
    ),
    syncEachWrite: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'fdatasync the audit file after every write, before the statements waiting for it run (survives power loss; costs a disk flush per write).',
      }),
    ),
    checkpointEveryRecords: Type.Optional(Type.Integer({ minimum: 1, default: 1000 })),
    checkpointIntervalSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
    failClosed: Type.Optional(
      Type.Boolean({
        default: true,
        description: 'Refuse statements while the audit file cannot be written.',
      }),
    ),
    columnLineage: Type.Optional(
      Type.Boolean({
        default: true,
        description:
          "With a policy, trace the source columns of every statement's output for its audit record, also for identities no MaskingPolicy covers (who read customers.ssn in clear); off: their records name tables only.",
      }),
    ),
    ship: Type.Optional(AuditShip),
    http: Type.Optional(AuditHttp),
  },
  { additionalProperties: false },
);

/** Client TLS with a certificate the proxy makes, signed by a CA of its own that clients trust. */
const ClientTlsAuto = Type.Object(
  {
    dir: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Where the CA and certificate are kept and reused (default .gatehouse/tls).',
      }),
    ),
    names: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Extra DNS names or IP addresses clients reach the proxy by.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ProxyConfigSchema = Type.Object(
  {
    apiVersion: Type.Optional(Type.Literal(API_VERSION)),
    kind: Type.Optional(Type.Literal('Proxy')),
    listen: Type.Optional(HostPort),
    upstream: Upstream,
    // `clientTls: auto` is read as `clientTls: { auto: {} }` (load.ts).
    clientTls: Type.Optional(
      Type.Object(
        {
          certFile: Type.Optional(Type.String({ minLength: 1 })),
          keyFile: Type.Optional(Type.String({ minLength: 1 })),
          auto: Type.Optional(ClientTlsAuto),
          required: Type.Optional(
            Type.Boolean({ default: false, description: 'Refuse clients that do not negotiate TLS.' }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    identity: IdentityConfig,
    audit: Type.Optional(Audit),
    admin: Type.Optional(Type.Object({ listen: HostPort }, { additionalProperties: false })),
    mcp: Type.Optional(
      Type.Object(
        {
          listen: HostPort,
          tokenFile: Type.Optional(
            Type.String({
              minLength: 1,
              description:
                "identity.mode token: the agent's token, read at each tool call. Not in token-file mode (the pod's own identity is the agent's).",
            }),
          ),
          user: Type.Optional(
            Type.String({ minLength: 1, description: "identity.mode local: the agent's user." }),
          ),
          password: Type.Optional(SecretValue),
          maxRows: Type.Optional(Type.Integer({ minimum: 1, default: 200 })),
          maxBytes: Type.Optional(Type.Integer({ minimum: 1, default: 65536 })),
          approvalWaitSeconds: Type.Optional(Type.Integer({ minimum: 1, default: 30 })),
        },
        {
          additionalProperties: false,
          description:
            'Serve MCP (Streamable HTTP, http://LISTEN/mcp) in the proxy process, on loopback, each tool call a connection to this proxy as the agent (docs/mcp.md).',
        },
      ),
    ),
    approvals: Type.Optional(
      Type.Object(
        {
          operator: Type.Optional(
            Type.Object(
              {
                url: Type.String({
                  pattern: '^https://',
                  description:
                    "The operator's approvals endpoint (its webhook Service), e.g. https://gatehouse-webhook.gatehouse-system.svc.",
                }),
                caFile: Type.Optional(
                  Type.String({ minLength: 1, description: "PEM CA that signs the operator's certificate." }),
                ),
                tokenFile: Type.Optional(
                  Type.String({
                    minLength: 1,
                    description:
                      "The pod's projected token (audience gatehouse.dev) sent to the operator; default: identity.tokenFile.path.",
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          maxConnections: Type.Optional(Type.Integer({ minimum: 1, default: 1000 })),
          maxMessageBytes: Type.Optional(
            Type.Integer({
              minimum: 1024,
              default: 64 * 1024 * 1024,
              description: 'Largest client message accepted.',
            }),
          ),
          shutdownGraceSeconds: Type.Optional(Type.Number({ minimum: 0, default: 30 })),
          startupTimeoutSeconds: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              default: 15,
              description: 'Time a client has to finish startup and authentication.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    masking: Type.Optional(
      Type.Object(
        {
          /** Secret (16+ bytes) behind hash and tokenize; without it a random key is made at each start. */
          key: Type.Optional(SecretValue),
          catalogRefreshSeconds: Type.Optional(
            Type.Number({
              exclusiveMinimum: 0,
              default: 300,
              description:
                'How old the catalog (tables, columns, views) may get before it is reloaded; DDL through the proxy reloads it at once.',
            }),
          ),
          sampleRows: Type.Optional(
            Type.Integer({
              minimum: 0,
              default: 50,
              description: 'Rows read per table to classify columns by value; 0 turns value sampling off.',
            }),
          ),
          maxSampledTables: Type.Optional(Type.Integer({ minimum: 0, default: 500 })),
        },
        { additionalProperties: false },
      ),
    ),
    policy: Type.Optional(
      Type.Object(
        {
          none: Type.Optional(
            Type.Boolean({
              default: false,
              description:
                'The file holds no policy documents on purpose: statements are audited, none is checked or masked. Without it, a reload that removes every policy document is refused.',
            }),
          ),
          changedBy: Type.Optional(
            Type.String({
              minLength: 1,
              maxLength: 512,
              description:
                'Who made this version of the policy (a Kubernetes user, a CI job): written into the policy.change audit record of every load and reload.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    log: Type.Optional(
      Type.Object(
        {
          level: Type.Optional(
            Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], { default: 'info' }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export type ProxyConfigDocument = Static<typeof ProxyConfigSchema>;
export type JwtVerificationConfig = Static<typeof JwtVerification>;
export type IdentityConfig = Static<typeof IdentityConfig>;
export type AuditConfigDocument = Static<typeof Audit>;
export type SecretValueConfig = Static<typeof SecretValue>;
