/**
 * What went wrong while reaching the upstream database:
 * - `server`: it sent an ErrorResponse (bad password, unknown database, too many connections...);
 * - `network`: TCP failed (refused, reset, closed early, DNS);
 * - `timeout`: the whole handshake took longer than the connect timeout;
 * - `tls`: the server refused TLS, or its certificate or host name did not verify;
 * - `auth`: an authentication method we do not speak, no password configured, or a server that
 *   failed to prove it knows the password;
 * - `protocol`: bytes that are not what PostgreSQL sends;
 * - `aborted`: the caller gave up (its AbortSignal fired).
 */
export type UpstreamFailure = 'server' | 'network' | 'timeout' | 'tls' | 'auth' | 'protocol' | 'aborted';

/** The fields of the server's ErrorResponse, as sent, ready to be relayed to the client. */
export interface UpstreamServerError {
  /** Non-localised severity (`FATAL`, `ERROR`, ...). */
  readonly severity: string;
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/**
 * A failure to open or use an upstream connection. The message is meant for logs: it names the
 * endpoint and role but never holds the password. `sqlstate` is always set, so a proxy can answer
 * its client in PostgreSQL's own terms: the server's code when it sent one, `08P01` for protocol
 * violations and `08001` (cannot establish connection) for everything else.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly failure: UpstreamFailure;
  readonly sqlstate: string;
  readonly server: UpstreamServerError | undefined;
  /** Node's or OpenSSL's code for network and TLS failures: ECONNREFUSED, ERR_TLS_CERT_ALTNAME_INVALID... */
  readonly code: string | undefined;

  constructor(
    failure: UpstreamFailure,
    message: string,
    options: { server?: UpstreamServerError; code?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.failure = failure;
    this.server = options.server;
    this.code = options.code;
    this.sqlstate = options.server?.sqlstate ?? (failure === 'protocol' ? '08P01' : '08001');
  }
}

/** ErrorResponse fields by their one-letter codes (PostgreSQL protocol, "Error and Notice Message Fields"). */
export function readErrorFields(body: Buffer): UpstreamServerError {
  const fields = new Map<string, string>();
  let start = 0;
  while (start < body.length && body[start] !== 0) {
    const end = body.indexOf(0, start + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(body[start]!), body.toString('utf8', start + 1, end));
    start = end + 1;
  }
  const detail = fields.get('D');
  const hint = fields.get('H');
  return {
    severity: fields.get('V') ?? fields.get('S') ?? 'FATAL',
    sqlstate: fields.get('C') ?? '08P01',
    message: fields.get('M') ?? 'unknown error',
    ...(detail === undefined ? {} : { detail }),
    ...(hint === undefined ? {} : { hint }),
  };
}
