// Installs the Debian packages that the tests and the benchmark run for real, when any is missing.
// Run as a script (`node test/harness/ensure-packages.ts`); test/harness/prepare.ts runs it before vitest.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { runningAsRoot } from './os-user.ts';
import { PG_BIN_DIR } from './postgres.ts';

const PACKAGES = [
  'postgresql-15',
  'postgresql-client-15',
  'postgresql-contrib',
  'mariadb-server',
  'mariadb-client',
  'haproxy',
  'pgbouncer',
  'openssl',
  // Lua 5.1, the language of Argo CD's health checks (gopher-lua): the chart's checks run for real.
  'lua5.1',
  // The MySQL rows of the benchmark (sysbench oltp_point_select).
  'sysbench',
  // Drivers that page through results and reuse statements by default, run for real in the masking
  // tests: asyncpg (Python) and the PostgreSQL JDBC driver on a JDK (single-file `java X.java`).
  'python3-asyncpg',
  'libpostgresql-jdbc-java',
  'openjdk-17-jdk-headless',
  // The browser tests (console, evidence page) drive Debian's Chromium with playwright-core, which
  // never downloads a browser of its own.
  'chromium',
];

/** What the harness and the benchmark call by full path; checked after installing, whatever dpkg says. */
const PROGRAMS = [
  `${PG_BIN_DIR}/initdb`,
  `${PG_BIN_DIR}/pg_ctl`,
  `${PG_BIN_DIR}/postgres`,
  `${PG_BIN_DIR}/psql`,
  `${PG_BIN_DIR}/pgbench`,
  '/usr/bin/psql',
  '/usr/sbin/mariadbd',
  '/usr/bin/mariadb-install-db',
  '/usr/bin/mariadb',
  '/usr/bin/mysql',
  '/usr/sbin/haproxy',
  '/usr/sbin/pgbouncer',
  '/usr/bin/sysbench',
  '/usr/bin/openssl',
  '/usr/bin/lua5.1',
  '/usr/bin/python3',
  '/usr/bin/java',
  '/usr/share/java/postgresql.jar',
  '/sbin/runuser',
  '/usr/bin/chromium',
];

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

const missing = missingPackages();
if (missing.length > 0) {
  if (!runningAsRoot()) {
    fail(
      `missing Debian packages: ${missing.join(' ')}; install them as root: apt-get install ${missing.join(' ')}`,
    );
  }
  install(missing);
}
const absent = PROGRAMS.filter((program) => !existsSync(program));
if (absent.length > 0) fail(`programs still missing after installing packages: ${absent.join(' ')}`);

function missingPackages(): string[] {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format placeholders
  const query = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...PACKAGES], {
    encoding: 'utf8',
  });
  if (query.error !== undefined) fail(`cannot ask dpkg which packages are installed: ${query.error.message}`);
  // dpkg-query exits 1 when some package is unknown to it; the listed ones are still printed.
  const installed = new Set(
    query.stdout
      .split('\n')
      .filter((line) => line.endsWith(' install ok installed'))
      .map((line) => line.split(' ')[0]),
  );
  return PACKAGES.filter((name) => !installed.has(name));
}

/**
 * Debian starts the services that it installs; our tests start their own instances on free ports,
 * so a policy-rc.d that forbids starting anything stands in place during the install.
 */
function install(packages: string[]): void {
  const savedPolicy = `${POLICY_RC_D}.gatehouse-saved`;
  const hadPolicy = existsSync(POLICY_RC_D);
  if (hadPolicy) renameSync(POLICY_RC_D, savedPolicy);
  writeFileSync(
    POLICY_RC_D,
    '#!/bin/sh\n# Written by gatehouse test/harness/ensure-packages.ts while it installs.\nexit 101\n',
  );
  chmodSync(POLICY_RC_D, 0o755);
  try {
    apt(['update']);
    apt(['install', '--yes', '--no-install-recommends', ...packages]);
  } finally {
    rmSync(POLICY_RC_D, { force: true });
    if (hadPolicy) renameSync(savedPolicy, POLICY_RC_D);
  }
}

function apt(args: string[]): void {
  process.stderr.write(`ensure-packages: apt-get ${args.join(' ')}\n`);
  const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', '-o', 'Dpkg::Use-Pty=0', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error !== undefined) fail(`apt-get ${args[0]} could not run: ${result.error.message}`);
  if (result.status !== 0) fail(`apt-get ${args[0]} failed with exit code ${result.status}`);
}

function fail(message: string): never {
  process.stderr.write(`ensure-packages: ${message}\n`);
  process.exit(1);
}
