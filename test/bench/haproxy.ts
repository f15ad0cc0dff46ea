import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PostgresInfo } from '../harness/postgres.ts';
import { startBackground, waitForPort } from './background-process.ts';
import { onFreePort } from './listen-retry.ts';
import type { Target } from './target.ts';

export const HAPROXY = '/usr/sbin/haproxy';

/** HAProxy in TCP mode on one thread: the cost of a plain byte relay, the floor for any proxy. */
export function startHaproxy(server: PostgresInfo, dir: string): Promise<Target> {
  return onFreePort(async (port) => {
    const configFile = join(dir, 'haproxy.cfg');
    await writeFile(configFile, haproxyConfig(port, server));
    const haproxy = startBackground('haproxy', HAPROXY, ['-db', '-f', configFile], { cwd: dir });
    try {
      await waitForPort(haproxy, port);
    } catch (error) {
      await haproxy.stop();
      throw error;
    }
    return {
      name: 'haproxy',
      host: '127.0.0.1',
      port,
      login: server.admin,
      pid: haproxy.pid,
      stop: () => haproxy.stop(),
    };
  });
}

function haproxyConfig(port: number, server: PostgresInfo): string {
  return `# Written by test/bench/haproxy.ts
global
  nbthread 1
  maxconn 2000

defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h

frontend postgres
  bind 127.0.0.1:${port}
  default_backend postgres

backend postgres
  server db ${server.host}:${server.port}
`;
}
