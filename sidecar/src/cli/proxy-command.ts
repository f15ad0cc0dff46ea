import { type ParseArgsConfig, parseArgs } from 'node:util';
import { loadProxyConfig } from '../config/load.ts';
import { UserError } from '../errors.ts';
import { checkPortsFree } from '../port-check.ts';
import { createLogger, startProxy } from '../proxy.ts';
import { untilSignal } from './until-signal.ts';

export const PROXY_USAGE = `usage: gatehouse proxy --config FILE [--listen HOST:PORT] [--upstream URL] [--audit-file PATH] [--admin-listen HOST:PORT]

  --config FILE            YAML configuration (required); flags below override it
  --listen HOST:PORT       where clients connect (default 127.0.0.1:6432)
  --upstream URL           the database: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or
                           mysql://USER:PASSWORD@HOST:PORT/DATABASE for MySQL and MariaDB
                           (the scheme selects the protocol)
  --audit-file PATH        append the hash-chained audit log to PATH
  --admin-listen HOST:PORT serve /metrics, /healthz and /readyz`;

/** `gatehouse proxy`: runs until SIGTERM or SIGINT, then shuts down gracefully. */
export async function runProxyCommand(argv: string[]): Promise<number> {
  const { values } = parseCliArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string' },
      listen: { type: 'string' },
      upstream: { type: 'string' },
      'audit-file': { type: 'string' },
      'admin-listen': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(PROXY_USAGE);
    return 0;
  }
  const file = values.config;
  if (typeof file !== 'string')
    throw new UserError('gatehouse proxy: --config FILE is required (see gatehouse proxy --help)');
  const config = loadProxyConfig(file, {
    ...(values.listen !== undefined && { listen: values.listen }),
    ...(values.upstream !== undefined && { upstream: values.upstream }),
    ...(values['audit-file'] !== undefined && { auditFile: values['audit-file'] }),
    ...(values['admin-listen'] !== undefined && { adminListen: values['admin-listen'] }),
  });
  // Before the audit log is opened: a start that cannot listen must not append to it.
  await checkPortsFree([
    { ...config.listen, role: 'the proxy', change: '--listen HOST:PORT (or listen: in the config)' },
    ...(config.admin
      ? [
          {
            ...config.admin,
            role: 'metrics',
            change: '--admin-listen HOST:PORT (or admin.listen: in the config)',
          },
        ]
      : []),
  ]);
  const logger = createLogger(config.logLevel);
  const proxy = await startProxy(config, { logger });
  await untilSignal(logger, () => proxy.close());
  return 0;
}

/** parseArgs with errors a person can read: unknown flags and missing values become UserErrors. */
export function parseCliArgs<const T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UserError((error as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
}
