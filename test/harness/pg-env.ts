import { type ExecResult, exec } from './exec.ts';
import { type PostgresInfo, withoutPgVariables } from './postgres.ts';

export type PgSslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export type PgConnection = {
  /** Defaults to the admin. A login without password relies on trust (or fails, which a test may want). */
  login?: { user: string; password?: string };
  /** Override to point a client at a proxy instead of the server itself. */
  host?: string;
  port?: number;
  database?: string;
  /** Left to libpq's default (prefer) when not given. */
  sslmode?: PgSslMode;
  /** CA for verify-ca and verify-full; defaults to the server's CA. */
  caFile?: string;
};

/**
 * libpq environment variables (PGHOST, PGPORT, ...) for psql, pgbench or any libpq client.
 * The password goes in PGPASSWORD, not on a command line that `ps` would show.
 */
export function pgEnv(server: PostgresInfo, connection: PgConnection = {}): Record<string, string> {
  const login = connection.login ?? server.admin;
  const env: Record<string, string> = {
    PGHOST: connection.host ?? server.host,
    PGPORT: String(connection.port ?? server.port),
    PGDATABASE: connection.database ?? server.database,
    PGUSER: login.user,
    PGCONNECT_TIMEOUT: '10',
  };
  if (login.password !== undefined) env['PGPASSWORD'] = login.password;
  if (connection.sslmode !== undefined) env['PGSSLMODE'] = connection.sslmode;
  // libpq verifies the chain whenever a root certificate is configured, even for sslmode=require,
  // so name one only when asked to verify or when the caller chose a CA.
  if (connection.caFile !== undefined || connection.sslmode?.startsWith('verify-')) {
    env['PGSSLROOTCERT'] = connection.caFile ?? server.caFile;
  }
  return env;
}

export type PsqlOptions = PgConnection & {
  server: PostgresInfo;
  /** Standard input, e.g. a script. */
  input?: string;
  timeoutMs?: number;
};

/**
 * Runs the real psql (/usr/bin/psql) without psqlrc, never prompting for a password, stopping at the
 * first error. Resolves with the exit code and output, so tests can assert failures too.
 */
export function psql(args: readonly string[], options: PsqlOptions): Promise<ExecResult> {
  return exec('/usr/bin/psql', ['-X', '--no-password', '-v', 'ON_ERROR_STOP=1', ...args], {
    env: { ...withoutPgVariables(process.env), ...pgEnv(options.server, options) },
    input: options.input,
    timeoutMs: options.timeoutMs,
    allowFailure: true,
  });
}
