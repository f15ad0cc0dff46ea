import { ApiException } from '@kubernetes/client-node';

/** Codes of a TLS failure (OpenSSL's and Node's), to say "TLS" rather than repeat OpenSSL's words alone. */
const TLS_CODES =
  /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_(GET|VERIFY)_)/;

const NETWORK_WORDS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'timed out connecting',
  UND_ERR_SOCKET: 'connection closed',
};

/**
 * One line naming the Kubernetes API server and why a request to it failed: the network (ECONNREFUSED),
 * TLS (an unknown certificate authority), or the server's answer (401 rejected credentials, 403 a
 * missing permission, 404 a CRD that is not installed).
 */
export function describeApiFailure(server: string | undefined, error: unknown): string {
  const at = server
    ? `Kubernetes API server ${server}`
    : 'Kubernetes API server (no cluster in the kubeconfig)';
  if (error instanceof ApiException) {
    const said = serverMessage(error.body);
    switch (error.code) {
      case 401:
        return `${at}: 401 Unauthorized: the kubeconfig's credentials were refused (expired or wrong token or certificate?)`;
      case 403:
        return `${at}: 403 Forbidden${said ? `: ${said}` : ''}`;
      case 404:
        return `${at}: 404 Not Found${said ? `: ${said}` : ''} (are Gatehouse's CRDs installed?)`;
      default:
        return `${at}: HTTP ${error.code}${said ? `: ${said}` : ''}`;
    }
  }
  const cause = innermost(error);
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (code && TLS_CODES.test(code)) return `cannot reach the ${at}: TLS: ${message} (${code})`;
  if (code && NETWORK_WORDS[code]) return `cannot reach the ${at}: ${NETWORK_WORDS[code]} (${code})`;
  return `cannot reach the ${at}: ${code && !message.includes(code) ? `${message} (${code})` : message}`;
}

/** fetch wraps the socket's error as its cause ("fetch failed"); the cause says what happened. */
function innermost(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5; depth++) {
    const next = (current as { cause?: unknown } | undefined)?.cause;
    if (next === undefined || next === null) break;
    current = next;
  }
  return current;
}

/** The `message` of a Kubernetes Status body (a string of JSON, or already parsed). */
function serverMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return (value as string).trim().split('\n')[0] || undefined;
    }
  }
  const message = (value as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}
