import type { Socket } from 'node:net';
import { type Duplex, duplexPair } from 'node:stream';
import type { Credentials } from '../identity/identity.ts';
import type { McpTool } from '../policy/mcp-tools.ts';

/**
 * What the proxy knows of a connection because it made the connection itself: never read from
 * anything the client sent. Only a connection handed over in process (`inProcessPair`) has one, so
 * no client that reaches a listener, whatever it declares, can carry it.
 */
export interface ConnectionOrigin {
  /** The call of this tool by the MCP server in this process (sidecar/src/mcp/). */
  readonly mcpTool: McpTool;
}

/**
 * The proxy as the MCP server in its own process reaches it: connections handed over in memory, each
 * marked with the tool it calls, which no client over a listener can claim.
 */
export interface InProcessProxy {
  readonly protocol: 'postgres' | 'mysql';
  /** A new connection to the proxy's sessions, for one call of `tool`. */
  connect(tool: McpTool): InProcessClientStream;
  /**
   * The tools the agent who logs in with `login` may call now, for the tool list; undefined when the
   * login fails (the calls are then refused at login, saying why).
   */
  toolsFor(login: Credentials): Promise<ReadonlySet<McpTool> | undefined>;
}

/**
 * The client's end of an in-process connection, as node-postgres and mysql2 take a stream of their
 * own (`stream` option): they call `connect` and wait for its event, and set socket options.
 */
export type InProcessClientStream = Duplex & {
  connect(): InProcessClientStream;
  setNoDelay(): InProcessClientStream;
  setKeepAlive(): InProcessClientStream;
};

/**
 * Two connected ends in memory: one for a client in this process, one for the proxy's session, which
 * reads it as it reads a client's socket. The session end has no address (the audit's
 * `clientAddress` is empty, as it is for any client whose address is unknown). Either end closing
 * closes the other, as a TCP connection's would.
 */
export function inProcessPair(): { client: InProcessClientStream; server: Socket } {
  const [clientEnd, serverEnd] = duplexPair();
  clientEnd.once('close', () => serverEnd.destroy());
  serverEnd.once('close', () => clientEnd.destroy());
  const client = Object.assign(clientEnd, {
    connect(): InProcessClientStream {
      process.nextTick(() => client.emit('connect'));
      return client;
    },
    setNoDelay: (): InProcessClientStream => client,
    setKeepAlive: (): InProcessClientStream => client,
  });
  // The parts of net.Socket the sessions use beyond a stream's.
  const server = Object.assign(serverEnd, {
    remoteAddress: undefined,
    remotePort: undefined,
    setNoDelay: () => server,
    setKeepAlive: () => server,
  }) as unknown as Socket;
  return { client, server };
}
