import { spawn, spawnSync } from 'node:child_process';
import { UserError } from '../errors.ts';
import type { DatabaseTarget } from '../login/client-config.ts';
import { parseCliArgs } from './parse-cli-args.ts';
import { resolveTargetFlags, TARGET_OPTIONS, targetUsage } from './target-flags.ts';

export const CONNECT_USAGE = `usage: gatehouse connect DATABASE [options] [-- CLIENT-ARGS...]

Starts psql (or mysql, for a mysql database) on a Gatehouse proxy as you: with a fresh token from
\`gatehouse login\` (renewed first if it nears expiry) as the password, passed in the environment
(PGPASSWORD or MYSQL_PWD), never on the command line. Arguments after -- go to the client, such as
-- -c 'SELECT 1'. Exits with the client's exit code.

${targetUsage('--port')}
  -h, --help            show this text`;

export async function runConnectCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const split = argv.indexOf('--');
  const own = split < 0 ? argv : argv.slice(0, split);
  const clientArgs = split < 0 ? [] : argv.slice(split + 1);
  const { values, positionals } = parseCliArgs(
    {
      args: own,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, help: { type: 'boolean', short: 'h' } },
    },
    'connect',
  );
  if (values.help) {
    process.stdout.write(`${CONNECT_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1)
    throw new UserError(`unexpected argument "${positionals[1]}" (see gatehouse connect --help)`);
  const { target, token } = resolveTargetFlags(positionals[0], values, env);
  const login = await token.current();
  const user = target.user ?? login.subject ?? 'gatehouse';
  const { command, args, extraEnv } =
    target.protocol === 'postgres'
      ? psqlInvocation(target, user, login.accessToken)
      : mysqlInvocation(target, user, login.accessToken);
  // mysql reads its option-file flags only when they come first.
  const first = target.protocol === 'mysql' ? clientArgs.filter(isOptionFileFlag) : [];
  const rest = clientArgs.filter((a) => !first.includes(a));
  const child = spawn(command, [...first, ...args, ...rest], {
    stdio: 'inherit',
    // The person's own PGAPPNAME wins; otherwise the audit's `application` says how they came.
    env: { PGAPPNAME: 'gatehouse connect', ...env, ...extraEnv },
  });
  // Ctrl-C belongs to the client (psql cancels the running query); this process just waits.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? new UserError(`${command} is not installed (or not on PATH): gatehouse connect runs it for you`)
            : error,
        ),
      );
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 2 : 1)));
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}

interface Invocation {
  readonly command: string;
  readonly args: string[];
  readonly extraEnv: Record<string, string>;
}

function psqlInvocation(target: DatabaseTarget, user: string, token: string): Invocation {
  return {
    command: 'psql',
    args: [],
    extraEnv: {
      PGHOST: target.host,
      PGPORT: String(target.port),
      PGDATABASE: target.dbname,
      PGUSER: user,
      PGPASSWORD: token,
      PGSSLMODE: target.tls,
      ...(target.ca !== undefined && { PGSSLROOTCERT: target.ca }),
    },
  };
}

function mysqlInvocation(target: DatabaseTarget, user: string, token: string): Invocation {
  // MariaDB's and Oracle's clients spell TLS differently; the version line says which this is.
  const version = spawnSync('mysql', ['--version'], { encoding: 'utf8' });
  const mariadb = /mariadb/i.test(version.stdout ?? '');
  const tls =
    target.tls === 'disable'
      ? [mariadb ? '--skip-ssl' : '--ssl-mode=DISABLED']
      : target.tls === 'require'
        ? [mariadb ? '--ssl' : '--ssl-mode=REQUIRED']
        : mariadb
          ? ['--ssl', '--ssl-verify-server-cert', ...(target.ca ? [`--ssl-ca=${target.ca}`] : [])]
          : ['--ssl-mode=VERIFY_IDENTITY', ...(target.ca ? [`--ssl-ca=${target.ca}`] : [])];
  return {
    command: 'mysql',
    args: [
      '--protocol=TCP',
      `--host=${target.host}`,
      `--port=${target.port}`,
      `--user=${user}`,
      ...tls,
      `--database=${target.dbname}`,
    ],
    // The proxy asks for the token with mysql_clear_password, which Oracle's client sends only when told.
    extraEnv: { MYSQL_PWD: token, LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN: '1' },
  };
}

function isOptionFileFlag(arg: string): boolean {
  return /^--(no-defaults|print-defaults|defaults-file=|defaults-extra-file=|defaults-group-suffix=)/.test(
    arg,
  );
}
