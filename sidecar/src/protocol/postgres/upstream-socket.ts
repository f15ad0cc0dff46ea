import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { UpstreamError } from './upstream-error.ts';

export interface UpstreamTls {
  /** `require` encrypts without checking the certificate; `verify-full` checks the chain and the host name. */
  readonly mode: 'disable' | 'require' | 'verify-full';
  /** Trusted roots for `verify-full`; the system's when absent. */
  readonly ca?: Buffer;
  /** The name the certificate must carry; `host` when absent. */
  readonly serverName?: string;
}

export interface UpstreamEndpoint {
  /** A host name or IP address, or (as in libpq) a directory holding a Unix socket when it starts with `/`. */
  readonly host: string;
  readonly port: number;
  readonly tls: UpstreamTls;
}

const SSL_ACCEPTED = 0x53; // 'S'
const SSL_REFUSED = 0x4e; // 'N'

/**
 * Opens a connection ready for the startup packet (or a CancelRequest): TCP, then SSLRequest and TLS
 * unless the mode is `disable`. Unix sockets never negotiate TLS, as in libpq. On failure the socket
 * is destroyed and an UpstreamError is thrown, or the signal's reason when it fired.
 */
export async function openUpstreamSocket(
  endpoint: UpstreamEndpoint,
  signal: AbortSignal,
  label: string,
): Promise<net.Socket> {
  const unix = endpoint.host.startsWith('/');
  const socket = unix
    ? net.connect({ path: `${endpoint.host}/.s.PGSQL.${endpoint.port}` })
    : net.connect({ host: endpoint.host, port: endpoint.port });
  try {
    await untilEvent(socket, 'connect', signal, 'network', label);
    socket.setNoDelay(true);
    if (unix || endpoint.tls.mode === 'disable') return socket;
    socket.write(serialize.requestSsl());
    const [answer] = (await untilEvent(socket, 'data', signal, 'network', label)) as [Buffer];
    if (answer[0] === SSL_REFUSED) {
      throw new UpstreamError(
        'tls',
        `${label}: server does not accept TLS, and sslmode is ${endpoint.tls.mode}`,
      );
    }
    if (answer[0] !== SSL_ACCEPTED) {
      // An ErrorResponse here comes from a server not yet authenticated: do not show it (CVE-2024-10977).
      throw new UpstreamError('protocol', `${label}: unexpected answer to SSLRequest`);
    }
    if (answer.length > 1) {
      // Bytes sent in the clear after 'S' would be read as if they had come over TLS (CVE-2021-23222).
      throw new UpstreamError('protocol', `${label}: server sent unencrypted data after accepting TLS`);
    }
    return await startTls(socket, endpoint, signal, label);
  } catch (err) {
    discard(socket);
    throw err;
  }
}

async function startTls(
  socket: net.Socket,
  endpoint: UpstreamEndpoint,
  signal: AbortSignal,
  label: string,
): Promise<tls.TLSSocket> {
  const verify = endpoint.tls.mode === 'verify-full';
  const expectedName = endpoint.tls.serverName ?? endpoint.host;
  const secure = tls.connect({
    socket,
    // Node checks the certificate against `host` when `servername` is absent, as it must be for IPs (RFC 6066).
    host: expectedName,
    ...(net.isIP(expectedName) ? {} : { servername: expectedName }),
    ...(endpoint.tls.ca ? { ca: endpoint.tls.ca } : {}),
    rejectUnauthorized: verify,
    ALPNProtocols: ['postgresql'],
  });
  try {
    await untilEvent(secure, 'secureConnect', signal, 'tls', label);
    return secure;
  } catch (err) {
    discard(secure);
    throw err;
  }
}

/**
 * Resolves with the event's arguments. Rejects on 'error' or an early 'close' with an UpstreamError
 * of the given kind, and with the signal's reason when it fires. Leaves no listener behind.
 */
function untilEvent(
  socket: net.Socket,
  event: string,
  signal: AbortSignal,
  failure: 'network' | 'tls',
  label: string,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onEvent = (...args: unknown[]) => {
      cleanup();
      resolve(args);
    };
    const onError = (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new UpstreamError(failure, `${label}: ${err.message}`, { code: err.code, cause: err }));
    };
    const onClose = () => {
      cleanup();
      reject(new UpstreamError(failure, `${label}: server closed the connection`));
    };
    const onAbort = () => {
      cleanup();
      reject(signal.reason);
    };
    const cleanup = () => {
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    socket.once(event, onEvent);
    socket.once('error', onError);
    socket.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Destroys a socket we give up on; a late error from it must not become an uncaught exception. */
export function discard(socket: net.Socket): void {
  socket.on('error', () => {});
  socket.destroy();
}
