import { createServer, type Server } from 'node:net';
import { UserError } from './errors.ts';

/** A port the program is about to listen on, and how its user changes it. */
export interface PlannedListener {
  readonly host: string;
  /** 0 picks a free port, which is never taken. */
  readonly port: number;
  /** What listens there, for a person: `the proxy`, `metrics`. */
  readonly role: string;
  /** The flag (or setting) that changes it: `--port`, `--listen HOST:PORT`. */
  readonly change: string;
}

const problems: Readonly<Record<string, string>> = {
  EADDRINUSE: 'is in use (another Gatehouse?)',
  EACCES: 'needs privileges this process does not have',
  EADDRNOTAVAIL: 'is not an address of this machine',
};

/**
 * Binds each planned port for a moment, so a start that would fail to listen fails before it has
 * touched any file (an audit log, a database), with one line naming the port and the flag to change.
 * Listening right after can still lose a race; this is the early, readable answer, not a guarantee.
 */
export async function checkPortsFree(listeners: readonly PlannedListener[]): Promise<void> {
  const planned = listeners.filter((l) => l.port !== 0);
  for (const [index, listener] of planned.entries()) {
    const twin = planned.slice(0, index).find((earlier) => earlier.port === listener.port);
    if (twin)
      throw new UserError(
        `${twin.role} and ${listener.role} are both given port ${listener.port}; change one with ${listener.change}`,
      );
  }
  const bound: Server[] = [];
  try {
    for (const listener of planned) {
      try {
        bound.push(await bind(listener.host, listener.port));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        const problem = problems[code] ?? `cannot be listened on (${code || String(error)})`;
        throw new UserError(
          `port ${listener.port} on ${listener.host} (${listener.role}) ${problem}; choose another with ${listener.change}`,
        );
      }
    }
  } finally {
    await Promise.all(bound.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

function bind(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}
