import { describe, expect, it } from 'vitest';
import { ApprovalBook } from '../../approvals/approval-book.ts';
import { withMeasured } from '../../approvals/held-statement.ts';
import type { HeldStatement } from '../../approvals/hold.ts';
import { SessionHolds } from '../../approvals/session-holds.ts';
import { captureLogs } from '../../identity/log-capture.ts';
import { executeApproval, heldText } from './approval-holds.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import type { BoundExecution } from './command-holds.ts';
import { MysqlError } from './constants.ts';
import { PreparedStatements, type PreparedText } from './pending.ts';

const lead = { subject: 'local:lead', groups: ['approvers'], method: 'local' as const };
const SQL = 'UPDATE orders SET note = ?';
const held: HeldStatement = {
  binding: { subject: 'local:demo', database: 'db', statement: SQL, parametersHash: '' },
  fingerprint: 'f',
  shape: SQL,
  requester: { subject: 'local:demo', groups: [], method: 'local' },
  rules: [
    {
      guardrail: 'g',
      rule: 'r',
      approvers: [{ kind: 'Group', name: 'approvers' }],
      allowSelfApproval: false,
      waitSeconds: 60,
      ttlSeconds: 600,
      autoApprove: [],
    },
  ],
  impact: {},
  facts: {
    kinds: ['update-without-where'],
    tables: [],
    affectedRows: undefined,
    sensitiveColumns: undefined,
  },
};
const text: PreparedText = { text: { statement: SQL, fingerprint: 'f' }, approval: { sql: SQL, held } };

/** COM_STMT_EXECUTE of statement `id` with one VAR_STRING parameter. */
function execute(id: number, note: string): Buffer {
  const head = Buffer.alloc(10);
  head[0] = 0x17;
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(1, 6);
  const value = Buffer.from(note);
  return Buffer.concat([head, Buffer.from([0, 1, 0xfd, 0, value.length]), value]);
}

function session(waitSeconds = 60) {
  const book = new ApprovalBook();
  const holds = new SessionHolds(book, captureLogs().logger);
  const prepared = new PreparedStatements();
  const waits: PreparedText = {
    ...text,
    approval: { sql: SQL, held: { ...held, rules: [{ ...held.rules[0]!, waitSeconds }] } },
  };
  prepared.set(1, waits, 1);
  const measured: BoundExecution[] = [];
  const measure = (_sql: string, h: HeldStatement, bound?: BoundExecution) => {
    if (bound) measured.push(bound);
    return withMeasured(h, { affectedRows: 7 });
  };
  const run = (note: string, id = 1) =>
    executeApproval(holds, prepared, id, waits, execute(id, note), measure);
  return { book, holds, prepared, run, measured };
}

describe('executeApproval', () => {
  it('holds an execution until its own parameters are approved, then releases it once', async () => {
    const { book, holds, run } = session();
    expect(run('a')).toBe(HOLD_COMMAND);
    const [request] = book.list();
    expect(request?.binding.parametersHash).toMatch(/^[0-9a-f]{64}$/);
    book.decide(request!.id, lead, 'approve', 'ok');
    await holds.resumeAfter();
    // The command is handed back: its decision is taken, once.
    expect(run('a')).toEqual({ request: request!.id });
    expect(book.get(request!.id)?.phase).toBe('Executed');
    expect(run('a')).toBe(HOLD_COMMAND);
  });

  it('an approval of other parameters never releases it; its own, approved after the wait, runs at once', async () => {
    const { book, holds, run } = session(0.01);
    expect(run('a')).toBe(HOLD_COMMAND);
    await holds.resumeAfter();
    expect(run('a')).toMatchObject({ refusal: { message: expect.stringContaining('still pending') } });
    const request = book.list()[0]!;
    book.decide(request.id, lead, 'approve', 'ok');
    for (const other of ['b', 'a ', '']) {
      expect(run(other), other).toBe(HOLD_COMMAND);
      await holds.resumeAfter();
      run(other);
    }
    expect(book.get(request.id)?.phase).toBe('Approved');
    expect(run('a')).toEqual({ request: request.id });
  });

  it('refuses an execution whose parameters cannot be bound, without holding it', () => {
    const { book, prepared, run } = session();
    // MariaDB's -1 (the last prepared) names no statement whose parameters are known.
    expect(run('a', 0xffffffff)).toMatchObject({
      refusal: { kind: MysqlError.NOT_SUPPORTED, message: expect.stringContaining('statement id') },
    });
    prepared.longData(1, true);
    expect(run('a')).toMatchObject({
      refusal: { message: expect.stringContaining('COM_STMT_SEND_LONG_DATA') },
    });
    prepared.longData(1, false);
    const malformed = execute(1, 'a');
    malformed[12] = 0x11;
    expect(executeApproval(session().holds, prepared, 1, text, malformed, (_s, h) => h)).toMatchObject({
      refusal: { message: expect.stringContaining('type 0x11') },
    });
    expect(book.list()).toEqual([]);
  });
});

describe('executeApproval measures', () => {
  it("each execution's impact with its own parameters, before its request opens", () => {
    const { book, run, measured } = session();
    expect(run('a')).toBe(HOLD_COMMAND);
    expect(run('bc')).toBe(HOLD_COMMAND);
    // The parameter block as the server reads it: null bitmap, new-params-bound with the type, the value.
    expect(measured.map((m) => m.parameters)).toEqual([
      { count: 1, block: Buffer.from([0, 1, 0xfd, 0, 1, 0x61]) },
      { count: 1, block: Buffer.from([0, 1, 0xfd, 0, 2, 0x62, 0x63]) },
    ]);
    expect(new Set(measured.map((m) => m.key)).size).toBe(2);
    expect(book.list().map((r) => r.impact.affectedRows)).toEqual([7, 7]);
  });
});

describe('heldText', () => {
  it('names a text of several statements by all of them', () => {
    const a = { statement: 'DELETE FROM t', fingerprint: 'fa' };
    const b = { statement: 'SELECT ?', fingerprint: 'fb' };
    expect(heldText([a])).toEqual({ fingerprint: 'fa', shape: 'DELETE FROM t' });
    const both = heldText([a, b]);
    expect(both.shape).toBe('DELETE FROM t;\nSELECT ?');
    expect(both.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(heldText([b, a]).fingerprint).not.toBe(both.fingerprint);
    expect(heldText([a, { statement: 'SELECT ?', fingerprint: 'fc' }]).fingerprint).not.toBe(
      both.fingerprint,
    );
    expect(heldText([a, { statement: null, fingerprint: null }])).toEqual({ fingerprint: null, shape: null });
  });
});
