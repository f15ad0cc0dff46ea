/** Why the upstream could not be reached; `server` carries the server's own error code. */
export class MysqlUpstreamError extends Error {
  override readonly name = 'MysqlUpstreamError';
  readonly failure: 'server' | 'network' | 'timeout' | 'tls' | 'auth' | 'protocol';
  readonly serverCode: number | undefined;
  constructor(failure: MysqlUpstreamError['failure'], message: string, serverCode?: number) {
    super(message);
    this.failure = failure;
    this.serverCode = serverCode;
  }
}

/**
 * What a client is told when its session's upstream cannot be opened: the cause in words, without
 * the upstream's address or the proxy's credentials (those are in the proxy log).
 */
export function upstreamFailureForClient(error: unknown): string {
  return `Gatehouse cannot open a session on the database: ${failureCause(error)}; see the proxy log`;
}

function failureCause(error: unknown): string {
  if (!(error instanceof MysqlUpstreamError)) return 'an unexpected error';
  switch (error.failure) {
    case 'network':
      return `the database is not reachable (${/\b(E[A-Z]+)$/.exec(error.message)?.[1] ?? 'network error'})`;
    case 'timeout':
      return 'the database did not answer in time';
    case 'tls':
      return 'TLS to the database failed';
    case 'auth':
      return 'the database asks for an authentication method Gatehouse does not speak';
    case 'protocol':
      return "the database's handshake is not one Gatehouse understands";
    case 'server':
      switch (error.serverCode) {
        case 1045:
          return "the database refused the proxy's own login (error 1045): the proxy's upstream user or password is wrong";
        case 1044:
          return "the proxy's upstream user may not use the database (error 1044)";
        case 1049:
          return "the database the proxy's upstream names does not exist (error 1049)";
        default:
          return `the database refused the connection (error ${error.serverCode ?? 'unknown'})`;
      }
  }
}
