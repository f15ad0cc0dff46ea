import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { type Logger, pino } from 'pino';
import type { ProxyConfig } from '../config/load.ts';
import type { RunningProxy } from '../proxy.ts';
import { newMcpServer } from './mcp-server.ts';
import { proxyClientFor, type WireProtocol } from './proxy-client-for.ts';
import type { AgentCredentials, ProxyEndpoint, ProxyRoute } from './proxy-session.ts';
import { serveHttp } from './serve-http.ts';
import type { ToolSettings } from './tools.ts';

export interface McpOptions {
  readonly credentials: AgentCredentials;
  readonly settings: ToolSettings;
  /** Serve Streamable HTTP here; stdio otherwise. */
  readonly http?: { readonly host: string; readonly port: number };
  /** A running proxy to connect to, and its wire protocol... */
  readonly proxy?: ProxyEndpoint;
  readonly protocol?: WireProtocol;
  /** ...or a proxy to start in this process. */
  readonly config?: {
    readonly file: string;
    readonly logLevel: string;
    readonly upstream?: string;
    readonly auditFile?: string;
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Starts the MCP server; `done` resolves once it has stopped (stdin closed, or a signal). */
export async function startMcp(options: McpOptions): Promise<{ done: Promise<void> }> {
  // stdout is the MCP channel under stdio: every log line, the proxy's audit copy included, goes to stderr.
  const logger = pino(
    { level: options.config?.logLevel ?? 'warn', base: { service: 'gatehouse-mcp' } },
    pino.destination(2),
  );
  let inProcess: RunningProxy | undefined;
  let route: ProxyRoute = options.proxy!;
  let protocol = options.protocol ?? 'postgres';
  let where = `${options.proxy?.host}:${options.proxy?.port}`;
  if (options.config) {
    inProcess = await startInProcessProxy(options.config, logger);
    // Tool calls are handed to the proxy's sessions in process, each marked with its tool.
    route = inProcess.inProcess;
    protocol = route.protocol;
    where = `${inProcess.address.host}:${inProcess.address.port} (in process)`;
  }
  const client = await proxyClientFor(protocol, route, options.credentials);
  const makeServer = () => newMcpServer(client, options.settings);
  const stopProxy = async () => {
    if (inProcess) await inProcess.close();
  };

  if (options.http) {
    if (!LOOPBACK.has(options.http.host))
      logger.warn(
        { http: options.http.host },
        'the MCP endpoint listens beyond loopback: anyone who reaches it acts as this agent',
      );
    const { server, address } = await serveHttp(options.http.host, options.http.port, makeServer).catch(
      async (error: unknown) => {
        await stopProxy();
        throw error;
      },
    );
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    process.stderr.write(
      `gatehouse mcp listening on http://${host}:${address.port}/mcp (Streamable HTTP), through the proxy at ${where}\n`,
    );
    return {
      done: untilSignal().then(async () => {
        await new Promise((resolve) => server.close(resolve));
        await stopProxy();
      }),
    };
  }
  const server = makeServer();
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
  });
  await server.connect(transport);
  logger.info({ proxy: where }, 'gatehouse mcp serving on stdio');
  return {
    done: Promise.race([closed, untilSignal()]).then(async () => {
      await server.close();
      await stopProxy();
    }),
  };
}

async function startInProcessProxy(settings: NonNullable<McpOptions['config']>, logger: Logger) {
  const [{ loadProxyConfig }, { startProxy }] = await Promise.all([
    import('../config/load.ts'),
    import('../proxy.ts'),
  ]);
  const loaded = loadProxyConfig(settings.file, {
    listen: '127.0.0.1:0',
    ...(settings.upstream !== undefined && { upstream: settings.upstream }),
    ...(settings.auditFile !== undefined && { auditFile: settings.auditFile }),
  });
  // The agent's connections are handed over in this process, never through the listener: client TLS
  // would guard nothing.
  const { clientTls: _tls, clientTlsAuto: _auto, ...rest } = loaded;
  const config: ProxyConfig = rest;
  return startProxy(config, { logger });
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}
