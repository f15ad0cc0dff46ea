import { sessionMetrics } from './metrics.ts';
import { CatalogCache } from './protocol/postgres/catalog-cache.ts';
import { PostgresProxyServer } from './protocol/postgres/server.ts';
import { connectUpstream, upstreamOptions } from './protocol/postgres/upstream.ts';
import type { ProtocolServer, ProtocolServerDeps } from './proxy-servers.ts';

/** The PostgreSQL proxy server, with the upstream's catalog that masking reads. */
export function createPostgresServer(deps: ProtocolServerDeps): ProtocolServer {
  const { config, logger } = deps;
  const catalog = new CatalogCache({
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
  });
  const server = new PostgresProxyServer({
    config,
    authenticator: deps.authenticator,
    audit: deps.audit,
    logger,
    policy: deps.policy,
    metrics: sessionMetrics(deps.metrics, 'postgres'),
    catalog,
    maskingKey: deps.maskingKey,
    rowBudget: deps.rowBudget,
    approvals: deps.approvals,
    ...(deps.policyHooks && { policyHooks: deps.policyHooks }),
  });
  return {
    listen: (host, port) => server.listen(host, port),
    shutdown: (graceMs) => server.shutdown(graceMs),
    connectInProcess: (origin) => server.connectInProcess(origin),
    get sessionCount() {
      return server.sessionCount;
    },
    close: () => catalog.close(),
  };
}
