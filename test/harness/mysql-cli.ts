import { type ExecResult, exec } from './exec.ts';
import { type MariaDbInfo, type MariaDbLogin, withoutMysqlVariables } from './mariadb.ts';

export type MysqlOptions = {
  server: MariaDbInfo;
  /** Defaults to the admin. */
  login?: MariaDbLogin;
  /** Override to point the client at a proxy instead of the server itself. */
  host?: string;
  port?: number;
  database?: string;
  /** 'verify' checks the certificate chain and host name against caFile (default: the server's CA). */
  ssl?: 'disable' | 'require' | 'verify';
  caFile?: string;
  input?: string;
  timeoutMs?: number;
};

/**
 * Runs the real mysql client (/usr/bin/mysql, MariaDB's) over TCP in batch mode, ignoring option files.
 * The password goes in MYSQL_PWD, not on the command line. Resolves with the exit code and output.
 */
export function mysql(args: readonly string[], options: MysqlOptions): Promise<ExecResult> {
  const login = options.login ?? options.server.admin;
  const ssl = options.ssl ?? 'disable';
  const sslArgs =
    ssl === 'disable'
      ? ['--skip-ssl']
      : ssl === 'require'
        ? ['--ssl']
        : ['--ssl', `--ssl-ca=${options.caFile ?? options.server.caFile}`, '--ssl-verify-server-cert'];
  return exec(
    '/usr/bin/mysql',
    [
      '--no-defaults',
      '--protocol=TCP',
      `--host=${options.host ?? options.server.host}`,
      `--port=${options.port ?? options.server.port}`,
      `--user=${login.user}`,
      '--connect-timeout=10',
      '--batch',
      ...sslArgs,
      ...args,
      options.database ?? options.server.database,
    ],
    {
      env: { ...withoutMysqlVariables(process.env), MYSQL_PWD: login.password },
      input: options.input,
      timeoutMs: options.timeoutMs,
      allowFailure: true,
    },
  );
}
