import { describe, expect, it } from 'vitest';
import { captureLogs } from '../identity/log-capture.ts';
import { ApprovalBook } from './approval-book.ts';
import { parametersHash } from './approval-request.ts';
import type { HeldStatement } from './hold.ts';
import { SessionHolds } from './session-holds.ts';

const lead = { subject: 'local:lead', groups: ['approvers'], method: 'local' as const };
const held = (statement: string, waitSeconds = 60): HeldStatement => ({
  binding: { subject: 'local:demo', database: 'db', statement, parametersHash: parametersHash([]) },
  fingerprint: null,
  shape: statement,
  requester: { subject: 'local:demo', groups: [], method: 'local' },
  rules: [
    {
      guardrail: 'g',
      rule: 'r',
      approvers: [{ kind: 'Group', name: 'approvers' }],
      allowSelfApproval: false,
      waitSeconds,
      ttlSeconds: 600,
      autoApprove: [],
    },
  ],
  impact: {},
  facts: { kinds: ['drop'], tables: [], affectedRows: undefined, sensitiveColumns: undefined },
});

describe('SessionHolds', () => {
  it('holds a text, resumes once, and hands the decision to that text once', async () => {
    const book = new ApprovalBook();
    const holds = new SessionHolds(book, captureLogs().logger);
    const start = holds.begin('DROP TABLE t', held('DROP TABLE t'));
    if (start.run) throw new Error('expected a pending request');
    expect(holds.waiting).toBe(true);
    const waiting = holds.resumeAfter();
    expect(waiting).toBeDefined();
    // More client bytes while it waits: the resumption is not arranged twice.
    expect(holds.resumeAfter()).toBeUndefined();
    expect(holds.take('DROP TABLE t')).toBeUndefined();
    book.decide(start.request.id, lead, 'approve', 'ok');
    await waiting;
    expect(holds.waiting).toBe(false);
    expect(holds.take('DROP TABLE other')).toBeUndefined();
    expect(holds.take('DROP TABLE t')).toEqual({
      run: true,
      released: new Set(['g/r']),
      request: start.request.id,
    });
    expect(holds.take('DROP TABLE t')).toBeUndefined();
  });

  it('a cancel withdraws the waiting request and the text is refused', async () => {
    const book = new ApprovalBook();
    const holds = new SessionHolds(book, captureLogs().logger);
    holds.begin('DROP TABLE t', held('DROP TABLE t'));
    const waiting = holds.resumeAfter()!;
    holds.cancel();
    await waiting;
    expect(holds.take('DROP TABLE t')).toMatchObject({ run: false, request: { phase: 'Withdrawn' } });
  });

  it('after the wait ran out, a later approval releases the identical text at once', async () => {
    const book = new ApprovalBook();
    const holds = new SessionHolds(book, captureLogs().logger);
    const first = holds.begin('DROP TABLE t', held('DROP TABLE t', 0.01));
    if (first.run) throw new Error('expected a pending request');
    await holds.resumeAfter();
    expect(holds.take('DROP TABLE t')).toMatchObject({ run: false, request: { phase: 'Pending' } });
    book.decide(first.request.id, lead, 'approve', 'ok');
    const again = holds.begin('DROP TABLE t', held('DROP TABLE t'));
    expect(again).toEqual({ run: true, released: new Set(['g/r']), request: first.request.id });
  });
});
