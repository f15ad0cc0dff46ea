import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { osUser, runningAsRoot } from '../harness/os-user.ts';
import type { PostgresInfo } from '../harness/postgres.ts';
import { startBackground, waitForPort } from './background-process.ts';
import { onFreePort } from './listen-retry.ts';
import type { Target } from './target.ts';

export const PGBOUNCER = '/usr/sbin/pgbouncer';

/**
 * PgBouncer in session mode, so each client keeps one server connection as it does through the other
 * proxies. It refuses to run as root; as root it is told to switch to the postgres user itself (-u),
 * which keeps the process we measure the pgbouncer process and not a runuser wrapper around it.
 */
export async function startPgbouncer(server: PostgresInfo, dir: string): Promise<Target> {
  const owner = runningAsRoot() ? await osUser('postgres') : undefined;
  const login = server.admin;
  const userlist = join(dir, 'userlist.txt');
  await writeFile(userlist, `${quoted(login.user)} ${quoted(login.password)}\n`, { mode: 0o600 });
  if (owner !== undefined) await chown(userlist, owner.uid, owner.gid);
  return onFreePort(async (port) => {
    const configFile = join(dir, 'pgbouncer.ini');
    await writeFile(configFile, pgbouncerConfig(port, server, userlist));
    const args = [...(owner === undefined ? [] : ['-u', owner.name]), configFile];
    const pgbouncer = startBackground('pgbouncer', PGBOUNCER, args, { cwd: dir });
    try {
      await waitForPort(pgbouncer, port);
    } catch (error) {
      await pgbouncer.stop();
      throw error;
    }
    return {
      name: 'pgbouncer',
      host: '127.0.0.1',
      port,
      login,
      pid: pgbouncer.pid,
      stop: () => pgbouncer.stop(),
    };
  });
}

function pgbouncerConfig(port: number, server: PostgresInfo, userlist: string): string {
  return `; Written by test/bench/pgbouncer.ts
[databases]
${server.database} = host=${server.host} port=${server.port} dbname=${server.database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${userlist}
pool_mode = session
max_client_conn = 200
default_pool_size = 50
server_tls_sslmode = disable
client_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
`;
}

/** userlist.txt quotes names and passwords in double quotes, doubling any inside. */
function quoted(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}
