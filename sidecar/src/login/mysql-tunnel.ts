import type { Socket } from 'node:net';
import { Capability, MysqlError, RELAYED_CAPABILITIES, ServerStatus } from '../protocol/mysql/constants.ts';
import { HandshakeReader } from '../protocol/mysql/handshake-reader.ts';
import { parseHandshakeResponse, randomScramble } from '../protocol/mysql/handshake-response.ts';
import { errPacket, greetingPacket, okPacket } from '../protocol/mysql/server-packets.ts';
import { connectMysqlUpstream, type ServerGreeting } from '../protocol/mysql/upstream.ts';
import { MysqlUpstreamError } from '../protocol/mysql/upstream-error.ts';
import type { UpstreamTls } from '../protocol/mysql/upstream-socket.ts';
import type { TunnelEvents } from './pg-tunnel.ts';

export interface MysqlTunnelTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: UpstreamTls;
  /** Used when the client names no database. */
  readonly database: string;
  readonly user: string;
}

const CONNECT_TIMEOUT_MS = 30_000;
let connectionIds = 0;

/**
 * One client of `gatehouse tunnel` to a MySQL Gatehouse. The tunnel greets the client as a server
 * would (the proxy's version and capabilities, less TLS: this hop stays on loopback), takes whatever
 * it answers as its login without checking a password, signs in to the proxy as that client with
 * the current token (the proxy asks for it in clear, so only over TLS), and tells the client OK.
 * From there every byte is relayed unchanged; both sides agreed on the client's capabilities.
 */
export async function tunnelMysqlClient(
  client: Socket,
  target: MysqlTunnelTarget,
  proxyGreeting: () => Promise<ServerGreeting>,
  token: () => Promise<string>,
  events: TunnelEvents = {},
): Promise<void> {
  const label = `${client.remoteAddress}:${client.remotePort}`;
  const reader = new HandshakeReader();
  reader.attach(client);
  client.on('error', () => undefined);
  let seq = 0;
  try {
    const greeting = await proxyGreeting();
    connectionIds = (connectionIds + 1) % 0x7fffffff;
    const offered =
      ((greeting.capabilities & RELAYED_CAPABILITIES) |
        Capability.PROTOCOL_41 |
        Capability.PLUGIN_AUTH |
        Capability.SECURE_CONNECTION) >>>
      0;
    client.write(
      greetingPacket({
        serverVersion: greeting.serverVersion,
        connectionId: connectionIds,
        scramble: randomScramble(),
        capabilities: offered,
        charset: greeting.charset || 45,
        status: ServerStatus.AUTOCOMMIT,
        authPlugin: 'mysql_native_password',
      }),
    );
    const reply = await reader.read();
    seq = (reply.seq + 1) & 0xff;
    const asked = reply.payload.length >= 4 ? reply.payload.readUInt32LE(0) : 0;
    if (asked & Capability.SSL)
      throw new TunnelRefusal('the tunnel offers no TLS on loopback: connect without --ssl');
    const response = parseHandshakeResponse(reply.payload);
    const capabilities = (response.capabilities & offered) >>> 0;
    const upstream = await connectMysqlUpstream({
      host: target.host,
      port: target.port,
      tls: target.tls,
      user: response.user || target.user,
      password: await token(),
      database: response.database || target.database,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      clientCapabilities: capabilities,
      charset: response.charset,
      attributes: {
        ...(response.program !== undefined && { program_name: response.program }),
        ...(response.purpose !== undefined && { 'gatehouse.purpose': response.purpose }),
        ...(response.runId !== undefined && { 'gatehouse.run_id': response.runId }),
      },
    });
    const early = reader.detach();
    if (client.destroyed) {
      upstream.socket.destroy();
      return;
    }
    client.write(okPacket(seq, upstream.status));
    if (upstream.leftover.length > 0) client.write(upstream.leftover);
    if (early.length > 0) upstream.socket.write(early);
    client.pipe(upstream.socket);
    upstream.socket.pipe(client);
    upstream.socket.on('error', () => client.destroy());
    upstream.socket.on('close', () => client.destroy());
    client.on('close', () => upstream.socket.destroy());
    client.resume();
    upstream.socket.resume();
    events.opened?.(label);
  } catch (error) {
    reader.detach();
    const message = describe(error);
    events.failed?.(label, message);
    if (!client.destroyed) client.end(errPacket(MysqlError.ACCESS_DENIED, message, seq));
  }
}

class TunnelRefusal extends Error {}

/** The proxy's own words when it refused us (`Access denied ... (Gatehouse: token expired)`); ours otherwise. */
function describe(error: unknown): string {
  if (error instanceof MysqlUpstreamError && error.failure === 'server')
    return error.message.replace(/^login: server error \d+: /, '');
  return `gatehouse tunnel: ${error instanceof Error ? error.message : String(error)}`;
}
