import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { parseCliArgs } from './parse-cli-args.ts';

export const MCP_USAGE = `usage: gatehouse mcp (--config FILE | --proxy HOST:PORT) IDENTITY [options]

Serves the Model Context Protocol to an AI agent. Every tool call is a connection to the Gatehouse
proxy as the agent, so guardrails, masking, approvals and audit apply as they do to psql.

  --config FILE          start a proxy in this process from FILE (listening on loopback only)
  --upstream URL         with --config: the database, as for gatehouse proxy
  --audit-file PATH      with --config: the audit log, as for gatehouse proxy
  --proxy HOST:PORT      use a running proxy instead
  --protocol P           with --proxy: that proxy's protocol, postgres (default) or mysql
  --proxy-ca FILE        the CA that proxy's client TLS certificate is verified with
  identity, one of:
  --token JWT            a token the proxy's token mode accepts (default: $GATEHOUSE_TOKEN)
  --token-file PATH      a file holding the token, read at each call (rotated tokens work)
  --user NAME            a local user, with --password P or $GATEHOUSE_PASSWORD
  --http HOST:PORT       serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio
                         (loopback unless you say otherwise; port 0 for any free port)
  --max-rows N           rows a result returns at most (default 200)
  --max-bytes N          characters of cells a result returns at most (default 65536)
  --approval-wait S      seconds a call waits for a held statement's decision (default 30)
  --log-level LEVEL      the in-process proxy's log level (logs go to stderr; default warn)
  -h, --help             show this text`;

/** `gatehouse mcp`: runs until stdin closes (stdio), or SIGTERM / SIGINT. */
export async function runMcpCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCliArgs(
    {
      args: argv,
      strict: true,
      options: {
        config: { type: 'string' },
        upstream: { type: 'string' },
        'audit-file': { type: 'string' },
        proxy: { type: 'string' },
        'proxy-ca': { type: 'string' },
        protocol: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        http: { type: 'string' },
        'max-rows': { type: 'string' },
        'max-bytes': { type: 'string' },
        'approval-wait': { type: 'string' },
        'log-level': { type: 'string', default: 'warn' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'mcp',
  );
  if (values.help) {
    console.log(MCP_USAGE);
    return 0;
  }
  if ((values.config === undefined) === (values.proxy === undefined))
    throw new UserError('give --config FILE (a proxy in this process) or --proxy HOST:PORT, one of them');
  if (values.proxy !== undefined && (values.upstream !== undefined || values['audit-file'] !== undefined))
    throw new UserError('--upstream and --audit-file go with --config; a running proxy has its own');
  if (values.protocol !== undefined && values.proxy === undefined)
    throw new UserError('--protocol goes with --proxy; with --config the upstream says which');
  if (values.protocol !== undefined && values.protocol !== 'postgres' && values.protocol !== 'mysql')
    throw new UserError(`--protocol must be postgres or mysql, not "${values.protocol}"`);
  const credentials = credentialsOf(values, env);
  const bounds = {
    maxRows: positive(values['max-rows'], '--max-rows', 200),
    maxBytes: positive(values['max-bytes'], '--max-bytes', 64 * 1024),
    maxCellChars: 2000,
  };
  const approvalWaitMs = positive(values['approval-wait'], '--approval-wait', 30) * 1000;
  const http = values.http === undefined ? undefined : hostPort(values.http, '--http');
  const proxyAt = values.proxy === undefined ? undefined : hostPort(values.proxy, '--proxy');

  // Loaded here: --help and flag errors need neither the SDK nor the proxy.
  const { startMcp } = await import('../mcp/start-mcp.ts');
  const running = await startMcp({
    credentials,
    settings: { bounds, approvalWaitMs },
    ...(http && { http }),
    ...(values.protocol !== undefined && { protocol: values.protocol as 'postgres' | 'mysql' }),
    ...(proxyAt && {
      proxy: {
        ...proxyAt,
        ...(values['proxy-ca'] !== undefined && { ca: readCa(values['proxy-ca']) }),
      },
    }),
    ...(values.config !== undefined && {
      config: {
        file: values.config,
        logLevel: values['log-level'],
        ...(values.upstream !== undefined && { upstream: values.upstream }),
        ...(values['audit-file'] !== undefined && { auditFile: values['audit-file'] }),
      },
    }),
  });
  await running.done;
  return 0;
}

type Values = Partial<Record<'token' | 'token-file' | 'user' | 'password', string>>;

function credentialsOf(values: Values, env: NodeJS.ProcessEnv) {
  // An empty variable is no identity (a shell's `GATEHOUSE_TOKEN=` must not log in with nothing).
  const token = values.token ?? (env['GATEHOUSE_TOKEN'] || undefined);
  if (token === '') throw new UserError('--token is empty');
  const given = [token !== undefined, values['token-file'] !== undefined, values.user !== undefined];
  if (given.filter(Boolean).length !== 1)
    throw new UserError(
      'give the agent one identity: --token JWT (or $GATEHOUSE_TOKEN), --token-file PATH, or --user NAME with --password',
    );
  if (values.user !== undefined) {
    const password = values.password ?? (env['GATEHOUSE_PASSWORD'] || undefined);
    if (password === undefined) throw new UserError('--user needs --password P or $GATEHOUSE_PASSWORD');
    return { kind: 'local' as const, user: values.user, password };
  }
  if (values['token-file'] !== undefined) return { kind: 'token-file' as const, path: values['token-file'] };
  return { kind: 'token' as const, token: token! };
}

function positive(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UserError(`${flag} must be a positive whole number, not "${value}"`);
  return n;
}

function hostPort(value: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UserError(`${flag} must be HOST:PORT, not "${value}"`);
  return { host: match[1] ?? match[2]!, port };
}

function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UserError(`--proxy-ca ${path} cannot be read (${(error as NodeJS.ErrnoException).code})`);
  }
}
