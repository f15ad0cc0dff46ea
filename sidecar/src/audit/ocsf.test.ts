import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocsfProblems } from '../../../test/support/ocsf-schema.ts';
import { parseChainLine } from './chain.ts';
import { EVERY_EVENT, writeEveryRecordLog } from './every-record.testing.ts';
import { type AuditLine, type OcsfEvent, OcsfMapper } from './ocsf.ts';
import { statementActivity } from './ocsf-statement.ts';

let dir: string;
let lines: AuditLine[];
let events: OcsfEvent[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-ocsf-'));
  const file = await writeEveryRecordLog(dir);
  lines = [];
  for (const text of (await readFile(file, 'utf8')).split('\n')) {
    const parsed = parseChainLine(text);
    if (parsed.ok) lines.push(parsed);
  }
  const mapper = new OcsfMapper({ productVersion: '9.9.9', source: 'every-record.jsonl' });
  events = lines.map((line) => mapper.map(line));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const byType = (type: string) =>
  events.filter((event) => (event['unmapped'] as { type: string }).type === type);

describe('OCSF mapping of every record type', () => {
  it('covers every type the writer makes', () => {
    const types = new Set(lines.map((line) => line.record.type));
    const expected = new Set([
      ...EVERY_EVENT.map((event) => event.type),
      'log.open',
      'checkpoint',
      'log.recover',
      'audit.loss',
    ]);
    expect(types).toEqual(expected);
  });

  it('validates against the OCSF 1.5.0 JSON Schema of its class', () => {
    const problems = events.flatMap((event) =>
      ocsfProblems(event).map((p) => `${(event['unmapped'] as { type: string }).type}: ${p}`),
    );
    expect(problems).toEqual([]);
  });

  it('has a schema check that refuses what OCSF does not define', () => {
    const event = byType('statement')[0]!;
    expect(ocsfProblems({ ...event, rows: 1 })).not.toEqual([]);
    expect(ocsfProblems({ ...event, activity_id: 42 })).not.toEqual([]);
    expect(ocsfProblems({ ...event, actor: {} })).not.toEqual([]);
    const { src_endpoint: _, ...withoutSource } = event;
    expect(ocsfProblems(withoutSource)).not.toEqual([]);
    expect(ocsfProblems({ ...event, query_info: { uid: 'x' } })).not.toEqual([]);
  });

  it('keeps OCSF rules the JSON Schema cannot say: type_uid, captions, time, metadata', () => {
    for (const event of events) {
      expect(event['type_uid']).toBe(Number(event['class_uid']) * 100 + Number(event['activity_id']));
      expect(event['time']).toBeGreaterThan(Date.parse('2020-01-01'));
      expect(event['metadata']).toMatchObject({
        version: '1.5.0',
        product: { name: 'Gatehouse', version: '9.9.9' },
      });
    }
  });

  it('carries the chain in unmapped, so each event leads back to its line', () => {
    events.forEach((event, i) => {
      const line = lines[i]!;
      expect(event['unmapped']).toMatchObject({
        seq: line.record.seq,
        prev: line.record.prev,
        hash: line.hash,
        source: 'every-record.jsonl',
      });
      expect((event['metadata'] as { uid: string }).uid).toBe(line.hash);
    });
    const checkpoint = byType('checkpoint')[0]!;
    expect((checkpoint['unmapped'] as { sig?: string }).sig).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it('loses no field: whatever has no OCSF home is in unmapped', () => {
    const [selectOk] = byType('statement');
    expect(selectOk!['unmapped']).toMatchObject({
      via: 'simple',
      rows: 1,
      masked: ['email <- public.customers.email (email by name): tokenize'],
      protocol: 'postgres',
      method: 'token',
      serviceAccount: 'orders',
    });
    expect(byType('connection.start')[0]!['unmapped']).toMatchObject({ tls: true, method: 'token' });
    expect(byType('connection.start')[0]).toMatchObject({ service: { name: 'shop', labels: ['postgres'] } });
    expect(byType('connection.refused')[1]!['unmapped']).toMatchObject({ errno: 1045 });
    expect(byType('audit.loss')[0]!['unmapped']).toMatchObject({ lost: 2 });
  });
});

describe('statements as Datastore Activity (6005)', () => {
  it('maps a statement that ran: actor, pod, client, database, query', () => {
    const event = byType('statement')[0]!;
    expect(event).toMatchObject({
      class_uid: 6005,
      activity_id: 4,
      activity_name: 'Query',
      status_id: 1,
      action_id: 1,
      disposition_id: 1,
      severity_id: 1,
      actor: {
        user: {
          name: 'system:serviceaccount:shop:orders',
          groups: [{ name: 'system:serviceaccounts' }, { name: 'system:serviceaccounts:shop' }],
        },
        session: { uid: '01JTESTSESSION' },
      },
      src_endpoint: { ip: '10.1.2.3', port: 40312, name: 'shop/orders-7d9f-abcde' },
      database: { name: 'shop', type_id: 1 },
      query_info: {
        query_string: 'SELECT email FROM customers WHERE id = $1',
        uid: '348bee4e67e86ca6',
        name: 'SELECT',
      },
      metadata: { correlation_uid: '01JTESTSESSION', profiles: ['security_control'] },
    });
  });

  it('maps a refusal to a failure the control denied, with its reason and SQLSTATE', () => {
    const event = byType('statement')[2]!;
    expect(event).toMatchObject({
      activity_id: 7,
      status_id: 2,
      status: 'Failure',
      status_code: '42501',
      status_detail: 'guardrail defaults/destructive',
      action_id: 2,
      disposition_id: 2,
      disposition: 'Blocked',
      severity_id: 3,
    });
  });

  it('maps a statement that could not be parsed without a query', () => {
    const event = byType('statement')[3]!;
    expect(event['query_info']).toBeUndefined();
    expect(event['activity_id']).toBe(0);
  });

  it('gives statement.start the client of its session', () => {
    expect(byType('statement.start')[0]).toMatchObject({
      status_id: 99,
      status: 'Started',
      src_endpoint: { ip: '10.1.2.3', name: 'shop/orders-7d9f-abcde' },
      database: { name: 'shop' },
    });
  });

  it.each([
    ['SELECT', 4, 'Query'],
    ['INSERT', 5, undefined],
    ['UPDATE', 2, undefined],
    ['DELETE', 7, undefined],
    ['CREATE TABLE', 6, undefined],
    ['DROP TABLE', 7, undefined],
    ['TRUNCATE', 7, undefined],
    ['ALTER TABLE', 2, undefined],
    ['SHOW', 8, undefined],
    ['fetch', 1, undefined],
    ['BEGIN', 99, 'BEGIN'],
    ['SET', 99, 'SET'],
    [undefined, 0, undefined],
  ])('%s is activity %i', (command, id, name) => {
    const [activity, activityName] = statementActivity(command);
    expect(activity).toBe(id);
    if (id === 99) expect(activityName).toBe(name);
  });
});

describe('connections as Authentication (3002)', () => {
  it('maps a login, a refused login and a logoff', () => {
    expect(byType('connection.start')[0]).toMatchObject({
      activity_id: 1,
      status_id: 1,
      user: { name: 'system:serviceaccount:shop:orders' },
      session: { uid: '01JTESTSESSION' },
      src_endpoint: { ip: '10.1.2.3', port: 40312 },
    });
    expect(byType('connection.refused')[0]).toMatchObject({
      activity_id: 1,
      status_id: 2,
      status_code: '28P01',
      status_detail: 'token signature invalid',
      user: { name: 'mallory' },
      src_endpoint: { ip: '10.1.2.9', port: 51000 },
      disposition_id: 2,
    });
    expect(byType('connection.end')[0]).toMatchObject({
      activity_id: 2,
      duration: 1234,
      status_detail: 'client',
    });
  });
});

describe('approvals as API Activity (6003) and policy changes as Entity Management (3004)', () => {
  it('names the decider as the actor of a decision', () => {
    const approvals = byType('approval');
    expect(approvals.map((e) => [e['activity_id'], (e['api'] as { operation: string }).operation])).toEqual([
      [1, 'approval.requested'],
      [3, 'approval.approved'],
      [3, 'approval.denied'],
      [4, 'approval.expired'],
      [99, 'approval.executed'],
      [4, 'approval.withdrawn'],
    ]);
    expect(approvals[1]).toMatchObject({
      actor: { user: { name: 'local:lead' } },
      status_detail: 'change ticket 42',
    });
    expect(approvals[0]).toMatchObject({ actor: { user: { name: 'local:admin' } } });
    expect(approvals[3]).toMatchObject({ actor: { app_name: 'gatehouse' } });
  });

  it('maps a policy load and a reload with its diff, digests and who changed it', () => {
    const [loaded, reloaded] = byType('policy.change');
    expect(loaded).toMatchObject({ activity_id: 1, entity: { name: 'gatehouse.yaml' } });
    expect(loaded!['actor']).toBeUndefined();
    const unmappedBefore = (reloaded!['entity'] as { data: { before: string } }).data.before;
    expect(reloaded).toMatchObject({
      activity_id: 3,
      actor: { user: { name: 'alice@example.com' } },
      entity: {
        type: 'Gatehouse policy bundle',
        uid: expect.stringMatching(/^[0-9a-f]{64}$/),
        data: {
          changed: ['Guardrail defaults'],
          rules: {
            added: ['Guardrail defaults/evasive'],
            changed: ['Guardrail defaults/destructive'],
            removed: [],
          },
        },
      },
      message: 'rule added Guardrail defaults/evasive; rule changed Guardrail defaults/destructive',
    });
    expect(unmappedBefore).toBe((loaded!['entity'] as { uid: string }).uid);
  });
});

describe('the log itself as Event Log Activity (1008)', () => {
  it('maps open, seal, recovery and loss, the last two as failures', () => {
    expect(byType('log.open')[0]).toMatchObject({ activity_id: 6, status_id: 1 });
    const seals = byType('checkpoint').filter((e) => (e['unmapped'] as { final?: boolean }).final === true);
    expect(seals[0]).toMatchObject({ activity_id: 7 });
    expect(byType('log.recover')[0]).toMatchObject({ activity_id: 99, status_id: 2, severity_id: 4 });
    expect(byType('audit.loss')[0]).toMatchObject({ activity_id: 99, status_id: 2, severity_id: 4 });
  });
});

describe('what the client declared and what the proxy knows: application and mcpTool', () => {
  const session = {
    session: '01JMCP',
    protocol: 'postgres',
    subject: 'system:serviceaccount:shop:agent',
    groups: ['system:serviceaccounts'],
    method: 'token',
    clientAddress: '127.0.0.1',
    clientPort: 40000,
    database: 'shop',
  };
  const record = (seq: number, type: string, fields: Record<string, unknown>) => ({
    record: { seq, prev: 'a'.repeat(64), time: '2026-12-07T08:00:00.000Z', type, ...fields },
    hash: String(seq).padStart(64, '0'),
  });
  // Each record as the writer lays it out (record.ts), with both, one, or neither field.
  const cases: [string, Record<string, unknown>, string | undefined, string | undefined][] = [
    [
      'connection.start',
      { ...session, application: 'gatehouse-mcp/query', mcpTool: 'query', tls: true },
      'gatehouse-mcp/query',
      'query',
    ],
    [
      'statement',
      {
        ...session,
        application: 'gatehouse-mcp/query',
        mcpTool: 'query',
        via: 'text',
        statement: 'SELECT $1',
        fingerprint: 'f00d',
        outcome: 'ok',
      },
      'gatehouse-mcp/query',
      'query',
    ],
    [
      'statement',
      {
        ...session,
        application: 'psql',
        via: 'simple',
        statement: 'SELECT $1',
        fingerprint: 'f00d',
        outcome: 'ok',
      },
      'psql',
      undefined,
    ],
    // A client naming itself like the MCP server is still only a declared application.
    [
      'statement',
      {
        ...session,
        application: 'gatehouse-mcp/query',
        via: 'simple',
        statement: 'SELECT $1',
        fingerprint: 'f00d',
        outcome: 'refused',
        reason: 'no',
      },
      'gatehouse-mcp/query',
      undefined,
    ],
    [
      'statement',
      { ...session, via: 'simple', statement: 'SELECT $1', fingerprint: 'f00d', outcome: 'ok' },
      undefined,
      undefined,
    ],
    [
      'connection.end',
      {
        ...session,
        application: 'gatehouse-mcp/query',
        mcpTool: 'query',
        durationMs: 5,
        statements: 1,
        reason: 'client',
      },
      'gatehouse-mcp/query',
      'query',
    ],
    [
      'connection.refused',
      {
        protocol: 'postgres',
        clientAddress: '127.0.0.1',
        clientPort: 1,
        user: 'agent',
        database: 'shop',
        sqlstate: '28000',
        reason: 'no grant',
        mcpTool: 'query',
      },
      undefined,
      'query',
    ],
  ];

  it.each(cases)(
    '%s maps application to actor.app_name and keeps mcpTool in unmapped',
    (type, fields, application, mcpTool) => {
      const event = new OcsfMapper({ productVersion: '1.0.0' }).map(record(1, type, fields));
      expect(ocsfProblems(event)).toEqual([]);
      expect((event['actor'] as { app_name?: string } | undefined)?.app_name).toBe(application);
      const unmapped = event['unmapped'] as Record<string, unknown>;
      expect(unmapped['mcpTool']).toBe(mcpTool);
      // Each in one place only: the declared name never doubles as the proxy's own tool, nor the reverse.
      expect(unmapped['application']).toBeUndefined();
      expect(JSON.stringify(event).split('"query"').length - 1).toBe(mcpTool === undefined ? 0 : 1);
    },
  );

  it('leaves them out of statement.start, whose record names only its session', () => {
    const mapper = new OcsfMapper({ productVersion: '1.0.0' });
    mapper.map(
      record(1, 'connection.start', {
        ...session,
        application: 'gatehouse-mcp/query',
        mcpTool: 'query',
        tls: true,
      }),
    );
    const start = mapper.map(
      record(2, 'statement.start', {
        session: '01JMCP',
        subject: session.subject,
        via: 'text',
        statement: 'SELECT $1',
        fingerprint: 'f',
      }),
    );
    expect(ocsfProblems(start)).toEqual([]);
    expect((start['actor'] as { app_name?: string }).app_name).toBeUndefined();
  });
});
