import type { UpstreamConfig } from '../config/load.ts';

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

/**
 * Logs in to the upstream once, as a session would, and logs out again. Only the upstream's protocol
 * is loaded: a PostgreSQL proxy keeps no MySQL client code in memory, nor the reverse.
 */
export async function probeUpstream(upstream: UpstreamConfig): Promise<UpstreamProbe> {
  return upstream.protocol === 'mysql' ? probeMysql(upstream) : probePostgres(upstream);
}

async function probeMysql(upstream: UpstreamConfig): Promise<UpstreamProbe> {
  const [{ packet }, { connectMysqlUpstream }, { MysqlUpstreamError }] = await Promise.all([
    import('./mysql/packet-io.ts'),
    import('./mysql/upstream.ts'),
    import('./mysql/upstream-error.ts'),
  ]);
  try {
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
    return { ok: true };
  } catch (error) {
    const failure = error instanceof MysqlUpstreamError ? error.failure : 'network';
    return { ok: false, unreachable: isUnreachable(failure), reason: describe(error) };
  }
}

async function probePostgres(upstream: UpstreamConfig): Promise<UpstreamProbe> {
  const [{ connectUpstream, upstreamOptions }, { UpstreamError }] = await Promise.all([
    import('./postgres/upstream.ts'),
    import('./postgres/upstream-error.ts'),
  ]);
  try {
    const connection = await connectUpstream(
      upstreamOptions(upstream, { application_name: 'gatehouse start-up check' }),
    );
    connection.socket.on('error', () => {});
    connection.socket.end(POSTGRES_TERMINATE);
    return { ok: true };
  } catch (error) {
    if (!(error instanceof UpstreamError)) return { ok: false, unreachable: true, reason: describe(error) };
    const reason = error.server ? `${error.server.message} (${error.server.sqlstate})` : error.message;
    return { ok: false, unreachable: isUnreachable(error.failure), reason };
  }
}

function isUnreachable(failure: string): boolean {
  return failure === 'network' || failure === 'timeout' || failure === 'tls';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
