import { loadMysqlParser } from '../sql/mysql/parser.ts';
import { loadSqlParser } from '../sql/normalize.ts';
import { MysqlProxyClient } from './mysql-client.ts';
import { PostgresProxyClient } from './postgres-client.ts';
import type { AgentCredentials, ProxyClient, ProxyRoute } from './proxy-session.ts';

export type WireProtocol = 'postgres' | 'mysql';

/** The client of the proxy's protocol, with the analyser `query` checks its argument with loaded. */
export async function proxyClientFor(
  protocol: WireProtocol,
  route: ProxyRoute,
  credentials: AgentCredentials,
): Promise<ProxyClient> {
  if (protocol === 'mysql') {
    await loadMysqlParser();
    return new MysqlProxyClient(route, credentials);
  }
  await loadSqlParser();
  return new PostgresProxyClient(route, credentials);
}
