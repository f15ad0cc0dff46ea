import { TOUCHED_FILTERS } from './record-filter.ts';
import { DEFAULT_LIMIT, MAX_LIMIT } from './store-queries.ts';

/**
 * The collector API's OpenAPI 3.1 description, served at /v1/openapi.json and written to
 * docs/collector-openapi.json by `npm run gen`. openapi.test.ts asks every route it names of a real
 * collector and checks each answer against it, and every /v1 route the app has is named here, so it
 * cannot drift from the code. Objects are closed (`additionalProperties: false`): a field added to
 * an answer must be added here too.
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const closed = (properties: Record<string, Schema>, optional: readonly string[] = []): Schema => ({
  type: 'object',
  properties,
  required: Object.keys(properties).filter((name) => !optional.includes(name)),
  additionalProperties: false,
});
const strings: Schema = { type: 'array', items: { type: 'string' } };
const time: Schema = { type: 'string', format: 'date-time' };

const SOURCE_ID = closed({
  cluster: { type: 'string', description: 'The cluster name the chart sets (`standalone` outside one).' },
  namespace: { type: 'string' },
  pod: { type: 'string' },
});

const schemas: Record<string, Schema> = {
  Problem: {
    ...closed({
      problem: {
        type: 'string',
        enum: ['invalid', 'unauthenticated', 'forbidden', 'not-found', 'conflict', 'internal'],
      },
      message: { type: 'string', description: 'What is wrong, for a person.' },
    }),
  },
  SourceKey: closed(
    Object.fromEntries(
      ['cluster', 'namespace', 'pod', 'database', 'logKeyId'].map((name) => [
        name,
        { type: 'string', minLength: 1, maxLength: 253 },
      ]),
    ),
  ),
  Batch: closed({
    source: ref('SourceKey'),
    lines: {
      type: 'array',
      maxItems: 10_000,
      items: { type: 'string', description: 'One audit log line as written, without its newline.' },
    },
  }),
  Acknowledged: closed(
    {
      acknowledged: { type: 'integer', minimum: 0, description: 'The highest seq the store holds.' },
      status: ref('ChainStatus'),
      stored: { type: 'integer', minimum: 0 },
      duplicates: { type: 'integer', minimum: 0 },
    },
    ['status', 'stored', 'duplicates'],
  ),
  ChainStatus: {
    type: 'string',
    enum: ['ok', 'gap', 'broken', 'foreign-key'],
    description:
      'ok, or the first damage found in the chain: records missing, changed, or a key nobody vouched for.',
  },
  Source: closed({
    id: { type: 'integer' },
    cluster: { type: 'string' },
    namespace: { type: 'string' },
    pod: { type: 'string' },
    database: { type: 'string' },
    logKeyId: { type: 'string' },
    status: ref('ChainStatus'),
    reason: nullable('string'),
    lastSeq: { type: 'integer', minimum: 0 },
    checkpointSeq: nullable('integer', { description: 'The last checkpoint whose signature verified.' }),
    checkpointTime: { type: ['string', 'null'], format: 'date-time' },
    records: { type: 'integer', minimum: 0 },
    lastSeen: time,
    lastReset: { oneOf: [ref('SourceReset'), { type: 'null' }] },
  }),
  SourceReset: closed({
    at: time,
    by: { type: 'string', description: 'Who reset it.' },
    reason: { type: 'string' },
    previousStatus: ref('ChainStatus'),
    previousReason: nullable('string'),
    atSeq: {
      type: 'integer',
      description: 'The last seq stored then: the chain is checked again from the next.',
    },
  }),
  ResetRequest: closed({ reason: { type: 'string', minLength: 1, maxLength: 1000 } }),
  Statement: closed({
    time,
    source: SOURCE_ID,
    seq: { type: 'integer' },
    verified: { type: 'boolean', description: 'Whether the chain held up to this record.' },
    session: nullable('string'),
    subject: nullable('string'),
    database: nullable('string'),
    statement: nullable('string', { description: 'The text with placeholders, never values.' }),
    fingerprint: nullable('string'),
    outcome: nullable('string', { description: 'ok, error or refused.' }),
    command: nullable('string'),
    rows: nullable('integer'),
    durationMs: nullable('number'),
    reason: nullable('string', { description: 'For a refusal: the rule and why.' }),
    masked: { ...strings, description: 'The masked output columns, as the proxy described each.' },
    exemptions: { ...strings, description: 'Approved access requests that showed a column in clear.' },
    purpose: nullable('string'),
    runId: nullable('string'),
    tablesRead: strings,
    tablesWritten: strings,
    columns: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: 'Each source column of the output (`schema.table.column`): `clear` or the masking method.',
    },
  }),
  Session: closed({
    session: { type: 'string' },
    source: SOURCE_ID,
    started: time,
    ended: { type: ['string', 'null'], format: 'date-time' },
    durationMs: nullable('number'),
    statements: nullable('integer'),
    endReason: nullable('string'),
    subject: nullable('string'),
    groups: strings,
    method: nullable('string'),
    namespace: nullable('string'),
    serviceAccount: nullable('string'),
    pod: nullable('string'),
    clientAddress: nullable('string'),
    database: nullable('string'),
    protocol: nullable('string'),
    purpose: nullable('string'),
    runId: nullable('string'),
  }),
  Record: closed({
    source: ref('SourceKey'),
    seq: { type: 'integer' },
    time,
    type: { type: 'string', description: 'The record type: statement, connection.start, approval, ...' },
    verified: { type: 'boolean', description: 'Whether the chain held up to this record.' },
    line: { type: 'string', description: 'The record as written: its hash can be checked again.' },
  }),
  RecordPage: page('Record'),
  Touched: closed({
    columns: {
      type: 'array',
      items: closed({
        subject: nullable('string'),
        column: { type: 'string', description: '`schema.table.column`, as lineage named it.' },
        clear: { type: 'integer', minimum: 0, description: 'Statements that returned it in clear.' },
        masked: { type: 'integer', minimum: 0, description: 'Statements that returned it masked.' },
        lastTime: time,
      }),
    },
    tables: {
      type: 'array',
      items: closed({
        subject: nullable('string'),
        table: { type: 'string' },
        statements: { type: 'integer', minimum: 0 },
        lastTime: time,
      }),
    },
  }),
  Approvals: closed({
    items: {
      type: 'array',
      items: closed({
        request: { type: 'string' },
        source: SOURCE_ID,
        phase: {
          type: 'string',
          enum: ['Pending', 'Approved', 'Denied', 'Expired', 'Executed', 'Withdrawn'],
          description: 'As of the latest record the collector holds.',
        },
        requester: { type: 'string' },
        database: nullable('string'),
        statement: nullable('string'),
        rules: strings,
        columns: { ...strings, description: 'An access request: the columns it asks to see in clear.' },
        forSeconds: nullable('integer'),
        requestedAt: { type: ['string', 'null'], format: 'date-time' },
        updatedAt: time,
        decision: {
          oneOf: [{ type: 'null' }, closed({ by: { type: 'string' }, reason: nullable('string') })],
        },
      }),
    },
  }),
  StatementPage: page('Statement'),
  SessionPage: page('Session'),
  Sources: closed({ items: { type: 'array', items: ref('Source') } }),
};

function page(item: string): Schema {
  return closed(
    {
      items: { type: 'array', items: ref(item), maxItems: MAX_LIMIT },
      next: {
        type: 'string',
        description: 'Pass as `cursor` for the next, older page; absent on the last page.',
      },
      follow: {
        type: 'string',
        description:
          'Pass as `follow` for what the store received after this answer, oldest first (how `gatehouse audit query --follow` works).',
      },
    },
    ['next'],
  );
}

const query = (name: string, description: string, schema: Schema = { type: 'string' }) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
});

const PERIOD = [
  query('since', 'A duration back from now (`15m`, `2h`, `7d`) or an ISO 8601 time.'),
  query('until', 'As `since`: only records before it.'),
];

const FILTERS = [
  query('session', "Only this session's records (its id, as `connection.start` names it)."),
  query('subject', 'Only this identity.'),
  query('database', 'Only this database.'),
  query('outcome', 'Only statements that ended `ok`, `error` or `refused`.'),
  query('text', 'Statements whose text contains this, ignoring case (a substring, not a pattern).'),
  query('table', 'Statements that read or wrote this table (`customers` or `public.customers`).'),
  query(
    'column',
    'Statements whose output came from this column (`customers.ssn` or `public.customers.ssn`).',
  ),
  query('seen', 'With `column`: only where it was seen in clear, or only masked.', {
    type: 'string',
    enum: ['clear', 'masked'],
  }),
  query('purpose', 'What the session declared it is for (`gatehouse.purpose`).'),
  query('run_id', 'The run id the session declared (`gatehouse.run_id`).'),
  query('since', 'A duration back from now (`15m`, `2h`, `7d`) or an ISO 8601 time.'),
  query('until', 'As `since`: only records before it.'),
  query('limit', `Page size, default ${DEFAULT_LIMIT}.`, {
    type: 'integer',
    minimum: 1,
    maximum: MAX_LIMIT,
  }),
  query('cursor', 'The `next` of the previous page.'),
  query(
    'follow',
    'The `follow` of a previous answer: what was stored since, oldest first. Not with `cursor`.',
  ),
];

const json = (schema: Schema) => ({ content: { 'application/json': { schema } } });
const problems = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      { description: PROBLEM_TEXT[status] ?? 'A problem', ...json(ref('Problem')) },
    ]),
  );
const PROBLEM_TEXT: Record<number, string> = {
  400: 'The request is not one the API takes; `message` says why.',
  401: 'No credentials, or ones the collector does not accept.',
  403: 'Authenticated, but not allowed: shippers may not read, readers may not ship.',
  404: 'No such source.',
  409: 'The source needs no reset (its chain holds), or none can be checked from it yet.',
  413: 'The body is over 32 MiB.',
};

export function collectorOpenApi(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse audit collector',
      version: '1',
      description:
        'Gathers the audit logs of Gatehouse proxies into one store and answers who connected, what they ran and what data they touched. See docs/collector.md.',
    },
    servers: [{ url: 'http://127.0.0.1:7450', description: 'The quickstart collector' }],
    security: [{ bearer: [] }, { basic: [] }],
    paths: {
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Whether the collector runs',
          security: [],
          responses: { '200': { description: 'ok', content: { 'text/plain': { schema: { const: 'ok' } } } } },
        },
      },
      '/v1/openapi.json': {
        get: {
          operationId: 'openapi',
          summary: 'This description',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1', ...json({ type: 'object' }) } },
        },
      },
      '/v1/records': {
        get: {
          operationId: 'listRecords',
          summary: 'Records of any type as written, with their source, newest first',
          description:
            'What `gatehouse evidence build --server` and `gatehouse audit export --server` read. Readers only.',
          parameters: [
            query('type', 'Only these record types, separated by commas (`statement,approval`).'),
            ...PERIOD,
            query('limit', `Page size, default ${DEFAULT_LIMIT}.`, {
              type: 'integer',
              minimum: 1,
              maximum: MAX_LIMIT,
            }),
            query('cursor', 'The `next` of the previous page.'),
          ],
          responses: {
            '200': { description: 'A page of records', ...json(ref('RecordPage')) },
            ...problems(400, 401, 403),
          },
        },
        post: {
          operationId: 'shipRecords',
          summary: "A batch of one source's audit lines, from its shipper",
          description:
            'Stored in one transaction, its chain checked on arrival. With no lines, only asks how far the store holds the log. Shippers only.',
          requestBody: { required: true, ...json(ref('Batch')) },
          responses: {
            '200': { description: 'What the store now holds of the source', ...json(ref('Acknowledged')) },
            ...problems(400, 401, 403, 413),
          },
        },
      },
      '/v1/sources': {
        get: {
          operationId: 'listSources',
          summary: 'Every source with its chain status and last verified checkpoint',
          responses: {
            '200': { description: 'The sources', ...json(ref('Sources')) },
            ...problems(401, 403),
          },
        },
      },
      '/v1/sources/{id}/reset': {
        post: {
          operationId: 'resetSource',
          summary:
            "Accept a flagged source's damage: its status is ok again and its chain checked from the next record",
          description:
            "Admins only (`auth.admins`). Who reset it, why and what the flag said are kept, and shown as the source's `lastReset`; the damaged records stay as stored, unverified.",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
          requestBody: { required: true, ...json(ref('ResetRequest')) },
          responses: {
            '200': { description: 'The reset, as recorded', ...json(ref('SourceReset')) },
            ...problems(400, 401, 403, 404, 409),
          },
        },
      },
      '/v1/statements': {
        get: {
          operationId: 'listStatements',
          summary: 'Statement records, newest first',
          parameters: FILTERS,
          responses: {
            '200': { description: 'A page of statements', ...json(ref('StatementPage')) },
            ...problems(400, 401, 403),
          },
        },
      },
      '/v1/touched': {
        get: {
          operationId: 'dataTouched',
          summary: 'Per identity, per source column (clear or masked) and per table, over a period',
          description:
            "With `column`: only that column's rows, who read it and how. At most 1,000 rows in each list.",
          parameters: FILTERS.filter((f) => TOUCHED_FILTERS.has(f.name)),
          responses: {
            '200': { description: 'The summary', ...json(ref('Touched')) },
            ...problems(400, 401, 403),
          },
        },
      },
      '/v1/approvals': {
        get: {
          operationId: 'listApprovals',
          summary: "Approval requests as the proxies' approval records tell them, newest first",
          parameters: [
            query('phase', 'Only requests in this phase.', {
              type: 'string',
              enum: ['Pending', 'Approved', 'Denied', 'Expired', 'Executed', 'Withdrawn'],
            }),
            query('subject', 'Only this requester.'),
            query('database', 'Only this database.'),
            ...PERIOD,
          ],
          responses: {
            '200': { description: 'The requests', ...json(ref('Approvals')) },
            ...problems(400, 401, 403),
          },
        },
      },
      '/v1/sessions': {
        get: {
          operationId: 'listSessions',
          summary: 'Sessions, newest first: one per connection.start, with how it ended',
          description: "`table`, `column` and `seen` are statements' filters and match no session.",
          parameters: FILTERS,
          responses: {
            '200': { description: 'A page of sessions', ...json(ref('SessionPage')) },
            ...problems(400, 401, 403),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            "A pod's projected service-account token (TokenReview), a shipper token, or a reader's token.",
        },
        basic: { type: 'http', scheme: 'basic', description: 'A local user (the quickstart).' },
      },
      schemas,
    },
  };
}

/** The document as `npm run gen` writes it to docs/collector-openapi.json. */
export function collectorOpenApiFile(): { path: string; content: string } {
  return { path: 'docs/collector-openapi.json', content: `${JSON.stringify(collectorOpenApi(), null, 2)}\n` };
}
