import { describe, expect, it } from 'vitest';
import { MysqlError } from './constants.ts';
import { mapKill, SessionRegistry } from './kill.ts';

function registry() {
  const sessions = new SessionRegistry();
  const mine = sessions.register({ upstreamThreadId: 501, identity: { subject: 'alice' } });
  const theirs = sessions.register({ upstreamThreadId: 502, identity: { subject: 'bob' } });
  const starting = sessions.register({ upstreamThreadId: undefined, identity: undefined });
  return { sessions, mine, theirs, starting };
}

const sqlOf = (bytes: Buffer) => bytes.toString('latin1', 5);

describe('mapKill', () => {
  it("sends a KILL of one's own session to its upstream thread, by either id", () => {
    const { sessions, mine } = registry();
    for (const [sql, sent] of [
      [`KILL ${mine}`, 'KILL CONNECTION 501'],
      [`kill query ${mine};`, 'KILL QUERY 501'],
      [`KILL HARD CONNECTION ID ${mine}`, 'KILL CONNECTION 501'],
      ['KILL 501', 'KILL CONNECTION 501'],
    ] as const) {
      const kill = mapKill(sql, sessions, 'alice');
      expect(kill && 'upstream' in kill && sqlOf(kill.upstream), sql).toBe(sent);
      // The audit never sees the thread id.
      expect(kill?.text.statement).toMatch(/^KILL (QUERY|CONNECTION) \?$/);
    }
  });

  it("refuses a KILL of another identity's session, of one still logging in, or of no session", () => {
    const { sessions, theirs, starting } = registry();
    for (const id of [theirs, 502, starting, 9999]) {
      const kill = mapKill(`KILL ${id}`, sessions, 'alice');
      expect(kill && 'refusal' in kill && kill.refusal.kind, String(id)).toBe(MysqlError.NO_SUCH_THREAD);
    }
  });

  it('withdraws what the target holds for approval, and still kills upstream; never for another identity', () => {
    const sessions = new SessionRegistry();
    const withdrawn: string[] = [];
    const held = (subject: string, thread: number) =>
      sessions.register({
        upstreamThreadId: thread,
        identity: { subject },
        withdrawHeld: () => withdrawn.push(subject) > 0,
      });
    const mine = held('alice', 501);
    const theirs = held('bob', 502);
    const query = mapKill(`KILL QUERY ${mine}`, sessions, 'alice');
    expect(query && 'upstream' in query && sqlOf(query.upstream)).toBe('KILL QUERY 501');
    expect(mapKill(`KILL QUERY ${theirs}`, sessions, 'alice')).toHaveProperty('refusal');
    expect(mapKill(`KILL ${mine}`, sessions, 'alice')).toHaveProperty('upstream');
    expect(withdrawn).toEqual(['alice', 'alice']);
  });

  it('leaves anything but a plain KILL to the gate', () => {
    const { sessions } = registry();
    for (const sql of [
      'SELECT 1',
      'KILL USER bob',
      'KILL (SELECT 1)',
      'KILL 1; DROP TABLE t',
      '/* x */ KILL 1',
    ])
      expect(mapKill(sql, sessions, 'alice'), sql).toBeUndefined();
  });
});
