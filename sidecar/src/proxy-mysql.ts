import { sessionMetrics } from './metrics.ts';
import { createMysqlGate } from './policy/gates/mysql-gate.ts';
import { MysqlCodeCatalogCache } from './protocol/mysql/code-catalog-cache.ts';
import { Capability } from './protocol/mysql/constants.ts';
import { MysqlProxyServer } from './protocol/mysql/server.ts';
import { connectMysqlUpstream } from './protocol/mysql/upstream.ts';
import type { ProtocolServer, ProtocolServerDeps } from './proxy-servers.ts';
import { loadMysqlParser } from './sql/mysql/parser.ts';

/** The MySQL proxy server, with the catalog of the database's stored code that its gate reads. */
export async function createMysqlServer(deps: ProtocolServerDeps): Promise<ProtocolServer> {
  const { config, logger } = deps;
  await loadMysqlParser();
  const code = new MysqlCodeCatalogCache({
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
  });
  const server = new MysqlProxyServer({
    config,
    authenticator: deps.authenticator,
    audit: deps.audit,
    logger,
    metrics: sessionMetrics(deps.metrics, 'mysql'),
    policy: deps.policy,
    maskingKey: deps.maskingKey,
    code,
    rowBudget: deps.rowBudget,
    approvals: deps.approvals,
    createGate: (identity, sqlMode, masking, mcpTool) =>
      createMysqlGate({
        ...masking,
        ...(mcpTool && { mcpTool }),
        policy: deps.policy,
        identity,
        database: config.upstream.database,
        sqlMode,
        code: () => code.current(),
        ...(deps.policyHooks && { hooks: deps.policyHooks }),
        columnLineage: config.audit.columnLineage,
      }),
  });
  return {
    listen: (host, port) => server.listen(host, port),
    shutdown: (graceMs) => server.shutdown(graceMs),
    connectInProcess: (origin) => server.connectInProcess(origin),
    get sessionCount() {
      return server.sessionCount;
    },
    // The code catalog refreshes when read, with no timer of its own to stop.
    close: () => {},
  };
}
