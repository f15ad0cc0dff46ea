import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { type Logger, pino } from 'pino';
import { startAdminServer } from './admin/admin-server.ts';
import { openAuditLog } from './audit/log.ts';
import { watchFileContent } from './config/file-watch.ts';
import { type ProxyConfig, parseProxyConfig } from './config/load.ts';
import { UserError } from './errors.ts';
import { createAuthenticator } from './identity/create-authenticator.ts';
import { createMetrics, type ProxyMetrics, registerAuditMetrics } from './metrics.ts';
import { loadPolicyDocuments } from './policy/load-policy.ts';
import { createMaskingKey } from './policy/masking/masking-key.ts';
import { MysqlCodeCatalogCache } from './protocol/mysql/code-catalog-cache.ts';
import { Capability } from './protocol/mysql/constants.ts';
import { createMysqlGate } from './protocol/mysql/mysql-gate.ts';
import { MysqlProxyServer } from './protocol/mysql/server.ts';
import { connectMysqlUpstream } from './protocol/mysql/upstream.ts';
import { CatalogCache } from './protocol/postgres/catalog-cache.ts';
import { PostgresProxyServer } from './protocol/postgres/server.ts';
import type { SessionMetrics } from './protocol/postgres/session.ts';
import { connectUpstream, upstreamOptions } from './protocol/postgres/upstream.ts';
import { loadMysqlParser } from './sql/mysql/parser.ts';
import { loadSqlParser } from './sql/normalize.ts';
import { wasmTieringWarning } from './sql/wasm-tiering.ts';

export interface RunningProxy {
  readonly address: { host: string; port: number };
  readonly adminAddress?: { host: string; port: number };
  readonly metrics: ProxyMetrics;
  /** Graceful stop: no new connections, sessions finish within the grace period, audit log sealed. */
  close(graceMs?: number): Promise<void>;
}

export function createLogger(level: ProxyConfig['logLevel']): Logger {
  return pino({ level, base: { service: 'gatehouse' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Starts the proxy described by `config`; resolves once it listens. */
export async function startProxy(
  config: ProxyConfig,
  options: { logger?: Logger } = {},
): Promise<RunningProxy> {
  const logger = options.logger ?? createLogger(config.logLevel);
  await loadSqlParser();
  if (config.upstream.protocol === 'mysql') await loadMysqlParser();
  const metrics = createMetrics();
  const authenticator = await createAuthenticator(config.identity, { logger });
  const audit = await openAuditLog({
    ...(config.audit.file !== undefined && { file: config.audit.file }),
    stdout: config.audit.stdout,
    ...(config.audit.signingKeyFile !== undefined && { signingKeyFile: config.audit.signingKeyFile }),
    checkpointEveryRecords: config.audit.checkpointEveryRecords,
    checkpointIntervalMs: config.audit.checkpointIntervalMs,
    logger,
  });
  registerAuditMetrics(metrics.registry, audit);

  let policy =
    config.policyDocuments.length > 0
      ? loadPolicyDocuments(config.policyDocuments, config.source)
      : undefined;
  if (!policy)
    logger.warn('no policy documents in the config: statements are audited, not checked against guardrails');
  const stopWatching = watchFileContent(config.source, (text) => {
    try {
      const next = parseProxyConfig(text, config.source).policyDocuments;
      policy = next.length > 0 ? loadPolicyDocuments(next, config.source) : undefined;
      logger.info(
        { file: config.source, documents: next.length },
        'policy reloaded; settings other than policy documents apply at the next start',
      );
    } catch (error) {
      logger.error(
        { file: config.source, err: error instanceof Error ? error.message : String(error) },
        'policy reload refused: the previous policy stays in force',
      );
    }
  });

  if (!config.masking.key)
    logger.warn(
      'masking.key is not set: hash and tokenize use a random key, so their values change at every start',
    );
  const maskingKey = createMaskingKey(config.masking.key ?? randomBytes(32));
  const catalog =
    config.upstream.protocol === 'postgres'
      ? new CatalogCache({
          connect: () =>
            connectUpstream(
              upstreamOptions(config.upstream, {
                application_name: 'gatehouse catalog',
                statement_timeout: '10000',
              }),
            ),
          logger: logger.child({ component: 'catalog' }),
          refreshMs: config.masking.catalogRefreshMs,
          sampleRows: config.masking.sampleRows,
          maxSampledTables: config.masking.maxSampledTables,
          queryTimeoutMs: 30_000,
        })
      : undefined;

  const code =
    config.upstream.protocol === 'mysql'
      ? new MysqlCodeCatalogCache({
          load: async (queries) => {
            const u = config.upstream;
            const upstream = await connectMysqlUpstream({
              host: u.host,
              port: u.port,
              user: u.user,
              ...(u.password !== undefined && { password: u.password }),
              database: u.database,
              tls: u.tls,
              connectTimeoutMs: u.connectTimeoutMs,
              clientCapabilities: Capability.DEPRECATE_EOF | Capability.PROTOCOL_41,
              charset: 45,
              attributes: { program_name: 'gatehouse catalog' },
              setupQueries: queries,
            });
            upstream.socket.destroy();
            return upstream.setupRows;
          },
          logger: logger.child({ component: 'catalog' }),
          refreshMs: config.masking.catalogRefreshMs,
        })
      : undefined;

  const server =
    config.upstream.protocol === 'mysql'
      ? new MysqlProxyServer({
          config,
          authenticator,
          audit,
          logger,
          metrics: sessionMetrics(metrics, 'mysql'),
          policy: () => policy,
          maskingKey,
          code: code!,
          createGate: (identity, sqlMode) =>
            createMysqlGate({
              policy: () => policy,
              identity,
              database: config.upstream.database,
              sqlMode,
              code: () => code!.current(),
            }),
        })
      : new PostgresProxyServer({
          config,
          authenticator,
          audit,
          logger,
          policy: () => policy,
          metrics: sessionMetrics(metrics, 'postgres'),
          catalog: catalog!,
          maskingKey,
        });
  let address: { host: string; port: number };
  try {
    const bound = await server.listen(config.listen.host, config.listen.port);
    address = { host: bound.address, port: bound.port };
  } catch (error) {
    stopWatching();
    authenticator.close();
    await audit.close();
    throw new UserError(
      `cannot listen on ${config.listen.host}:${config.listen.port}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }

  let draining = false;
  let admin: { server: Server; address: { host: string; port: number } } | undefined;
  if (config.admin) {
    try {
      const started = await startAdminServer(config.admin.host, config.admin.port, metrics.registry, {
        notReadyReason: () =>
          draining ? 'shutting down' : audit.healthy ? undefined : `audit log unavailable: ${audit.failure}`,
      });
      admin = {
        server: started.server,
        address: { host: started.address.address, port: started.address.port },
      };
    } catch (error) {
      await server.shutdown(0);
      stopWatching();
      authenticator.close();
      await audit.close();
      throw new UserError(
        `cannot listen on ${config.admin.host}:${config.admin.port} (admin): ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  const tiering = wasmTieringWarning();
  if (tiering) logger.warn(tiering);
  logger.info(
    {
      listen: `${address.host}:${address.port}`,
      upstream: `${config.upstream.host}:${config.upstream.port}/${config.upstream.database}`,
      identity: config.identity.mode,
      audit: config.audit.file ?? '(stdout only)',
      ...(admin && { admin: `${admin.address.host}:${admin.address.port}` }),
    },
    'gatehouse proxy listening',
  );

  probeUpstream(config, logger);

  let closing: Promise<void> | undefined;
  return {
    address,
    ...(admin && { adminAddress: admin.address }),
    metrics,
    close(graceMs = config.limits.shutdownGraceMs) {
      closing ??= (async () => {
        draining = true;
        logger.info(
          { graceMs, sessions: server.sessionCount },
          'shutting down: no new connections, sessions finishing',
        );
        stopWatching();
        await server.shutdown(graceMs);
        catalog?.close();
        authenticator.close();
        await audit.close();
        if (admin) await new Promise((resolve) => admin!.server.close(resolve));
        logger.info('gatehouse proxy stopped');
      })();
      return closing;
    },
  };
}

function sessionMetrics(m: ProxyMetrics, protocol: 'postgres' | 'mysql'): SessionMetrics {
  const ok = m.statementsTotal.labels(protocol, 'ok');
  const error = m.statementsTotal.labels(protocol, 'error');
  const refused = m.statementsTotal.labels(protocol, 'refused');
  const duration = m.statementDuration.labels(protocol);
  const bytesIn = m.bytesTotal.labels(protocol, 'client_to_upstream');
  const bytesOut = m.bytesTotal.labels(protocol, 'upstream_to_client');
  const active = m.connectionsActive.labels(protocol);
  return {
    statementOk: () => ok.inc(),
    statementError: () => error.inc(),
    statementRefused: () => refused.inc(),
    observeDuration: (seconds) => duration.observe(seconds),
    bytesIn: (n) => bytesIn.inc(n),
    bytesOut: (n) => bytesOut.inc(n),
    upstreamError: (kind) => m.upstreamErrorsTotal.labels(protocol, kind).inc(),
    connection: (outcome) => m.connectionsTotal.labels(protocol, outcome).inc(),
    active: (delta) => active.inc(delta),
  };
}

/**
 * Says at start, in one line, when the database cannot be reached: the proxy keeps running (in a pod
 * the database may come up later) and refuses clients with 08006 until it can connect.
 */
function probeUpstream(config: ProxyConfig, logger: Logger): void {
  const { host, port, connectTimeoutMs } = config.upstream;
  const socket = host.startsWith('/')
    ? connect({ path: config.upstream.protocol === 'mysql' ? host : `${host}/.s.PGSQL.${port}` })
    : connect({ host, port });
  socket.setTimeout(connectTimeoutMs);
  const fail = (reason: string) => {
    socket.destroy();
    logger.error(
      { upstream: `${host}:${port}`, reason },
      'the database is not reachable: clients are refused (08006) until it is',
    );
  };
  socket.once('connect', () => socket.destroy());
  socket.once('timeout', () => fail(`no answer within ${connectTimeoutMs} ms`));
  socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
}
