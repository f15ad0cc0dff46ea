import { describe, expect, it } from 'vitest';
import type { Identity } from '../identity/identity.ts';
import type { ShapeRule } from '../policy/gates/policy-hooks.ts';
import { ApprovalBook } from './approval-book.ts';
import type { ShapeGrant } from './approval-request.ts';
import { parametersHash } from './approval-request.ts';
import { ShapeRegistry } from './learned-shapes.ts';

const person = (subject: string, groups: string[] = []): Identity => ({ subject, groups, method: 'local' });
const lead = person('local:lead', ['approvers']);
const bot = person('local:bot', ['approvers']);
const outsider = person('local:mallory');

const closedWorld: ShapeRule = {
  guardrail: 'agents',
  rule: 'closed-world',
  approval: { approvers: [{ kind: 'Group', name: 'approvers' }] },
};

function registry() {
  let now = Date.parse('2026-12-07T10:00:00Z');
  let n = 0;
  const grants: ShapeGrant[] = [];
  const book = new ApprovalBook({ now: () => now });
  const shapes = new ShapeRegistry(book, {
    now: () => now,
    newId: () => `sa-${++n}`,
    onGrant: (g) => grants.push(g),
  });
  const see = (
    fingerprint: string,
    rule: ShapeRule = closedWorld,
    subject = 'local:bot',
    database = 'shop',
  ) =>
    shapes.seen({
      subject,
      database,
      fingerprint,
      shape: `SELECT ${fingerprint} FROM t WHERE id = $1`,
      rule,
    });
  return { book, shapes, grants, see, advance: (seconds: number) => (now += seconds * 1000) };
}

describe('ShapeRegistry', () => {
  it('learns the shapes an identity uses, counts them, and lists them newest first', () => {
    const { shapes, see, advance } = registry();
    see('aaa');
    advance(1);
    see('bbb');
    advance(1);
    see('aaa');
    see('ccc', closedWorld, 'local:other');
    const mine = shapes.list({ subject: 'local:bot' });
    expect(mine.map((s) => [s.fingerprint, s.count])).toEqual([
      ['aaa', 2],
      ['bbb', 1],
    ]);
    expect(mine[0]!.rules).toEqual([closedWorld]);
    expect(shapes.maySee(mine[0]!, lead)).toBe(true);
    expect(shapes.maySee(mine[0]!, outsider)).toBe(false);
  });

  it('approves learned shapes in one go, for that identity and database only, until the period ends', () => {
    const { shapes, see, grants, advance } = registry();
    see('aaa');
    see('bbb');
    see('aaa', closedWorld, 'local:bot', 'other-db');
    expect(shapes.approved('local:bot', 'shop', 'aaa')).toBe(false);
    const granted = shapes.approve(lead, {
      subject: 'local:bot',
      database: 'shop',
      forSeconds: 3600,
      reason: 'seen',
    });
    expect(Array.isArray(granted) && granted.map((g) => g.fingerprint).sort()).toEqual(['aaa', 'bbb']);
    expect(grants.map((g) => [g.id, g.by, g.reason])).toEqual([
      ['sa-1', 'local:lead', 'seen'],
      ['sa-2', 'local:lead', 'seen'],
    ]);
    expect(shapes.approved('local:bot', 'shop', 'aaa')).toBe(true);
    expect(shapes.approved('local:bot', 'other-db', 'aaa')).toBe(false);
    expect(shapes.approved('local:other', 'shop', 'aaa')).toBe(false);
    expect(shapes.approved('local:bot', 'shop', 'zzz')).toBe(false);
    expect(shapes.list({ subject: 'local:bot', database: 'shop' })[0]!.approvedUntil).toBe(
      Date.parse('2026-12-07T11:00:00Z'),
    );
    advance(3600);
    expect(shapes.approved('local:bot', 'shop', 'aaa')).toBe(false);
  });

  it('approves only the fingerprints named, and refuses ones never learned', () => {
    const { shapes, see } = registry();
    see('aaa');
    see('bbb');
    expect(
      shapes.approve(lead, { subject: 'local:bot', fingerprints: ['bbb'], forSeconds: 60, reason: 'r' }),
    ).toHaveLength(1);
    expect(shapes.approved('local:bot', 'shop', 'aaa')).toBe(false);
    expect(
      shapes.approve(lead, {
        subject: 'local:bot',
        fingerprints: ['bbb', 'nope'],
        forSeconds: 60,
        reason: 'r',
      }),
    ).toMatchObject({
      problem: 'not-found',
    });
    expect(shapes.approve(lead, { subject: 'local:nobody', forSeconds: 60, reason: 'r' })).toMatchObject({
      problem: 'not-found',
    });
  });

  it('refuses, all or none, a decider who is not an approver of every rule, the identity itself, a rule without approvers, and periods past 30 days', () => {
    const { shapes, see } = registry();
    see('aaa');
    see('bbb', {
      guardrail: 'other',
      rule: 'strict',
      approval: { approvers: [{ kind: 'User', name: 'local:boss' }] },
    });
    expect(shapes.approve(lead, { subject: 'local:bot', forSeconds: 60, reason: 'r' })).toMatchObject({
      problem: 'not-an-approver',
      message: 'local:lead is not an approver of rule strict of Guardrail other',
    });
    expect(shapes.approved('local:bot', 'shop', 'aaa')).toBe(false);
    expect(
      shapes.approve(bot, { subject: 'local:bot', fingerprints: ['aaa'], forSeconds: 60, reason: 'r' }),
    ).toMatchObject({
      problem: 'self-approval',
    });
    see('ccc', { guardrail: 'blocks', rule: 'closed' });
    expect(
      shapes.approve(lead, { subject: 'local:bot', fingerprints: ['ccc'], forSeconds: 60, reason: 'r' }),
    ).toMatchObject({
      problem: 'not-an-approver',
      message: expect.stringContaining('names no approvers'),
    });
    for (const forSeconds of [0, 1.5, 31 * 86400])
      expect(
        shapes.approve(lead, { subject: 'local:bot', fingerprints: ['aaa'], forSeconds, reason: 'r' }),
      ).toMatchObject({
        problem: 'invalid',
      });
  });

  it('counts a shape approved on a request (--for) as approved', () => {
    const { book, shapes } = registry();
    const { request } = book.open({
      binding: {
        subject: 'local:bot',
        database: 'shop',
        statement: 'SELECT 1 FROM t WHERE id = 1',
        parametersHash: parametersHash([]),
      },
      fingerprint: 'fff',
      shape: 'SELECT $1 FROM t WHERE id = $2',
      requester: bot,
      rules: [
        {
          guardrail: 'agents',
          rule: 'closed-world',
          approvers: [{ kind: 'Group', name: 'approvers' }],
          allowSelfApproval: false,
          waitSeconds: 5,
          ttlSeconds: 60,
        },
      ],
      impact: {},
    });
    expect(shapes.approved('local:bot', 'shop', 'fff')).toBe(false);
    book.decide(request.id, lead, 'approve', 'recurring', { shapeForSeconds: 600 });
    expect(shapes.approved('local:bot', 'shop', 'fff')).toBe(true);
    expect(shapes.approved('local:lead', 'shop', 'fff')).toBe(false);
  });
});
