import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from './exec.ts';
import { freePort } from './free-port.ts';
import { type OsUser, osUser, runningAsRoot } from './os-user.ts';
import type { TlsFiles } from './tls.ts';

/** Debian's PostgreSQL 15; named in full because /usr/local/bin may hold strays of another version. */
export const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

export type PgLogin = { user: string; password: string };

export type PostgresInfo = {
  host: string;
  port: number;
  database: string;
  /** Superuser; authenticates with scram-sha-256. */
  admin: PgLogin;
  /** One login role per upstream authentication method, set in pg_hba.conf for both TCP and the socket. */
  users: {
    scram: PgLogin;
    /** Password stored as an md5 hash, so the server really runs the md5 exchange. */
    md5: PgLogin;
    /** hba method `password`: the password crosses the wire in clear text. */
    clear: PgLogin;
    trust: { user: string };
  };
  /** CA that signed the server certificate (CN and SAN 127.0.0.1, SAN localhost). */
  caFile: string;
  certFile: string;
  keyFile: string;
  socketDir: string;
  binDir: string;
  dataDir: string;
  logFile: string;
};

export type PostgresServer = { info: PostgresInfo; stop(): Promise<void> };

export type StartPostgresOptions = {
  tls: TlsFiles;
  /** Extra postgresql.conf settings, e.g. { shared_preload_libraries: "'pg_stat_statements'" }; values are written as given. */
  settings?: Record<string, string>;
  startTimeoutMs?: number;
};

const DATABASE = 'app';
const ADMIN = 'gatehouse_admin';
const PORT_ATTEMPTS = 5;
const DEFAULT_START_TIMEOUT_MS = 30_000;

/**
 * Starts a throwaway PostgreSQL 15 on a free loopback port, in a fresh temporary directory.
 * PostgreSQL refuses to run as root, so as root every server command runs as the postgres user.
 */
export async function startPostgres(options: StartPostgresOptions): Promise<PostgresServer> {
  const owner = runningAsRoot() ? await osUser('postgres') : undefined;
  const baseDir = await mkdtemp(join(tmpdir(), 'gatehouse-pg-'));
  const dataDir = join(baseDir, 'data');
  const socketDir = join(baseDir, 'sock');
  const tlsDir = join(baseDir, 'tls');
  const logFile = join(baseDir, 'postgres.log');
  const info: PostgresInfo = {
    host: '127.0.0.1',
    port: 0,
    database: DATABASE,
    admin: { user: ADMIN, password: secret() },
    users: {
      scram: { user: 'scram_user', password: secret() },
      md5: { user: 'md5_user', password: secret() },
      clear: { user: 'clear_user', password: secret() },
      trust: { user: 'trust_user' },
    },
    caFile: join(tlsDir, 'ca.crt'),
    certFile: join(tlsDir, 'server.crt'),
    keyFile: join(tlsDir, 'server.key'),
    socketDir,
    binDir: PG_BIN_DIR,
    dataDir,
    logFile,
  };

  let started = false;
  try {
    await prepareDirectories(info, baseDir, options.tls, owner);
    const passwordFile = join(baseDir, 'admin-password');
    await writeOwnedFile(passwordFile, info.admin.password, owner);
    await exec(
      join(PG_BIN_DIR, 'initdb'),
      [
        '--pgdata',
        dataDir,
        '--username',
        ADMIN,
        '--pwfile',
        passwordFile,
        '--encoding',
        'UTF8',
        '--locale',
        'C',
        '--no-sync',
      ],
      { user: owner?.name, cwd: baseDir },
    );
    await rm(passwordFile);
    await writeOwnedFile(join(dataDir, 'pg_hba.conf'), hbaConf(info), owner);
    await appendSettings(dataDir, info, options.settings ?? {});

    for (let attempt = 1; !started; attempt++) {
      info.port = await freePort();
      await writeOwnedFile(join(dataDir, 'gatehouse-port.conf'), `port = ${info.port}\n`, owner);
      await rm(logFile, { force: true });
      const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
      const result = await exec(
        join(PG_BIN_DIR, 'pg_ctl'),
        [
          'start',
          '--pgdata',
          dataDir,
          '--log',
          logFile,
          '--wait',
          '--timeout',
          String(Math.ceil(timeoutMs / 1000)),
        ],
        { user: owner?.name, cwd: baseDir, allowFailure: true, timeoutMs: timeoutMs + 5_000 },
      );
      const log = await readLog(logFile);
      if (result.code === 0) {
        started = true;
      } else if (/could not bind|could not create any TCP\/IP sockets/.test(log) && attempt < PORT_ATTEMPTS) {
        await stopServer(dataDir, owner);
      } else {
        throw new Error(
          `PostgreSQL did not start (pg_ctl, waiting at most ${timeoutMs} ms: ${result.stderr.trim() || result.stdout.trim()}); ` +
            `server log tail:\n${logTail(log)}`,
        );
      }
    }

    await exec(join(PG_BIN_DIR, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres'], {
      env: { ...withoutPgVariables(process.env), ...socketEnv(info) },
      input: setupSql(info),
    });
  } catch (error) {
    if (started) await stopServer(dataDir, owner).catch(() => {});
    await rm(baseDir, { recursive: true, force: true });
    throw error;
  }

  return {
    info,
    async stop() {
      try {
        await stopServer(dataDir, owner);
      } finally {
        await rm(baseDir, { recursive: true, force: true });
      }
    },
  };
}

async function prepareDirectories(info: PostgresInfo, baseDir: string, tls: TlsFiles, owner?: OsUser) {
  const tlsDir = join(baseDir, 'tls');
  await mkdir(info.socketDir);
  await mkdir(tlsDir);
  await copyFile(tls.caFile, info.caFile);
  await copyFile(tls.certFile, info.certFile);
  await copyFile(tls.keyFile, info.keyFile);
  // PostgreSQL refuses a key that anyone but its owner can read.
  await chmod(info.keyFile, 0o600);
  await chmod(baseDir, 0o755);
  if (owner !== undefined) {
    for (const path of [baseDir, info.socketDir, tlsDir, info.caFile, info.certFile, info.keyFile]) {
      await chown(path, owner.uid, owner.gid);
    }
  }
}

function hbaConf(info: PostgresInfo): string {
  const methods: Array<[string, string]> = [
    [info.users.trust.user, 'trust'],
    [info.users.md5.user, 'md5'],
    [info.users.clear.user, 'password'],
    [info.users.scram.user, 'scram-sha-256'],
    ['all', 'scram-sha-256'],
  ];
  const lines = ['# Written by test/harness/postgres.ts: one authentication method per test role.'];
  for (const [user, method] of methods) {
    lines.push(`local all ${user} ${method}`);
    lines.push(`host all ${user} 127.0.0.1/32 ${method}`);
  }
  return `${lines.join('\n')}\n`;
}

async function appendSettings(dataDir: string, info: PostgresInfo, extra: Record<string, string>) {
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    max_connections: '600',
    unix_socket_directories: quote(info.socketDir),
    ssl: 'on',
    ssl_ca_file: quote(info.caFile),
    ssl_cert_file: quote(info.certFile),
    ssl_key_file: quote(info.keyFile),
    // A throwaway server: durability only costs time.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...extra,
  };
  const lines = Object.entries(settings).map(([name, value]) => `${name} = ${value}`);
  // The port lives in its own file so that a retry on another port rewrites only that.
  lines.push("include 'gatehouse-port.conf'");
  const conf = join(dataDir, 'postgresql.conf');
  await writeFile(conf, `${await readFile(conf, 'utf8')}\n# test/harness/postgres.ts\n${lines.join('\n')}\n`);
}

function setupSql(info: PostgresInfo): string {
  const { scram, md5, clear, trust } = info.users;
  const roles = [scram.user, md5.user, clear.user, trust.user].join(', ');
  return `
CREATE ROLE ${scram.user} LOGIN PASSWORD ${quote(scram.password)};
SET password_encryption = 'md5';
CREATE ROLE ${md5.user} LOGIN PASSWORD ${quote(md5.password)};
RESET password_encryption;
CREATE ROLE ${clear.user} LOGIN PASSWORD ${quote(clear.password)};
CREATE ROLE ${trust.user} LOGIN;
CREATE DATABASE ${info.database} OWNER ${info.admin.user};
\\connect ${info.database}
GRANT ALL ON SCHEMA public TO ${roles};
`;
}

async function stopServer(dataDir: string, owner?: OsUser): Promise<void> {
  const result = await exec(
    join(PG_BIN_DIR, 'pg_ctl'),
    ['stop', '--pgdata', dataDir, '--mode', 'fast', '--wait'],
    {
      user: owner?.name,
      allowFailure: true,
    },
  );
  // pg_ctl says "Is server running?" when there is nothing to stop, which is the state we want.
  if (result.code !== 0 && !/Is server running\?/.test(result.stderr)) {
    throw new Error(`pg_ctl stop failed: ${result.stderr.trim()}`);
  }
}

/** libpq variables for the harness's own connection as the admin over the Unix socket. */
function socketEnv(info: PostgresInfo): Record<string, string> {
  return {
    PGHOST: info.socketDir,
    PGPORT: String(info.port),
    PGUSER: info.admin.user,
    PGPASSWORD: info.admin.password,
  };
}

/** The caller's shell may carry PG* variables for some other server; they must not leak into ours. */
export function withoutPgVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('PG')));
}

async function writeOwnedFile(path: string, content: string, owner?: OsUser): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  if (owner !== undefined) await chown(path, owner.uid, owner.gid);
}

async function readLog(logFile: string): Promise<string> {
  return readFile(logFile, 'utf8').catch(() => '');
}

function logTail(log: string): string {
  return log.trim() === '' ? '(empty)' : log.trim().split('\n').slice(-30).join('\n');
}

function quote(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function secret(): string {
  return randomBytes(18).toString('base64url');
}
