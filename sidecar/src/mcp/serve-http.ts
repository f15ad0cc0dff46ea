import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { UserError } from '../errors.ts';

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Streamable HTTP, stateless: each POST to /mcp gets a server and transport of its own, since every
 * tool call opens its own proxy session anyway and there is nothing to keep between calls. Host and
 * Origin are checked against the listening address (DNS rebinding: a web page must not reach a
 * loopback MCP server through a name it controls).
 */
export async function serveHttp(
  host: string,
  port: number,
  makeServer: () => McpServer,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((request, response) => {
    if (request.url?.split('?')[0] !== '/mcp') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: use /mcp"}');
      return;
    }
    if (request.method !== 'POST') {
      // Stateless: no server-sent event stream to open, no session to delete.
      response.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    void readJson(request).then(
      async (body) => {
        const mcp = makeServer();
        const transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: undefined,
          enableJsonResponse: true,
          enableDnsRebindingProtection: true,
          allowedHosts: allowedHosts(host, (server.address() as AddressInfo).port),
        });
        response.on('close', () => {
          void transport.close();
          void mcp.close();
        });
        await mcp.connect(transport);
        await transport.handleRequest(request, response, body);
      },
      (error: Error) => {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: error.message }, id: null }),
        );
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new UserError(`--http cannot listen on ${host}:${port}: ${error.code ?? error.message}`)),
    );
    server.listen(port, host, resolve);
  });
  return { server, address: server.address() as AddressInfo };
}

function allowedHosts(host: string, port: number): string[] {
  const names = new Set([host, host.includes(':') ? `[${host}]` : host]);
  if (host === '127.0.0.1' || host === '::1') names.add('localhost');
  return [...names].flatMap((name) => [name, `${name}:${port}`]);
}

function readJson(request: NodeJS.ReadableStream): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('request body too large'));
        request.removeAllListeners('data');
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new Error('request body is not JSON'));
      }
    });
    request.on('error', reject);
  });
}
