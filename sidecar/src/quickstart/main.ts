import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { DEFAULT_LISTEN, parseListen } from '../../../operator/src/collector/collector-config.ts';
import { ensureSigningKeyFile } from '../audit/signing-key.ts';
import { type HostPort, loadProxyConfig, type ProxyConfig } from '../config/load.ts';
import { UserError } from '../errors.ts';
import { checkPortsFree } from '../port-check.ts';
import { startProxy } from '../proxy.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';
import {
  QUICKSTART_CLUSTER,
  type QuickstartCollector,
  startQuickstartCollector,
} from './quickstart-collector.ts';

/**
 * `npm start`: a first look at Gatehouse with nothing else installed. An embedded PostgreSQL (PGlite)
 * with sample data, and the proxy in front of it, configured by examples/quickstart/gatehouse.yaml.
 */

/** The embedded database serves the proxy only, on this machine. */
const DB_HOST = '127.0.0.1';
/** Where `gatehouse audit query` looks by default. */
const DEFAULT_COLLECTOR_PORT = parseListen(DEFAULT_LISTEN).port;

const exampleDir = fileURLToPath(new URL('../../../examples/quickstart/', import.meta.url));

const usage = `Usage: npm start -- [options]

  --port PORT        where clients connect to Gatehouse (default: listen: in the config, 6432)
  --admin-port PORT  metrics and health checks (default: admin.listen: in the config, 9090)
  --db-port PORT     the embedded database itself (default: any free port)
  --collector-port PORT
                     the audit collector (gatehouse audit query; default 7450, 0 for any free port)
  --fresh            delete the sample database and seed it again
  --data-dir DIR     where the sample database lives (default: .gatehouse/quickstart-db)
  --config FILE      proxy configuration (default: examples/quickstart/gatehouse.yaml)
  -h, --help         show this help`;

interface QuickstartArgs {
  readonly fresh: boolean;
  readonly dataDir: string;
  readonly port?: number;
  readonly adminPort?: number;
  readonly dbPort: number;
  readonly collectorPort: number;
  readonly configFile: string;
}

async function main(): Promise<void> {
  const args = parseQuickstartArgs(process.argv.slice(2));
  if (!args) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const fromFile = loadProxyConfig(args.configFile);
  const listen = { ...fromFile.listen, ...(args.port !== undefined && { port: args.port }) };
  const admin =
    args.adminPort !== undefined
      ? { host: fromFile.admin?.host ?? '127.0.0.1', port: args.adminPort }
      : fromFile.admin;
  // Every port first: a start that cannot listen must not seed a database or append to the audit log.
  await checkPortsFree([
    { ...listen, role: 'the proxy', change: '--port' },
    ...(admin ? [{ ...admin, role: 'metrics', change: '--admin-port' }] : []),
    { host: DB_HOST, port: args.dbPort, role: 'the embedded database', change: '--db-port' },
    { host: DB_HOST, port: args.collectorPort, role: 'the audit collector', change: '--collector-port' },
  ]);
  const database = await startEmbeddedPostgres({
    dataDir: args.dataDir,
    seedFile: resolve(exampleDir, 'seed.sql'),
    fresh: args.fresh,
    host: DB_HOST,
    port: args.dbPort,
  });
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let config: ProxyConfig;
  let collector: QuickstartCollector | undefined;
  try {
    config = withPersistentSigningKey(
      loadProxyConfig(args.configFile, {
        upstream: `postgres://postgres:postgres@${database.host}:${database.port}/postgres`,
        listen: hostPort(listen),
        ...(admin && { adminListen: hostPort(admin) }),
      }),
      join(dirname(args.dataDir), 'audit-signing-key.pem'),
    );
    if (config.audit.signingKeyFile !== undefined) await ensureSigningKeyFile(config.audit.signingKeyFile);
    const logger = pino({ level: config.logLevel });
    // The proxy ships its audit file to a collector beside it, unless the config ships it elsewhere.
    if (config.audit.file !== undefined && config.audit.ship === undefined) {
      const shipperToken = randomBytes(24).toString('base64url');
      collector = await startQuickstartCollector({
        storeDir: join(dirname(args.dataDir), 'quickstart-audit-store'),
        listen: { host: DB_HOST, port: args.collectorPort },
        shipperToken,
        // The proxy's approvals API is on its admin endpoint, which serves it on loopback only.
        approvalsUrl: admin && admin.port !== 0 ? `http://${urlHost(admin)}` : undefined,
        config,
        logger,
      });
      config = {
        ...config,
        audit: {
          ...config.audit,
          ship: { url: collector.url, token: shipperToken, cluster: QUICKSTART_CLUSTER },
        },
      };
    }
    proxy = await startProxy(config, { logger });
  } catch (error) {
    await collector?.close();
    await database.close();
    throw error;
  }

  process.stdout.write(
    banner({
      config,
      proxy: proxy.address,
      admin: proxy.adminAddress,
      dataDir: database.dataDir,
      seeded: database.seeded,
      caFile: proxy.clientTlsCaFile,
      collector,
    }),
  );
  const failure = await Promise.race([stopSignal(), database.failure]);
  if (failure) {
    await proxy.close();
    await collector?.close();
    throw failure;
  }
  process.stdout.write('Stopping...\n');
  // The proxy first: its shipper sends what is left (the seal included) to the collector on the way out.
  await proxy.close();
  await collector?.close();
  await database.close();
}

/**
 * The quickstart signs its audit log with a key kept in its data directory (beside the sample
 * database, so --fresh keeps it), unless the config names one: the log then verifies across restarts,
 * and `audit verify --public-key KEY.pub` pins it.
 */
function withPersistentSigningKey(config: ProxyConfig, keyFile: string): ProxyConfig {
  if (config.audit.signingKeyFile !== undefined || config.audit.file === undefined) return config;
  return { ...config, audit: { ...config.audit, signingKeyFile: keyFile } };
}

function parseQuickstartArgs(argv: string[]): QuickstartArgs | undefined {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UserError(`${(error as Error).message} (npm start -- --help lists the options)`);
  }
  if (values.help) return undefined;
  const port = portFlag('port', values.port);
  const adminPort = portFlag('admin-port', values['admin-port']);
  return {
    fresh: values.fresh ?? false,
    dataDir: resolve(values['data-dir'] ?? '.gatehouse/quickstart-db'),
    ...(port !== undefined && { port }),
    ...(adminPort !== undefined && { adminPort }),
    dbPort: portFlag('db-port', values['db-port']) ?? 0,
    collectorPort: portFlag('collector-port', values['collector-port']) ?? DEFAULT_COLLECTOR_PORT,
    configFile: values.config ? resolve(values.config) : resolve(exampleDir, 'gatehouse.yaml'),
  };
}

function portFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (value.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--${name} must be a port number (0-65535, 0 for any free port), not "${value}"`);
  }
  return port;
}

function hostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      fresh: { type: 'boolean' },
      port: { type: 'string' },
      'admin-port': { type: 'string' },
      'data-dir': { type: 'string' },
      'db-port': { type: 'string' },
      'collector-port': { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

interface BannerFacts {
  readonly config: ProxyConfig;
  readonly proxy: HostPort;
  readonly admin: HostPort | undefined;
  readonly dataDir: string;
  readonly seeded: boolean;
  /** `clientTls: auto`: the CA clients verify the proxy with. */
  readonly caFile: string | undefined;
  readonly collector: QuickstartCollector | undefined;
}

function banner({ config, proxy, admin, dataDir, seeded, caFile, collector }: BannerFacts): string {
  // Local users are development accounts whose passwords the quickstart file shows in clear anyway.
  const users = config.identity.mode === 'local' ? (config.identity.local?.users ?? []) : [];
  const connect = users.map((user) => {
    const url = `postgres://${encodeURIComponent(user.name)}:${encodeURIComponent(user.password)}@${urlHost(proxy)}/postgres`;
    return `  psql "${url}"${user.groups?.length ? `   # groups: ${user.groups.join(', ')}` : ''}`;
  });
  const lines = [
    '',
    `Gatehouse is listening on ${urlHost(proxy)}, in front of an embedded PostgreSQL with sample data.`,
    '',
    ...(connect.length ? ['Connect through Gatehouse:', ...connect, ''] : []),
    'Then try:  SELECT name, email, ssn, card_number FROM customers LIMIT 5;',
    '',
    `  Database   ${dataDir} (${seeded ? 'sample data loaded' : 'reused; --fresh reloads the sample data'})`,
    ...(config.audit.file ? [`  Audit log  ${resolve(config.audit.file)}`] : []),
    ...(config.audit.file && config.audit.signingKeyFile
      ? [
          `  Verify it  npx --no-install gatehouse audit verify --allow-unsealed ${config.audit.file} --public-key ${config.audit.signingKeyFile}.pub`,
        ]
      : []),
    ...(caFile
      ? [`  TLS CA     ${caFile} (verify with: psql "...?sslmode=verify-full&sslrootcert=${caFile}")`]
      : []),
    ...(admin ? [`  Metrics    http://${urlHost(admin)}/metrics`] : []),
    ...(collector
      ? [
          `  Collector  ${collector.url} (every record, kept in ${collector.storeDir})`,
          ...(collector.consoleUrl
            ? [`  Console    ${collector.consoleUrl} (sign in as ${collector.reader ?? 'an approver'})`]
            : []),
          `  Query it   npx --no-install gatehouse audit query${collector.url === `http://127.0.0.1:${DEFAULT_COLLECTOR_PORT}` ? '' : ` --server ${collector.url}`} --user ${collector.reader ?? 'USER'} --since 1h`,
        ]
      : []),
    '',
    'Ctrl-C to stop.',
  ];
  return `${lines.join('\n')}\n`;
}

/** HOST:PORT as a client dials it: wildcard addresses become loopback, IPv6 gets brackets. */
function urlHost({ host, port }: HostPort): string {
  const dial = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return dial.includes(':') ? `[${dial}]:${port}` : `${dial}:${port}`;
}

/** Resolves on the first SIGINT or SIGTERM; a second one stops at once, for a shutdown that hangs. */
function stopSignal(): Promise<undefined> {
  return new Promise((resolveStop) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      process.once('SIGINT', () => process.exit(130)).once('SIGTERM', () => process.exit(143));
      resolveStop(undefined);
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  });
}

const listenProblems: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is in use (is another Gatehouse running?)',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'no such local address',
};

function describe(error: unknown): string {
  if (error instanceof UserError) return error.message;
  const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const problem = code === undefined ? undefined : listenProblems[code];
  if (problem && address !== undefined && port !== undefined) {
    return `cannot listen on ${urlHost({ host: address, port })}: ${problem}`;
  }
  return error instanceof Error ? error.message : String(error);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`gatehouse quickstart: ${describe(error)}\n`);
    process.exit(2);
  },
);
