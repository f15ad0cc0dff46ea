import mysql from 'mysql2/promise';
import type { ProvidedContext } from 'vitest';

export type MariaDbInfo = ProvidedContext['mariadb'];

/** The proxy settings the MySQL tests share: local users demo/admin in front of the harness's MariaDB. */
export function mysqlProxyConfig(
  server: MariaDbInfo,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    upstream: {
      protocol: 'mysql',
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.users.native.user,
      password: { value: server.users.native.password },
    },
    identity: {
      mode: 'local',
      local: {
        users: [
          { name: 'demo', password: 'demo-secret' },
          { name: 'admin', password: 'admin-secret', groups: ['admins'] },
        ],
      },
    },
    audit: { file: 'audit.jsonl', stdout: false },
    ...extra,
  };
}

/** A mysql2 connection through the proxy (cleartext password: the proxy asks for mysql_clear_password). */
export async function mysqlClient(
  port: number,
  options: { user?: string; password?: string; database?: string } & Partial<mysql.ConnectionOptions> = {},
): Promise<mysql.Connection> {
  const { user = 'demo', password = 'demo-secret', database = 'app', ...rest } = options;
  const connection = await mysql.createConnection({
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    enableCleartextPlugin: true,
    connectTimeout: 10_000,
    ...rest,
  });
  connection.on('error', () => {});
  return connection;
}

/** A mysql2 connection straight to MariaDB as its administrator, to see what really happened there. */
export async function directMysql(
  server: MariaDbInfo,
  database = server.database,
): Promise<mysql.Connection> {
  const connection = await mysql.createConnection({
    host: server.host,
    port: server.port,
    user: server.admin.user,
    password: server.admin.password,
    database,
    multipleStatements: true,
  });
  connection.on('error', () => {});
  return connection;
}
