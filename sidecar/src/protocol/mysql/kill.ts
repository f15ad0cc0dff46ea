import type { QueryText } from '../../sql/normalize.ts';
import { MysqlError } from './constants.ts';
import { packet } from './packet-io.ts';
import type { Refusal } from './pending.ts';

/** What the proxy knows of each session for KILL: who it is and which upstream thread serves it. */
export interface KillableSession {
  readonly upstreamThreadId: number | undefined;
  readonly identity: { readonly subject: string } | undefined;
  /** Withdraws the request its statement waits on, if one does; whether one did. */
  withdrawHeld?(): boolean;
}

/**
 * Gives each session the thread id its client sees, and finds a session by that id or by the upstream
 * thread id (which `SELECT CONNECTION_ID()` shows through the proxy).
 */
export class SessionRegistry {
  private readonly byId = new Map<number, KillableSession>();
  private next = 1;

  register(session: KillableSession): number {
    while (this.byId.has(this.next)) this.next = (this.next % 0x7fffffff) + 1;
    const id = this.next;
    this.next = (this.next % 0x7fffffff) + 1;
    this.byId.set(id, session);
    return id;
  }

  release(id: number): void {
    this.byId.delete(id);
  }

  lookup(id: number): KillableSession | undefined {
    const direct = this.byId.get(id);
    if (direct) return direct;
    for (const session of this.byId.values()) if (session.upstreamThreadId === id) return session;
    return undefined;
  }
}

const KILL = /^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(QUERY|CONNECTION)\s+)?(?:ID\s+)?(\d{1,10})\s*;?\s*$/i;

/** The target of a plain `KILL [QUERY|CONNECTION] n`; undefined for anything else. */
export function killTarget(sql: string): { scope: 'QUERY' | 'CONNECTION'; id: number } | undefined {
  const match = KILL.exec(sql);
  if (!match) return undefined;
  return { scope: match[1]?.toUpperCase() === 'QUERY' ? 'QUERY' : 'CONNECTION', id: Number(match[2]) };
}

/**
 * What a `KILL [QUERY|CONNECTION] n` becomes through the proxy: `n` is a thread id the client saw in a
 * greeting, mapped to the upstream thread, and only for a session of the same identity; any other is
 * refused as the server refuses an unknown thread. Undefined when `sql` is no plain KILL. A statement
 * the target holds for approval has not reached the server: the KILL withdraws its request, and still
 * goes upstream for whatever the server runs for that session.
 */
export function mapKill(
  sql: string,
  sessions: SessionRegistry,
  subject: string,
): { text: QueryText; upstream: Buffer } | { text: QueryText; refusal: Refusal } | undefined {
  const kill = killTarget(sql);
  if (!kill) return undefined;
  const target = sessions.lookup(kill.id);
  const text: QueryText = { statement: `KILL ${kill.scope} ?`, fingerprint: null };
  if (!target || target.upstreamThreadId === undefined || target.identity?.subject !== subject)
    return {
      text,
      refusal: {
        kind: MysqlError.NO_SUCH_THREAD,
        message: `Unknown thread id: ${kill.id}`,
        reason: 'kill-not-own-session',
      },
    };
  target.withdrawHeld?.();
  return {
    text,
    upstream: packet(Buffer.from(`\x03KILL ${kill.scope} ${target.upstreamThreadId}`, 'latin1'), 0),
  };
}
