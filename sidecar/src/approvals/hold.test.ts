import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Identity } from '../identity/identity.ts';
import { ApprovalBook } from './approval-book.ts';
import { parametersHash } from './approval-request.ts';
import {
  type HeldStatement,
  type HoldingRule,
  heldNotice,
  hold,
  notReleasedMessage,
  waitForDecision,
} from './hold.ts';

const admin: Identity = { subject: 'local:admin', groups: ['admins'], method: 'local' };
const lead: Identity = { subject: 'local:lead', groups: ['approvers'], method: 'local' };

const rule = (over: Partial<HoldingRule> = {}): HoldingRule => ({
  guardrail: 'admin-approvals',
  rule: 'drops',
  approvers: [{ kind: 'Group', name: 'approvers' }],
  allowSelfApproval: false,
  waitSeconds: 120,
  ttlSeconds: 900,
  autoApprove: [],
  ...over,
});

const held = (over: Partial<HeldStatement> = {}): HeldStatement => ({
  binding: {
    subject: admin.subject,
    database: 'shop',
    statement: 'DROP TABLE t',
    parametersHash: parametersHash([]),
  },
  fingerprint: 'fp-drop-t',
  shape: 'DROP TABLE t',
  requester: admin,
  rules: [rule()],
  impact: { tables: ['t'] },
  facts: { kinds: ['drop'], tables: ['t'], affectedRows: undefined, sensitiveColumns: [] },
  ...over,
});

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(new Date('2026-12-07T10:00:00Z'));
});
afterEach(() => vi.useRealTimers());

const at = () => new Date();

describe('hold and waitForDecision', () => {
  it("names the book's way of deciding in the held notice (kubectl gatehouse in a cluster)", () => {
    const book = new ApprovalBook({
      decideCommand: ({ id, rules }) => `kubectl gatehouse approve ${id} -n ${rules[0]?.namespace}`,
    });
    const start = hold(book, held({ rules: [rule({ namespace: 'shop' })] }), at());
    if (!('pending' in start)) throw new Error('expected a pending request');
    expect(heldNotice(start.pending)).toContain(
      `An approver runs: kubectl gatehouse approve ${start.pending.id} -n shop --reason "..."`,
    );
    expect(heldNotice(start.pending)).not.toContain('gatehouse approvals approve');
  });

  it('opens a request, waits, and runs the statement when an approver approves', async () => {
    const book = new ApprovalBook();
    const first = hold(book, held(), at());
    if (!('pending' in first)) throw new Error('expected a pending request');
    expect(heldNotice(first.pending)).toContain(`gatehouse approvals approve ${first.pending.id}`);
    const waiting = waitForDecision(book, held(), first.pending.id, 120_000);
    vi.advanceTimersByTime(5_000);
    book.decide(first.pending.id, lead, 'approve', 'ok');
    const outcome = await waiting;
    expect(outcome).toMatchObject({ run: true, by: 'statement', request: { phase: 'Executed' } });
  });

  it('answers a denial with who denied and why', async () => {
    const book = new ApprovalBook();
    const first = hold(book, held(), at()) as { pending: { id: string } };
    const waiting = waitForDecision(book, held(), first.pending.id, 120_000);
    book.decide(first.pending.id, lead, 'deny', 'not during the sale');
    const outcome = await waiting;
    expect(outcome.run).toBe(false);
    expect(notReleasedMessage(outcome.request)).toContain('was denied by local:lead: not during the sale');
  });

  it('stops waiting after waitSeconds, leaves the request open, and a re-run within the TTL uses a later approval once', async () => {
    const book = new ApprovalBook();
    const first = hold(book, held(), at()) as { pending: { id: string } };
    const waiting = waitForDecision(book, held(), first.pending.id, 120_000);
    vi.advanceTimersByTime(120_000);
    const outcome = await waiting;
    expect(outcome).toMatchObject({ run: false, request: { phase: 'Pending' } });
    expect(notReleasedMessage(outcome.request)).toContain('is still pending after 120 s');
    vi.advanceTimersByTime(60_000);
    book.decide(first.pending.id, lead, 'approve', 'later');
    expect(hold(book, held(), at())).toMatchObject({ run: true, by: 'statement' });
    // Used once: the next identical statement asks anew.
    expect(hold(book, held(), at())).toHaveProperty('pending');
  });

  it('withdraws the request when the client cancels', async () => {
    const book = new ApprovalBook();
    const first = hold(book, held(), at()) as { pending: { id: string } };
    const cancel = new AbortController();
    const waiting = waitForDecision(book, held(), first.pending.id, 120_000, cancel.signal);
    cancel.abort();
    const outcome = await waiting;
    expect(outcome).toMatchObject({ run: false, request: { phase: 'Withdrawn' } });
    expect(notReleasedMessage(outcome.request)).toContain('was withdrawn');
  });

  it('two sessions waiting on the identical statement: one runs, the other is told the approval was used', async () => {
    const book = new ApprovalBook();
    const a = hold(book, held(), at()) as { pending: { id: string } };
    const b = hold(book, held(), at()) as { pending: { id: string } };
    expect(b.pending.id).toBe(a.pending.id);
    const waits = [
      waitForDecision(book, held(), a.pending.id, 120_000),
      waitForDecision(book, held(), b.pending.id, 120_000),
    ];
    book.decide(a.pending.id, lead, 'approve', 'ok');
    const outcomes = await Promise.all(waits);
    expect(outcomes.map((o) => o.run).sort()).toEqual([false, true]);
    const loser = outcomes.find((o) => !o.run)!;
    expect(notReleasedMessage(loser.request)).toContain('used by another run');
  });

  it('a condition approves at once and names itself', () => {
    const book = new ApprovalBook();
    const outcome = hold(
      book,
      held({
        rules: [
          rule({
            autoApprove: [
              {
                name: 'admins-at-night',
                subjects: [{ kind: 'Group', name: 'admins' }],
                windows: [{ from: '09:00', to: '11:00' }],
              },
            ],
          }),
        ],
      }),
      at(),
    );
    expect(outcome).toMatchObject({
      run: true,
      by: 'condition',
      request: { decision: { condition: 'admins-at-night' } },
    });
  });

  it('a condition whose fact is unknown does not approve (rows not measured)', () => {
    const book = new ApprovalBook();
    const outcome = hold(
      book,
      held({ rules: [rule({ autoApprove: [{ name: 'small', maxAffectedRows: 1_000_000 }] })] }),
      at(),
    );
    expect(outcome).toHaveProperty('pending');
  });

  it('with several rules, conditions approve only when each rule has one that holds', () => {
    const admins = { name: 'admins', subjects: [{ kind: 'Group' as const, name: 'admins' }] };
    const second = rule({
      guardrail: 'security',
      rule: 'pii',
      approvers: [{ kind: 'Group', name: 'security' }],
    });
    expect(
      hold(new ApprovalBook(), held({ rules: [rule({ autoApprove: [admins] }), second] }), at()),
    ).toHaveProperty('pending');
    const both = hold(
      new ApprovalBook(),
      held({
        rules: [
          rule({ autoApprove: [admins] }),
          { ...second, autoApprove: [{ ...admins, name: 'admins-too' }] },
        ],
      }),
      at(),
    );
    expect(both).toMatchObject({ run: true, request: { decision: { condition: 'admins, admins-too' } } });
  });

  it('an approved shape releases other literals of the statement for the same identity', () => {
    const book = new ApprovalBook();
    const first = hold(book, held(), at()) as { pending: { id: string } };
    book.decide(first.pending.id, lead, 'approve', 'nightly', { shapeForSeconds: 3600 });
    const other = held({ binding: { ...held().binding, statement: 'DROP TABLE t -- again' } });
    expect(hold(book, other, at())).toMatchObject({ run: true, by: 'shape' });
  });
});
