import type { Logger } from 'pino';
import type { AuditSink } from '../../audit/events.ts';
import type { ProxyConfig } from '../../config/load.ts';
import type { SessionMetrics } from '../../metrics.ts';
import { unreadableSqlMode } from '../../sql/mysql/sql-mode.ts';
import type { ConnectionOrigin } from '../in-process-channel.ts';
import type { MysqlErrorKind } from './constants.ts';
import { MysqlUpstreamError } from './upstream-error.ts';

/**
 * A login the proxy refuses: the error the client gets, the audit record and metrics of a refused
 * or failed connection, and the server defaults under which no session is started.
 */

/** A handshake the proxy refuses, with the error the client gets. */
export class RefusedStart extends Error {
  readonly kind: MysqlErrorKind;
  readonly seq: number;
  constructor(kind: MysqlErrorKind, message: string, seq = 0) {
    super(message);
    this.kind = kind;
    this.seq = seq;
  }
}

/** Counts and logs an upstream that could not be reached or logged into. */
export function logUpstreamFailure(
  logger: Logger,
  deps: { readonly config: ProxyConfig; readonly metrics: SessionMetrics },
  error: unknown,
): void {
  const u = deps.config.upstream;
  deps.metrics.upstreamError(error instanceof MysqlUpstreamError ? error.failure : 'network');
  deps.metrics.connection('failed');
  logger.error(
    { err: error instanceof Error ? error.message : String(error), upstream: `${u.host}:${u.port}` },
    'cannot open the upstream connection',
  );
}

/** Audits a refused login with the MySQL error the client gets (its number and SQLSTATE). */
export function refuseConnection(
  who: {
    readonly peer: { readonly address: string; readonly port: number };
    readonly origin?: ConnectionOrigin | undefined;
  },
  deps: { readonly config: ProxyConfig; readonly metrics: SessionMetrics; readonly audit: AuditSink },
  user: string,
  kind: MysqlErrorKind,
  reason: string,
): void {
  deps.metrics.connection('refused');
  deps.audit.record({
    type: 'connection.refused',
    client: who.peer,
    protocol: 'mysql',
    ...(who.origin && { mcpTool: who.origin.mcpTool }),
    user,
    database: deps.config.upstream.database,
    sqlstate: kind.sqlstate,
    errno: kind.code,
    reason,
  });
}

/** Client character sets whose multibyte characters may end in a quote or backslash byte. */
const UNSAFE_CLIENT_CHARSETS = new Set(['big5', 'cp932', 'gbk', 'gb18030', 'sjis']);

/** Why the session's starting sql_mode or character_set_client cannot be read as the server reads them. */
export function unreadableSession(sqlMode: string | null, clientCharset: string | null): string | undefined {
  const mode = sqlMode === null ? undefined : unreadableSqlMode(sqlMode);
  if (mode)
    return `the server starts sessions with sql_mode ${mode}, under which Gatehouse cannot read statements as the server does`;
  if (clientCharset !== null && UNSAFE_CLIENT_CHARSETS.has(clientCharset.toLowerCase()))
    return `the server starts sessions with character_set_client ${clientCharset}, in which part of a character can read as a quote or backslash; use utf8mb4`;
  return undefined;
}
