import { join } from 'node:path';
import type { PostgresInfo } from '../harness/postgres.ts';
import { startBackground, waitForPort } from './background-process.ts';
import { onFreePort } from './listen-retry.ts';
import type { Target } from './target.ts';

const SERVER = join(import.meta.dirname, 'node-relay-server.ts');

/** A bare Node.js byte relay: the floor for any proxy written in Node on this machine. */
export function startNodeRelay(server: PostgresInfo, dir: string): Promise<Target> {
  return onFreePort(async (port) => {
    const relay = startBackground(
      'node-relay',
      process.execPath,
      [SERVER, String(port), server.host, String(server.port)],
      { cwd: dir },
    );
    try {
      await waitForPort(relay, port);
    } catch (error) {
      await relay.stop();
      throw error;
    }
    return {
      name: 'node-relay',
      host: '127.0.0.1',
      port,
      login: server.admin,
      pid: relay.pid,
      stop: () => relay.stop(),
    };
  });
}
