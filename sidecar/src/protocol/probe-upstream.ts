import type { UpstreamConfig } from '../config/load.ts';
import { packet } from './mysql/packet-io.ts';
import { connectMysqlUpstream, MysqlUpstreamError } from './mysql/upstream.ts';
import { connectUpstream, upstreamOptions } from './postgres/upstream.ts';
import { UpstreamError } from './postgres/upstream-error.ts';

/**
 * What one login with the proxy's own credentials showed: fine, a database that cannot be reached
 * (down, wrong address, TLS), or one that answers but refuses the login (wrong user or password, no
 * such database). The reason names the endpoint and the server's words, never the password.
 */
export type UpstreamProbe =
  | { readonly ok: true }
  | { readonly ok: false; readonly unreachable: boolean; readonly reason: string };

const POSTGRES_TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
const MYSQL_COM_QUIT = Buffer.from([0x01]);
const UTF8MB4_GENERAL_CI = 45;

/** Logs in to the upstream once, as a session would, and logs out again. */
export async function probeUpstream(upstream: UpstreamConfig): Promise<UpstreamProbe> {
  try {
    if (upstream.protocol === 'mysql') {
      const connection = await connectMysqlUpstream({
        host: upstream.host,
        port: upstream.port,
        user: upstream.user,
        ...(upstream.password !== undefined && { password: upstream.password }),
        database: upstream.database,
        tls: upstream.tls,
        connectTimeoutMs: upstream.connectTimeoutMs,
        clientCapabilities: 0,
        charset: UTF8MB4_GENERAL_CI,
        attributes: { program_name: 'gatehouse start-up check' },
      });
      connection.socket.on('error', () => {});
      connection.socket.end(packet(MYSQL_COM_QUIT, 0));
    } else {
      const connection = await connectUpstream(
        upstreamOptions(upstream, { application_name: 'gatehouse start-up check' }),
      );
      connection.socket.on('error', () => {});
      connection.socket.end(POSTGRES_TERMINATE);
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, unreachable: isUnreachable(error), reason: describe(error) };
  }
}

function isUnreachable(error: unknown): boolean {
  const failure =
    error instanceof UpstreamError || error instanceof MysqlUpstreamError ? error.failure : 'network';
  return failure === 'network' || failure === 'timeout' || failure === 'tls';
}

function describe(error: unknown): string {
  if (error instanceof UpstreamError && error.server)
    return `${error.server.message} (${error.server.sqlstate})`;
  return error instanceof Error ? error.message : String(error);
}
