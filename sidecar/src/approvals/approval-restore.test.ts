import { describe, expect, it } from 'vitest';
import { auditFields } from '../audit/record.ts';
import type { Identity } from '../identity/identity.ts';
import { approvalAuditEvent, shapeGrantAuditEvent } from './approval-audit.ts';
import { ApprovalBook } from './approval-book.ts';
import type { ApprovalRule, StatementBinding } from './approval-request.ts';
import { restoreApprovals } from './approval-restore.ts';
import { ShapeRegistry } from './learned-shapes.ts';

const T0 = Date.parse('2026-12-07T10:00:00.000Z');
const admin: Identity = { subject: 'local:admin', groups: ['admins'], method: 'local' };
const lead: Identity = { subject: 'local:lead', groups: ['approvers'], method: 'local' };
const tokenUser: Identity = { subject: 'alice', groups: [], method: 'token', issuer: 'https://idp.example' };
const rule: ApprovalRule = {
  guardrail: 'admin-approvals',
  rule: 'drops',
  approvers: [{ kind: 'Group', name: 'approvers' }],
  allowSelfApproval: false,
  waitSeconds: 5,
  ttlSeconds: 600,
};
const accessRule: ApprovalRule = { ...rule, guardrail: 'pii', kind: 'MaskingPolicy', rule: 'accessRequests' };
const drop: StatementBinding = {
  subject: admin.subject,
  database: 'shop',
  statement: 'DROP TABLE customers',
  parametersHash: '',
};
const del: StatementBinding = { ...drop, statement: "DELETE FROM orders WHERE id = '7'" };

/** A run of a real book whose audit records are kept as the log holds them (with their time). */
function run() {
  let now = T0;
  let n = 0;
  const records: Record<string, unknown>[] = [];
  const keep = (fields: Record<string, unknown>) =>
    records.push({ time: new Date(now).toISOString(), ...fields });
  const book = new ApprovalBook({ now: () => now, newId: () => `ar-${++n}` });
  book.onChange((change) => keep(auditFields(approvalAuditEvent(change))));
  const shapes = new ShapeRegistry(book, {
    now: () => now,
    newId: () => `sa-${++n}`,
    onGrant: (grant) => keep(auditFields(shapeGrantAuditEvent(grant))),
  });
  const open = (binding: StatementBinding, fingerprint: string) =>
    book.open({ binding, fingerprint, shape: binding.statement, requester: admin, rules: [rule], impact: {} })
      .request;
  return { records, book, shapes, open, tick: (ms: number) => (now += ms) };
}

/** A fresh book (and registry) at `at` with what `records` leave in force. */
function restart(records: readonly Record<string, unknown>[], at: number) {
  const book = new ApprovalBook({ now: () => at });
  const ended: string[] = [];
  book.onChange((c) => ended.push(`${c.request.id}:${c.event}`));
  const shapes = new ShapeRegistry(book, { now: () => at });
  const restored = restoreApprovals(records, at);
  book.restore(restored);
  shapes.restore(restored.grants);
  return { book, shapes, restored, ended };
}

describe('restoreApprovals', () => {
  it('keeps a shape approval until its end, whether its statement ran or not', () => {
    for (const used of [true, false]) {
      const r = run();
      const request = r.open(drop, 'fp-drop');
      r.book.decide(request.id, lead, 'approve', 'release', { shapeForSeconds: 3600 });
      if (used) expect(r.book.claim(drop, 'fp-drop')?.by).toBe('statement');
      const later = restart(r.records, T0 + 1800_000);
      expect(later.book.claim(drop, 'fp-drop')).toMatchObject({ by: 'shape', request: { id: request.id } });
      expect(later.book.claim({ ...drop, subject: 'local:demo' }, 'fp-drop')).toBeUndefined();
      expect(later.shapes.approved(admin.subject, 'shop', 'fp-drop')).toBe(true);
      // The unused exact approval is not restored (its text is not in the log): ended, and recorded.
      expect(later.ended).toEqual(used ? [] : [`${request.id}:expired`]);
      expect(restart(r.records, T0 + 3600_000).book.claim(drop, 'fp-drop')).toBeUndefined();
    }
  });

  it('restores no approval of an exact text, executed, unused, denied or expired', () => {
    const r = run();
    const executed = r.open(del, 'fp-del');
    r.book.decide(executed.id, lead, 'approve', 'ok');
    r.book.claim(del, 'fp-del');
    const unused = r.open(drop, 'fp-drop');
    r.book.decide(unused.id, lead, 'approve', 'ok');
    const denied = r.open({ ...drop, database: 'other' }, 'fp-drop');
    r.book.decide(denied.id, lead, 'deny', 'no', {});
    r.tick(1000);
    const later = restart(r.records, T0 + 2000);
    expect(later.book.claim(del, 'fp-del')).toBeUndefined();
    expect(later.book.claim(drop, 'fp-drop')).toBeUndefined();
    expect(later.book.claim({ ...drop, database: 'other' }, 'fp-drop')).toBeUndefined();
    expect(later.ended).toEqual([`${unused.id}:expired`]);
    expect(later.restored.skipped).toEqual([
      { request: unused.id, why: 'an unused approval of an exact text: the text is not in the log' },
    ]);
    expect(later.book.list({ phase: 'Approved' })).toEqual([]);
  });

  it('remembers the denials of the last 30 days, for noDenialForHours', () => {
    const r = run();
    const request = r.open(drop, 'fp-drop');
    r.book.decide(request.id, lead, 'deny', 'no');
    expect(restart(r.records, T0 + 3600_000).book.deniedSince(admin.subject, T0 - 1)).toBe(true);
    expect(restart(r.records, T0 + 3600_000).book.deniedSince(lead.subject, T0 - 1)).toBe(false);
    expect(restart(r.records, T0 + 721 * 3600_000).book.deniedSince(admin.subject, T0 - 1)).toBe(false);
  });

  it('ends a Pending request as Withdrawn: its session ended with the proxy', () => {
    const r = run();
    const pending = r.open(drop, 'fp-drop');
    const later = restart(r.records, T0 + 1000);
    expect(later.ended).toEqual([`${pending.id}:withdrawn`]);
    expect(later.book.get(pending.id)?.phase).toBe('Withdrawn');
    expect(later.book.claim(drop, 'fp-drop')).toBeUndefined();
    // Whoever holds the statement asks anew.
    expect(
      later.book.open({
        binding: drop,
        fingerprint: 'fp-drop',
        shape: null,
        requester: admin,
        rules: [rule],
        impact: {},
      }).created,
    ).toBe(true);
  });

  it('keeps an approved access request in force until its end, for its subject and issuer only', () => {
    for (const who of [admin, tokenUser]) {
      const r = run();
      const request = r.book.openAccess({
        requester: who,
        database: 'shop',
        access: { columns: ['customers.email'], forSeconds: 600, ...(who.issuer && { issuer: who.issuer }) },
        rules: [accessRule],
        reason: 'ticket 1',
      });
      r.tick(60_000);
      r.book.decide(request.id, lead, 'approve', 'ok');
      const later = restart(r.records, T0 + 300_000);
      expect(later.book.accessExemptions(who, 'shop')).toEqual([
        { request: request.id, columns: ['customers.email'], until: T0 + 660_000 },
      ]);
      expect(later.book.accessExemptions(who, 'other')).toEqual([]);
      const otherIssuer = who.issuer ? { ...who, issuer: 'https://evil.example' } : { ...who, issuer: 'x' };
      expect(later.book.accessExemptions(otherIssuer, 'shop')).toEqual([]);
      expect(restart(r.records, T0 + 660_000).book.accessExemptions(who, 'shop')).toEqual([]);
    }
  });

  it('restores no access request denied, expired, pending, or without its issuer', () => {
    const r = run();
    const ask = (reason: string) =>
      r.book.openAccess({
        requester: admin,
        database: 'shop',
        access: { columns: [`t.${reason}`], forSeconds: 600 },
        rules: [accessRule],
        reason,
      });
    const denied = ask('denied');
    r.book.decide(denied.id, lead, 'deny', 'no');
    const expired = ask('expired');
    r.book.decide(expired.id, lead, 'approve', 'ok');
    const pending = ask('pending');
    const old = ask('old');
    r.book.decide(old.id, lead, 'approve', 'ok');
    r.tick(601_000);
    r.book.sweep();
    const stripped = r.records.map((rec) =>
      rec['request'] === old.id ? { ...rec, issuer: undefined } : rec,
    );
    const later = restart(stripped, T0 + 601_000);
    expect(later.book.accessExemptions(admin, 'shop')).toEqual([]);
    expect(later.ended).toEqual([`${pending.id}:withdrawn`]);
    expect(later.restored.skipped).toEqual([
      { request: old.id, why: 'an access request without its issuer' },
    ]);
  });

  it('keeps shapes approved in one go until their end, for unknown-shape rules only', () => {
    const r = run();
    r.shapes.seen({
      subject: admin.subject,
      database: 'shop',
      fingerprint: 'fp-sel',
      shape: 'SELECT * FROM t WHERE id = $1',
      rule: {
        guardrail: 'agents',
        rule: 'closed',
        approval: { approvers: [{ kind: 'Group', name: 'approvers' }] },
      },
    });
    expect(r.shapes.approve(lead, { subject: admin.subject, forSeconds: 3600, reason: 'seen' })).toHaveLength(
      1,
    );
    const later = restart(r.records, T0 + 1000);
    expect(later.shapes.approved(admin.subject, 'shop', 'fp-sel')).toBe(true);
    // Not a requireApproval release: a grant in one go never was.
    expect(
      later.book.claim({ ...drop, statement: 'SELECT * FROM t WHERE id = 1' }, 'fp-sel'),
    ).toBeUndefined();
    expect(restart(r.records, T0 + 3600_000).shapes.approved(admin.subject, 'shop', 'fp-sel')).toBe(false);
  });

  it.each([
    ['a changed fingerprint', (rec: Record<string, unknown>) => ({ ...rec, fingerprint: 'fp-other' })],
    ['a shapeUntil that is no time', (rec: Record<string, unknown>) => ({ ...rec, shapeUntil: 'soon' })],
    ['no time', (rec: Record<string, unknown>) => ({ ...rec, time: undefined })],
    ['rules that are no names', (rec: Record<string, unknown>) => ({ ...rec, rules: ['nameless'] })],
    ['an unknown event', (rec: Record<string, unknown>) => ({ ...rec, event: 'granted' })],
    ['no decider', (rec: Record<string, unknown>) => ({ ...rec, by: undefined })],
  ])('restores nothing of a request with a record that does not parse: %s', (_, change) => {
    const r = run();
    const request = r.open(drop, 'fp-drop');
    r.book.decide(request.id, lead, 'approve', 'release', { shapeForSeconds: 3600 });
    const records = r.records.map((rec) => (rec['event'] === 'approved' ? change(rec) : rec));
    const later = restart(records, T0 + 1000);
    expect(later.book.claim(drop, 'fp-drop')).toBeUndefined();
    expect(later.shapes.approved(admin.subject, 'shop', 'fp-drop')).toBe(false);
    expect(later.restored.skipped.map((s) => s.request)).toEqual([request.id]);
  });

  it('refuses records out of order: an approval after a denial, an execution before an approval', () => {
    const r = run();
    const request = r.open(drop, 'fp-drop');
    r.book.decide(request.id, lead, 'deny', 'no');
    const [requested, denied] = r.records;
    const approved = { ...denied, event: 'approved', shapeUntil: new Date(T0 + 3600_000).toISOString() };
    expect(restart([requested!, denied!, approved], T0 + 1).book.claim(drop, 'fp-drop')).toBeUndefined();
    const executed = { ...denied, event: 'executed' };
    expect(restoreApprovals([requested!, executed], T0 + 1).skipped).toEqual([
      { request: request.id, why: 'Executed after Pending' },
    ]);
  });
});
