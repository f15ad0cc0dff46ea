import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from './exec.ts';
import { freePort } from './free-port.ts';
import { type OsUser, osUser, runningAsRoot } from './os-user.ts';
import type { TlsFiles } from './tls.ts';

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
const CLIENT = '/usr/bin/mariadb';

export type MariaDbLogin = { user: string; password: string };

export type MariaDbInfo = {
  host: string;
  port: number;
  database: string;
  /** All privileges on every database, with grant option; mysql_native_password. */
  admin: MariaDbLogin;
  users: {
    /** mysql_native_password, with all privileges on the app database. */
    native: MariaDbLogin;
    /**
     * caching_sha2_password, or null when the server has no such plugin:
     * MariaDB 10.11 (Debian 12) has none, so upstream caching_sha2 cannot be tested against it.
     */
    cachingSha2: MariaDbLogin | null;
  };
  version: string;
  /** CA that signed the server certificate (CN and SAN 127.0.0.1, SAN localhost). */
  caFile: string;
  certFile: string;
  keyFile: string;
  socket: string;
  dataDir: string;
  logFile: string;
};

export type MariaDbServer = { info: MariaDbInfo; stop(): Promise<void> };

export type StartMariaDbOptions = { tls: TlsFiles; startTimeoutMs?: number };

const DATABASE = 'app';
const PORT_ATTEMPTS = 5;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * Starts a throwaway MariaDB on a free loopback port, in a fresh temporary directory,
 * with TLS and real password accounts (no --skip-grant-tables).
 */
export async function startMariaDb(options: StartMariaDbOptions): Promise<MariaDbServer> {
  const owner = runningAsRoot() ? await osUser('mysql') : undefined;
  const baseDir = await mkdtemp(join(tmpdir(), 'gatehouse-mariadb-'));
  const tlsDir = join(baseDir, 'tls');
  const info: MariaDbInfo = {
    host: '127.0.0.1',
    port: 0,
    database: DATABASE,
    admin: { user: 'gatehouse_admin', password: secret() },
    users: { native: { user: 'native_user', password: secret() }, cachingSha2: null },
    version: '',
    caFile: join(tlsDir, 'ca.crt'),
    certFile: join(tlsDir, 'server.crt'),
    keyFile: join(tlsDir, 'server.key'),
    socket: join(baseDir, 'mysqld.sock'),
    dataDir: join(baseDir, 'data'),
    logFile: join(baseDir, 'mariadbd.log'),
  };
  // The install script lets this OS account, which we are, in over the socket without a password
  // (unix_socket plugin); the harness uses it once to create the password accounts.
  const socketUser = owner === undefined ? userInfo().username : 'root';

  let server: ChildProcess | undefined;
  try {
    await prepareDirectories(info, baseDir, options.tls, owner);
    await exec(INSTALL_DB, [
      '--no-defaults',
      `--datadir=${info.dataDir}`,
      ...(owner === undefined ? [] : [`--user=${owner.name}`]),
      '--auth-root-authentication-method=socket',
      `--auth-root-socket-user=${socketUser}`,
      '--skip-test-db',
      '--skip-name-resolve',
    ]);

    const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    for (let attempt = 1; server === undefined; attempt++) {
      info.port = await freePort();
      await rm(info.logFile, { force: true });
      const child = spawn(MARIADBD, serverArgs(info, owner), { stdio: 'ignore' });
      const outcome = await waitUntilReady(child, info.logFile, timeoutMs);
      if (outcome === 'ready') {
        server = child;
      } else if (outcome === 'port taken' && attempt < PORT_ATTEMPTS) {
        await terminate(child);
      } else {
        await terminate(child);
        const what =
          outcome === 'timeout' ? `did not start within ${timeoutMs} ms` : `failed to start (${outcome})`;
        throw new Error(`MariaDB ${what}; server log tail:\n${logTail(await readLog(info.logFile))}`);
      }
    }

    const asSocketUser = async (sql: string) =>
      (
        await exec(CLIENT, ['--no-defaults', '--batch', '--skip-column-names', `--socket=${info.socket}`], {
          env: withoutMysqlVariables(process.env),
          input: sql,
        })
      ).stdout.trim();
    info.version = await asSocketUser('SELECT VERSION();');
    const cachingSha2 = await asSocketUser(
      "SELECT PLUGIN_STATUS, PLUGIN_LIBRARY FROM information_schema.ALL_PLUGINS WHERE PLUGIN_NAME = 'caching_sha2_password';",
    );
    if (cachingSha2 !== '') info.users.cachingSha2 = { user: 'caching_sha2_user', password: secret() };
    await asSocketUser(setupSql(info, cachingSha2));
  } catch (error) {
    if (server !== undefined) await terminate(server);
    await rm(baseDir, { recursive: true, force: true });
    throw error;
  }

  const running = server;
  return {
    info,
    async stop() {
      try {
        await terminate(running);
      } finally {
        await rm(baseDir, { recursive: true, force: true });
      }
    },
  };
}

/** This server's own directory for temporary tables, beside its data directory. */
function tmpDirOf(info: MariaDbInfo): string {
  return join(dirname(info.dataDir), 'tmp');
}

function serverArgs(info: MariaDbInfo, owner?: OsUser): string[] {
  return [
    // Must come first: the machine's /etc/mysql configuration belongs to Debian's own service.
    '--no-defaults',
    `--datadir=${info.dataDir}`,
    ...(owner === undefined ? [] : [`--user=${owner.name}`]),
    `--port=${info.port}`,
    '--bind-address=127.0.0.1',
    `--socket=${info.socket}`,
    `--pid-file=${join(info.dataDir, 'mariadbd.pid')}`,
    `--log-error=${info.logFile}`,
    // A server deletes every #sql* file in its tmpdir when it starts: in a shared /tmp, a second
    // test run starting its server would delete this one's temporary tables mid-query (error 6).
    `--tmpdir=${tmpDirOf(info)}`,
    '--skip-name-resolve',
    `--ssl-ca=${info.caFile}`,
    `--ssl-cert=${info.certFile}`,
    `--ssl-key=${info.keyFile}`,
    '--max-connections=600',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_general_ci',
    // A throwaway server: durability only costs time.
    '--innodb-flush-log-at-trx-commit=0',
    '--skip-innodb-doublewrite',
    '--innodb-buffer-pool-size=64M',
  ];
}

type StartOutcome = 'ready' | 'port taken' | 'timeout' | string;

async function waitUntilReady(
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
): Promise<StartOutcome> {
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = signal === null ? `exit code ${code}` : `signal ${signal}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const log = await readLog(logFile);
    if (/Address already in use|Can't start server: Bind on TCP\/IP port/.test(log)) return 'port taken';
    if (/ready for connections/.test(log)) return 'ready';
    if (exit !== undefined) return exit;
    await sleep(50);
  }
  return 'timeout';
}

/** SIGTERM makes mariadbd shut down cleanly; SIGKILL only if it hangs. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function prepareDirectories(info: MariaDbInfo, baseDir: string, tls: TlsFiles, owner?: OsUser) {
  const tlsDir = join(baseDir, 'tls');
  await mkdir(tlsDir);
  await mkdir(tmpDirOf(info));
  await copyFile(tls.caFile, info.caFile);
  await copyFile(tls.certFile, info.certFile);
  await copyFile(tls.keyFile, info.keyFile);
  await chmod(info.keyFile, 0o600);
  await chmod(baseDir, 0o755);
  if (owner !== undefined) {
    for (const path of [baseDir, tlsDir, tmpDirOf(info), info.caFile, info.certFile, info.keyFile]) {
      await chown(path, owner.uid, owner.gid);
    }
  }
}

function setupSql(info: MariaDbInfo, cachingSha2Plugin: string): string {
  const { admin, users } = info;
  const lines = [
    `CREATE DATABASE ${info.database};`,
    `CREATE USER '${admin.user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(${quote(admin.password)});`,
    `GRANT ALL PRIVILEGES ON *.* TO '${admin.user}'@'%' WITH GRANT OPTION;`,
    `CREATE USER '${users.native.user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(${quote(users.native.password)});`,
    `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${users.native.user}'@'%';`,
  ];
  if (users.cachingSha2 !== null) {
    const [status, library] = cachingSha2Plugin.split('\t');
    if (status !== 'ACTIVE' && library) lines.push(`INSTALL SONAME ${quote(library.replace(/\.so$/, ''))};`);
    lines.push(
      `CREATE USER '${users.cachingSha2.user}'@'%' IDENTIFIED VIA caching_sha2_password USING PASSWORD(${quote(users.cachingSha2.password)});`,
      `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${users.cachingSha2.user}'@'%';`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The caller's shell may carry MYSQL_* variables (password, host, port) for some other server. */
export function withoutMysqlVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('MYSQL')));
}

async function readLog(logFile: string): Promise<string> {
  return readFile(logFile, 'utf8').catch(() => '');
}

function logTail(log: string): string {
  return log.trim() === '' ? '(empty)' : log.trim().split('\n').slice(-30).join('\n');
}

function quote(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function secret(): string {
  return randomBytes(18).toString('base64url');
}
