import type { Socket } from 'node:net';
import {
  authenticationOk,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
  parameterStatus,
  readyForQuery,
} from '../protocol/postgres/backend-writer.ts';
import { sendCancel } from '../protocol/postgres/cancel.ts';
import { StartupCode } from '../protocol/postgres/codes.ts';
import { ProtocolError } from '../protocol/postgres/protocol-error.ts';
import { parseStartupParameters, StartupReader } from '../protocol/postgres/startup-reader.ts';
import { connectUpstream } from '../protocol/postgres/upstream.ts';
import { UpstreamError } from '../protocol/postgres/upstream-error.ts';
import type { UpstreamTls } from '../protocol/postgres/upstream-socket.ts';

export interface PgTunnelTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: UpstreamTls;
  /** Used when the client's startup packet names none. */
  readonly database: string;
  readonly user: string;
}

export interface TunnelEvents {
  /** A session reached the proxy (`subject` as the token names it) or could not. */
  readonly opened?: (client: string) => void;
  readonly failed?: (client: string, reason: string) => void;
}

const MAX_STARTUP_PACKET = 10_000;
const CONNECT_TIMEOUT_MS = 30_000;

/**
 * One client of `gatehouse tunnel` to a PostgreSQL Gatehouse. The client is let in without a
 * password (it reached a loopback port this user opened); the tunnel then signs in to the proxy as
 * a client would, with the current token as the password, whichever way the proxy asks for it
 * (cleartext or SCRAM), and relays the proxy's greeting and every byte after it unchanged. The
 * proxy's cancel keys pass through, and so do cancel requests.
 */
export async function tunnelPostgresClient(
  client: Socket,
  target: PgTunnelTarget,
  token: () => Promise<string>,
  events: TunnelEvents = {},
): Promise<void> {
  const label = `${client.remoteAddress}:${client.remotePort}`;
  const reader = new StartupReader();
  reader.attach(client);
  client.on('error', () => undefined);
  try {
    let params: Map<string, string> | undefined;
    while (!params) {
      const packet = await reader.readUntyped(MAX_STARTUP_PACKET);
      const code = packet.readInt32BE(0);
      // The hop to 127.0.0.1 stays in this machine; the hop to the proxy has its own TLS.
      if (code === StartupCode.SslRequest || code === StartupCode.GssEncRequest) {
        client.write('N');
        continue;
      }
      if (code === StartupCode.CancelRequest) {
        reader.detach();
        client.destroy();
        if (packet.length >= 12) {
          await sendCancel({
            ...target,
            processId: packet.readInt32BE(4),
            secretKey: Buffer.from(packet.subarray(8)),
          }).catch(() => undefined);
        }
        return;
      }
      if (code >>> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}`, '0A000');
      params = parseStartupParameters(packet);
      const extensions = [...params.keys()].filter((k) => k.startsWith('_pq_.'));
      if ((code & 0xffff) > 0 || extensions.length > 0) client.write(negotiateProtocolVersion(extensions));
    }
    const startupParameters: Record<string, string> = {};
    for (const [name, value] of params)
      if (name !== 'user' && name !== 'database' && !name.startsWith('_pq_.'))
        startupParameters[name] = value;
    const upstream = await connectUpstream({
      host: target.host,
      port: target.port,
      tls: target.tls,
      database: params.get('database') || target.database,
      user: params.get('user') || target.user,
      password: await token(),
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      startupParameters,
    });
    const early = reader.detach();
    if (client.destroyed) {
      upstream.socket.destroy();
      return;
    }
    client.write(greeting(upstream));
    if (upstream.leftover.length > 0) client.write(upstream.leftover);
    if (early.length > 0) upstream.socket.write(early);
    client.pipe(upstream.socket);
    upstream.socket.pipe(client);
    upstream.socket.on('error', () => client.destroy());
    upstream.socket.on('close', () => client.destroy());
    client.on('close', () => upstream.socket.destroy());
    upstream.socket.resume();
    events.opened?.(label);
  } catch (error) {
    reader.detach();
    const { code, message } = describe(error);
    events.failed?.(label, message);
    if (!client.destroyed) client.end(errorResponse({ severity: 'FATAL', code, message }));
  }
}

/** What the proxy said when it let us in, replayed to the client as if it had said it to them. */
function greeting(upstream: Awaited<ReturnType<typeof connectUpstream>>): Buffer {
  const parts: Buffer[] = [authenticationOk()];
  for (const [name, value] of upstream.parameters) parts.push(parameterStatus(name, value));
  if (upstream.backendKey)
    parts.push(backendKeyData(upstream.backendKey.processId, upstream.backendKey.secretKey));
  parts.push(readyForQuery(upstream.transactionStatus));
  return Buffer.concat(parts);
}

/** The proxy's own words when it refused us (token expired, no grant...); ours for the rest. */
function describe(error: unknown): { code: string; message: string } {
  if (error instanceof UpstreamError) {
    if (error.server) return { code: error.server.sqlstate, message: error.server.message };
    return { code: error.sqlstate, message: `gatehouse tunnel: ${error.message}` };
  }
  if (error instanceof ProtocolError)
    return { code: error.sqlstate, message: `gatehouse tunnel: ${error.message}` };
  return {
    code: '08001',
    message: `gatehouse tunnel: ${error instanceof Error ? error.message : String(error)}`,
  };
}
