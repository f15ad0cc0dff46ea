import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import type { ProvidedContext } from 'vitest';

export type PostgresInfo = ProvidedContext['postgres'];

const run = promisify(execFile);

/** The proxy settings most tests share: local users demo/admin in front of the harness's database. */
export function localProxyConfig(
  postgres: PostgresInfo,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    upstream: {
      host: postgres.host,
      port: postgres.port,
      database: postgres.database,
      user: postgres.admin.user,
      password: { value: postgres.admin.password },
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

/** libpq connection string to the proxy. */
export function proxyDsn(port: number, user = 'demo', password = 'demo-secret', extra = ''): string {
  return `host=127.0.0.1 port=${port} dbname=app user=${user} password=${password} sslmode=disable ${extra}`.trim();
}

/** Runs the real psql; resolves with stdout, stderr and the exit code (never rejects on a non-zero exit). */
export async function psql(
  dsn: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/psql', [dsn, '-X', '-v', 'ON_ERROR_STOP=1', ...args], {
      env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? -1 });
    });
    child.stdin.end(options.input ?? '');
  });
}

export async function pgbench(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string }> {
  return run('/usr/bin/pgbench', args, { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 });
}

/** A node-postgres client connected through the proxy. */
export async function pgClient(
  port: number,
  user = 'demo',
  password = 'demo-secret',
  database = 'app',
): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    database,
    user,
    password,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}

/** A node-postgres client straight to the database, for checking what really happened there. */
export async function directClient(postgres: PostgresInfo): Promise<pg.Client> {
  const client = new pg.Client({
    host: postgres.host,
    port: postgres.port,
    database: postgres.database,
    user: postgres.admin.user,
    password: postgres.admin.password,
  });
  await client.connect();
  return client;
}

/** Drops and creates `database`, and returns an admin client connected to it (the caller ends it). */
export async function freshDatabase(postgres: PostgresInfo, database: string): Promise<pg.Client> {
  const bootstrap = await directClient(postgres);
  try {
    await bootstrap.query(`DROP DATABASE IF EXISTS ${database}`);
    await bootstrap.query(`CREATE DATABASE ${database}`);
  } finally {
    await bootstrap.end();
  }
  return directClient({ ...postgres, database });
}
