import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { McpConfig } from '../config/load.ts';
import { UserError } from '../errors.ts';
import type { InProcessProxy } from '../protocol/in-process-channel.ts';
import { newMcpServer } from './mcp-server.ts';
import { proxyClientFor } from './proxy-client-for.ts';
import type { AgentCredentials } from './proxy-session.ts';
import { serveHttp } from './serve-http.ts';

/**
 * The proxy's `mcp` option: Streamable HTTP MCP in the proxy process, whose tool calls are
 * connections handed to this proxy's sessions in process, each marked with its tool (so the session
 * machinery, policy and audit are those of any client, and the proxy knows the tool for certain), as
 * the agent the section names: in a sidecar (token-file mode) the pod's own identity, the workload
 * that reaches the loopback port being that pod.
 */
export async function serveMcpInProxy(
  config: McpConfig,
  proxy: InProcessProxy,
  logger: Logger,
): Promise<{ server: Server; url: string }> {
  const credentials: AgentCredentials =
    config.agent.kind === 'pod'
      ? { kind: 'pod' }
      : config.agent.kind === 'token-file'
        ? { kind: 'token-file', path: config.agent.path }
        : { kind: 'local', user: config.agent.user, password: config.agent.password };
  const client = await proxyClientFor(proxy.protocol, proxy, credentials);
  const settings = {
    bounds: { maxRows: config.maxRows, maxBytes: config.maxBytes, maxCellChars: 2000 },
    approvalWaitMs: config.approvalWaitMs,
  };
  const { server, address } = await serveHttp(config.listen.host, config.listen.port, () =>
    newMcpServer(client, settings),
  ).catch((error: unknown) => {
    throw new UserError(
      `cannot listen on ${config.listen.host}:${config.listen.port} (mcp): ${error instanceof Error ? error.message : String(error)}`,
    );
  });
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shown}:${address.port}/mcp`;
  logger.info({ mcp: url, agent: config.agent.kind }, 'MCP endpoint serving (Streamable HTTP)');
  return { server, url };
}
