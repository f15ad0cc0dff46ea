import { describe, expect, it } from 'vitest';
import { policyChangeEvent, policyDigest } from '../policy/policy-diff.ts';
import { approvalHistories } from './approval-history.ts';
import { buildControlsSection, CONTROLS } from './controls.ts';
import type { EvidenceInput, EvidenceRecord } from './evidence-input.ts';
import { buildSections } from './evidence-pack.ts';
import { buildAccessSection } from './section-access.ts';
import { buildExemptionsSection } from './section-exemptions.ts';
import { buildMaskingSection } from './section-masking.ts';
import { buildPrivilegedSection } from './section-privileged.ts';
import { buildRefusalsSection } from './section-refusals.ts';

const period = { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' };
let seq = 0;
function rec(type: string, fields: object, time = '2026-12-01T10:00:00.000Z'): EvidenceRecord {
  seq++;
  return { source: 'a.jsonl', seq, time, type, verified: true, fields: { seq, type, time, ...fields } };
}
const statement = (fields: Record<string, unknown>) =>
  rec('statement', { session: 's1', subject: 'local:demo', database: 'shop', outcome: 'ok', ...fields });
const input = (records: EvidenceRecord[], extra: Partial<EvidenceInput> = {}): EvidenceInput => ({
  period,
  records,
  policyHistory: records.filter((r) => r.type === 'policy.change'),
  sources: [],
  ...extra,
});

describe('privileged statements', () => {
  it.each([
    {
      name: 'DDL',
      fields: { statement: 'CREATE TABLE t (id int)', command: 'CREATE TABLE' },
      privilege: 'ddl',
      approved: false,
    },
    {
      name: 'admin',
      fields: { statement: 'SET ROLE postgres', command: 'SET' },
      privilege: 'admin',
      approved: false,
    },
    {
      name: 'approved DML',
      fields: { statement: 'DELETE FROM orders', command: 'DELETE', approval: 'req-1' },
      privilege: null,
      approved: true,
    },
    {
      name: 'refused DDL',
      fields: { statement: 'DROP TABLE t', outcome: 'refused', reason: 'guardrail g/drop' },
      privilege: 'ddl',
      approved: false,
    },
    {
      name: 'a read',
      fields: { statement: 'SELECT 1', command: 'SELECT' },
      privilege: undefined,
      approved: false,
    },
  ])('$name', ({ fields, privilege, approved }) => {
    const records = [statement(fields)];
    const section = buildPrivilegedSection(input(records), approvalHistories(records));
    if (privilege === undefined) return expect(section.rows).toEqual([]);
    expect(section.rows).toHaveLength(1);
    expect(section.rows[0]).toMatchObject({ privilege, approved, statement: fields.statement });
  });

  it('names the approval that released a statement, who decided and why', () => {
    const records = [
      rec('approval', {
        event: 'requested',
        request: 'req-1',
        subject: 'local:demo',
        statement: 'DELETE FROM orders',
        rules: ['holds/sweeping'],
      }),
      rec('approval', {
        event: 'approved',
        request: 'req-1',
        subject: 'local:demo',
        by: 'local:lead',
        reason: 'ticket 42',
      }),
      statement({ statement: 'DELETE FROM orders', command: 'DELETE', approval: 'req-1' }),
      statement({ statement: 'TRUNCATE orders', approval: 'req-old' }),
    ];
    const rows = buildPrivilegedSection(input(records), approvalHistories(records)).rows;
    expect(rows[0]!.approval).toMatchObject({
      request: 'req-1',
      requestedBy: 'local:demo',
      rules: ['holds/sweeping'],
      decision: 'approved',
      by: 'local:lead',
      reason: 'ticket 42',
      recorded: true,
    });
    // Decided before the period: named, and said not to be recorded here.
    expect(rows[1]!.approval).toMatchObject({ request: 'req-old', decision: null, recorded: false });
  });
});

describe('refusals and warnings', () => {
  it.each([
    {
      record: () =>
        statement({
          outcome: 'refused',
          statement: 'DROP TABLE t',
          reason: 'guardrail g/r',
          sqlstate: '42501',
        }),
      kind: 'statement',
    },
    {
      record: () =>
        rec('connection.refused', {
          user: 'mallory',
          clientAddress: '10.0.0.9',
          sqlstate: '28P01',
          reason: 'bad password',
        }),
      kind: 'login',
    },
    {
      record: () =>
        rec('approval', { event: 'denied', request: 'r9', subject: 'local:demo', by: 'local:lead' }),
      kind: 'approval-denied',
    },
    {
      record: () =>
        statement({
          outcome: 'ok',
          statement: 'DELETE FROM t WHERE id = $1',
          reason: 'warning: g/rows (9 rows)',
        }),
      kind: 'warning',
    },
    {
      record: () =>
        statement({ outcome: 'ok', reason: 'approved: holds/sweeping; dry run: g/drop would block' }),
      kind: 'warning',
    },
    {
      record: () => statement({ outcome: 'ok', reason: 'approved: holds/sweeping; runs public.f()' }),
      kind: undefined,
    },
    {
      record: () =>
        statement({ outcome: 'ok', reason: 'rows changed not counted: track_counts is off on the database' }),
      kind: undefined,
    },
    { record: () => statement({ outcome: 'error', sqlstate: '23505' }), kind: undefined },
    { record: () => statement({ outcome: 'ok' }), kind: undefined },
  ])('$kind', ({ record, kind }) => {
    const records = [record()];
    const rows = buildRefusalsSection(input(records), approvalHistories(records)).rows;
    expect(rows.map((r) => r.kind)).toEqual(kind === undefined ? [] : [kind]);
  });

  it('a warning row keeps only the warnings among the notes', () => {
    const records = [statement({ reason: 'approved: h/s; warning: g/rows (9 rows); runs f()' })];
    expect(buildRefusalsSection(input(records), new Map()).rows[0]!.reason).toBe('warning: g/rows (9 rows)');
  });

  it('a refused login names the user name the client gave', () => {
    const records = [rec('connection.refused', { user: 'mallory', reason: 'bad password' })];
    expect(buildRefusalsSection(input(records), new Map()).rows[0]).toMatchObject({
      subject: 'mallory',
      reason: 'bad password',
    });
  });
});

describe('exemptions', () => {
  it('lists each access request with its decision and who saw clear values under it', () => {
    const records = [
      rec('approval', {
        event: 'requested',
        request: 'ar-1',
        subject: 'local:demo',
        columns: ['customers.email'],
        forSeconds: 600,
      }),
      rec('approval', {
        event: 'approved',
        request: 'ar-1',
        subject: 'local:demo',
        by: 'local:lead',
        reason: 'support case',
        until: '2026-12-01T10:10:00Z',
      }),
      statement({
        statement: 'SELECT email FROM customers',
        exemptions: ['ar-1'],
        columns: { 'public.customers.email': 'clear' },
      }),
      statement({
        statement: 'SELECT ssn FROM customers',
        exemptions: ['ar-gone'],
        columns: { 'public.customers.ssn': 'clear' },
      }),
      // A held statement is not an access request.
      rec('approval', {
        event: 'requested',
        request: 'req-2',
        subject: 'local:demo',
        statement: 'DROP TABLE t',
      }),
    ];
    const section = buildExemptionsSection(input(records), approvalHistories(records));
    expect(section.rows.map((r) => r.request)).toEqual(['ar-1', 'ar-gone']);
    expect(section.rows[0]).toMatchObject({
      requestedBy: 'local:demo',
      columns: ['customers.email'],
      forSeconds: 600,
      decision: 'approved',
      decidedBy: 'local:lead',
      reason: 'support case',
      sawClear: ['local:demo'],
      recorded: true,
    });
    expect(section.rows[0]!.uses[0]!.clearColumns).toEqual(['public.customers.email']);
    expect(section.rows[1]).toMatchObject({ recorded: false, sawClear: ['local:demo'] });
    expect(section.counts).toEqual({ rows: 2, approved: 1, uses: 2 });
  });
});

describe('masking coverage', () => {
  it('counts, per sensitive column, who saw it masked and who in clear', () => {
    const records = [
      statement({
        subject: 'local:demo',
        columns: { 'public.customers.ssn': 'redact', 'public.customers.id': 'clear' },
      }),
      statement({ subject: 'local:demo', columns: { 'public.customers.ssn': 'redact' } }),
      statement({ subject: 'local:lead', columns: { 'public.customers.ssn': 'clear' } }),
      statement({
        subject: 'local:demo',
        columns: { 'public.customers.email': 'clear' },
        exemptions: ['ar-1'],
      }),
      rec('approval', {
        event: 'requested',
        request: 'ar-1',
        subject: 'local:demo',
        columns: ['customers.email'],
      }),
      statement({ subject: 'local:demo', masked: ['x <- public.t.x: hash'] }),
    ];
    const section = buildMaskingSection(input(records), approvalHistories(records));
    expect(section.rows.map((r) => r.column)).toEqual(['public.customers.email', 'public.customers.ssn']);
    const ssn = section.rows[1]!;
    expect(ssn).toMatchObject({ methods: ['redact'], statementsMasked: 2, statementsClear: 1 });
    expect(ssn.identities).toEqual([
      { subject: 'local:demo', masked: 2, clear: 0, methods: ['redact'] },
      { subject: 'local:lead', masked: 0, clear: 1, methods: [] },
    ]);
    expect(section.clearOnlyColumns).toEqual(['public.customers.id']);
    expect(section.counts).toMatchObject({
      rows: 2,
      identitiesClear: 2,
      maskedWithoutColumnDetail: 1,
      statementsWithColumns: 4,
    });
  });
});

describe('access', () => {
  const guardrail = (action: string) => ({
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'Guardrail',
    metadata: { name: 'defaults' },
    spec: { rules: [{ name: 'destructive', kinds: ['drop'], action }] },
  });
  const access = {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'DatabaseAccess',
    metadata: { name: 'people' },
    spec: {
      subjects: [
        { kind: 'User', name: 'demo' },
        { kind: 'Group', name: 'approvers' },
      ],
      allow: ['read', 'ddl'],
      guardrails: ['defaults'],
    },
  };
  it('shows the policy in force at the end, every change in the period with changedBy, and the bundle', () => {
    const before = [guardrail('block'), access];
    const after = [guardrail('warn'), access];
    const loaded = rec(
      'policy.change',
      policyChangeEvent(undefined, before, 'gh.yaml', undefined),
      '2026-11-30T08:00:00.000Z',
    );
    const changed = rec(
      'policy.change',
      policyChangeEvent(before, after, 'gh.yaml', 'alice@example.com'),
      '2026-12-01T09:00:00.000Z',
    );
    const digest = { after: policyDigest(after) };
    const section = buildAccessSection({
      period,
      records: [changed],
      policyHistory: [loaded, changed],
      sources: [],
      policy: { file: 'gh.yaml', digest: digest.after, documents: after },
    });
    expect(section.changes).toHaveLength(1);
    expect(section.changes[0]).toMatchObject({
      changedBy: 'alice@example.com',
      event: 'reloaded',
      rules: { changed: ['Guardrail defaults/destructive'] },
    });
    expect(section.inForce).toHaveLength(1);
    expect(section.inForce[0]!.after).toBe(digest.after);
    expect(section.bundle!.inForceAt).toEqual(['a.jsonl']);
    expect(section.bundle!.grants).toEqual([
      {
        access: 'people',
        subjects: ['User demo', 'Group approvers'],
        classes: ['read', 'ddl'],
        guardrails: [{ name: 'defaults', rules: ['destructive: warn'] }],
        maskingPolicies: [],
      },
    ]);
    expect(section.counts).toEqual({ inForce: 1, changes: 1, grants: 1 });
  });

  it('a bundle whose digest no source records is in force nowhere', () => {
    const loaded = rec('policy.change', policyChangeEvent(undefined, [access], 'gh.yaml', undefined));
    const documents = [guardrail('block'), access];
    const section = buildAccessSection(
      input([loaded], { policy: { file: 'other.yaml', digest: 'ff'.repeat(32), documents } }),
    );
    expect(section.bundle!.inForceAt).toEqual([]);
  });
});

describe('controls', () => {
  it('cites only counts above zero, and says so for a control with none', () => {
    const sections = buildSections(input([]));
    expect(sections.controls.rows.map((r) => r.id)).toEqual(CONTROLS.map((c) => c.id));
    for (const row of sections.controls.rows) {
      expect(row.evidenced).toBe(false);
      for (const e of row.evidence) expect(e.claim).toMatch(/^no rows: /);
    }
  });

  it('a refused statement evidences AC-3 with its count, and not AU-9 without a verified source', () => {
    const sections = buildSections(input([statement({ outcome: 'refused', reason: 'r' })]));
    const ac3 = sections.controls.rows.find((r) => r.id === 'AC-3')!;
    expect(ac3.evidenced).toBe(true);
    expect(ac3.evidence[0]).toMatchObject({
      file: 'refusals.json',
      count: 'statement',
      rows: 1,
      claim: '1 statement refused by policy, each with its rule or reason',
    });
    expect(sections.controls.rows.find((r) => r.id === 'AU-9')!.evidenced).toBe(false);
  });

  it('records the writer lost are an exception of every control', () => {
    const sections = buildSections(
      input([], {
        sources: [{ source: 'a', kind: 'file', ok: true, summary: 'ok', records: 9, lost: 3, keys: [] }],
      }),
    );
    for (const row of sections.controls.rows)
      expect(row.exceptions).toEqual([
        '3 records the writers could not write, as their audit.loss records say: the period is not complete (chains.json)',
      ]);
  });

  it('a broken source is an exception of every control', () => {
    const sections = buildSections(
      input([], {
        sources: [{ source: 'a', kind: 'file', ok: false, summary: 'TAMPERED', records: 1, keys: [] }],
      }),
    );
    const controls = buildControlsSection([sections.chains]);
    for (const row of controls.rows) expect(row.exceptions[0]).toMatch(/^1 source failed chain verification/);
  });
});
