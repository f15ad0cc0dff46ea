import { describe, expect, it } from 'vitest';
import { ocsfProblems } from '../../../test/support/ocsf-schema.ts';
import type { ParsedRecord } from './chain.ts';
import { OcsfMapper } from './ocsf.ts';

const PREV = 'a'.repeat(64);
const HASH = 'b'.repeat(64);

/** A refused statement of an MCP tool call as the writer lays it out (record.ts), and its OCSF event, in full. */
const RECORD: ParsedRecord = {
  seq: 7,
  prev: PREV,
  time: '2026-12-07T07:00:00.000Z',
  type: 'statement',
  session: '01JGOLDEN',
  protocol: 'mysql',
  subject: 'alice@example.com',
  groups: ['dba'],
  method: 'token',
  issuer: 'https://idp.example',
  clientAddress: '10.0.0.7',
  clientPort: 50123,
  database: 'billing',
  application: 'gatehouse-mcp/query',
  mcpTool: 'query',
  via: 'text',
  statement: 'DELETE FROM invoices',
  fingerprint: 'f00df00df00df00d',
  outcome: 'refused',
  durationMs: 0.25,
  sqlstate: '42000',
  reason: 'guardrail defaults/destructive: delete-without-where',
};

const GOLDEN = {
  class_uid: 6005,
  class_name: 'Datastore Activity',
  category_uid: 6,
  category_name: 'Application Activity',
  activity_id: 7,
  activity_name: 'Delete',
  type_uid: 600507,
  type_name: 'Datastore Activity: Delete',
  severity_id: 3,
  severity: 'Medium',
  time: Date.parse('2026-12-07T07:00:00.000Z'),
  metadata: {
    version: '1.5.0',
    product: { name: 'Gatehouse', vendor_name: 'Gatehouse', version: '1.2.3' },
    log_name: 'gatehouse-audit',
    event_code: 'statement',
    sequence: 7,
    correlation_uid: '01JGOLDEN',
    profiles: ['security_control'],
    uid: HASH,
  },
  action_id: 2,
  action: 'Denied',
  disposition_id: 2,
  disposition: 'Blocked',
  status_id: 2,
  status: 'Failure',
  status_code: '42000',
  status_detail: 'guardrail defaults/destructive: delete-without-where',
  actor: {
    user: { name: 'alice@example.com', uid: 'alice@example.com', groups: [{ name: 'dba' }] },
    session: { uid: '01JGOLDEN', issuer: 'https://idp.example' },
    // What the client declared itself (application_name, program_name).
    app_name: 'gatehouse-mcp/query',
  },
  src_endpoint: { ip: '10.0.0.7', port: 50123 },
  database: { name: 'billing', type_id: 1, type: 'Relational' },
  query_info: { query_string: 'DELETE FROM invoices', uid: 'f00df00df00df00d' },
  duration: 0,
  message:
    'refused for alice@example.com: DELETE FROM invoices (guardrail defaults/destructive: delete-without-where)',
  unmapped: {
    seq: 7,
    prev: PREV,
    hash: HASH,
    source: '/var/lib/gatehouse/audit/audit.jsonl',
    type: 'statement',
    protocol: 'mysql',
    method: 'token',
    // The tool the proxy's own MCP server ran the statement for: no OCSF attribute means that.
    mcpTool: 'query',
    via: 'text',
    durationMs: 0.25,
  },
};

describe('OCSF golden', () => {
  it('maps a refused MySQL statement to exactly this event, which validates', () => {
    const mapper = new OcsfMapper({
      productVersion: '1.2.3',
      source: '/var/lib/gatehouse/audit/audit.jsonl',
    });
    const event = mapper.map({ record: RECORD, hash: HASH });
    expect(event).toEqual(GOLDEN);
    expect(ocsfProblems(event)).toEqual([]);
  });
});
