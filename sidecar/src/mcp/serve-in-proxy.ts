import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { McpConfig } from '../config/load.ts';
import { UserError } from '../errors.ts';
import { newMcpServer } from './mcp-server.ts';
import { proxyClientFor, type WireProtocol } from './proxy-client-for.ts';
import type { AgentCredentials } from './proxy-session.ts';
import { serveHttp } from './serve-http.ts';

/**
 * The proxy's `mcp` option: Streamable HTTP MCP in the proxy process, whose tool calls connect to
 * this proxy's own listener as any client does (so the session machinery, policy and audit are the
 * same as for `gatehouse mcp`), as the agent the section names: in a sidecar (token-file mode) the
 * pod's own identity, the workload that reaches the loopback port being that pod.
 */
export async function serveMcpInProxy(
  config: McpConfig,
  protocol: WireProtocol,
  listener: { host: string; port: number },
  logger: Logger,
): Promise<{ server: Server; url: string }> {
  const credentials: AgentCredentials =
    config.agent.kind === 'pod'
      ? { kind: 'pod' }
      : config.agent.kind === 'token-file'
        ? { kind: 'token-file', path: config.agent.path }
        : { kind: 'local', user: config.agent.user, password: config.agent.password };
  // A listener on every address is reached on loopback: the connection stays in the pod.
  const host =
    listener.host === '0.0.0.0' || listener.host === ''
      ? '127.0.0.1'
      : listener.host === '::'
        ? '::1'
        : listener.host;
  const client = await proxyClientFor(protocol, { host, port: listener.port }, credentials);
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
