import { UserError } from '../errors.ts';
import { checkPortsFree } from '../port-check.ts';
import { parseCliArgs } from './parse-cli-args.ts';
import { untilSignal } from './until-signal.ts';

export const PROXY_USAGE = `usage: gatehouse proxy --config FILE [options]

  --config FILE            YAML configuration (required); flags below override it
  --listen HOST:PORT       where clients connect (default 127.0.0.1:6432)
  --upstream URL           the database: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or
                           mysql://USER:PASSWORD@HOST:PORT/DATABASE for MySQL and MariaDB
                           (the scheme selects the protocol)
  --audit-file PATH        append the hash-chained audit log to PATH
  --admin-listen HOST:PORT serve /metrics, /healthz and /readyz
  --log-level LEVEL        fatal, error, warn, info (default), debug or trace
  --log-format FORMAT      json (one record a line, for collectors), pretty (one readable line
                           a record), or auto (default: pretty on a terminal, json otherwise)`;

const LOG_FORMATS = ['auto', 'json', 'pretty'];

/** `gatehouse proxy`: runs until SIGTERM or SIGINT, then shuts down gracefully. */
export async function runProxyCommand(argv: string[]): Promise<number> {
  const { values } = parseCliArgs(
    {
      args: argv,
      strict: true,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        upstream: { type: 'string' },
        'audit-file': { type: 'string' },
        'admin-listen': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string', default: 'auto' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'proxy',
  );
  if (values.help) {
    console.log(PROXY_USAGE);
    return 0;
  }
  const file = values.config;
  if (typeof file !== 'string') throw new UserError('--config FILE is required (see gatehouse proxy --help)');
  const format = values['log-format'];
  if (!LOG_FORMATS.includes(format))
    throw new UserError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, not "${format}"`);
  // Loaded here, not at the top: `gatehouse --version` and `--help` need none of the proxy.
  const [{ loadProxyConfig }, { createLogger, startProxy }] = await Promise.all([
    import('../config/load.ts'),
    import('../proxy.ts'),
  ]);
  const config = loadProxyConfig(file, {
    ...(values.listen !== undefined && { listen: values.listen }),
    ...(values.upstream !== undefined && { upstream: values.upstream }),
    ...(values['audit-file'] !== undefined && { auditFile: values['audit-file'] }),
    ...(values['admin-listen'] !== undefined && { adminListen: values['admin-listen'] }),
    ...(values['log-level'] !== undefined && { logLevel: values['log-level'] }),
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
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  const logger = createLogger(config.logLevel, pretty ? 'pretty' : 'json');
  const proxy = await startProxy(config, { logger, announceReady: true });
  await untilSignal(logger, () => proxy.close());
  return 0;
}
