import type { Server } from 'node:net';

/** What a protocol's session offers to a graceful shutdown. */
export interface DrainableSession {
  readonly idle: boolean;
  terminate(reason: string): void;
}

/**
 * Stops accepting connections, ends idle sessions at once and busy ones when they next become idle
 * (each session checks when it goes idle), and after `graceMs` ends whatever is left.
 */
export async function drainSessions(
  server: Server,
  sessions: ReadonlySet<DrainableSession>,
  graceMs: number,
): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const session of sessions) if (session.idle) session.terminate('shutdown');
  const allEnded = new Promise<void>((resolve) => {
    const check = () => (sessions.size === 0 ? resolve() : setTimeout(check, 50).unref());
    check();
  });
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, graceMs);
  });
  await Promise.race([allEnded, grace]);
  clearTimeout(timer);
  for (const session of sessions) session.terminate('shutdown');
  await closed;
}
