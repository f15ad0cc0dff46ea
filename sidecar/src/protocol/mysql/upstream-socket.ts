import net from 'node:net';
import tls from 'node:tls';
import { MysqlUpstreamError } from './upstream-error.ts';

/** How the proxy's own connection to the server is secured (upstream.tls). */
export interface UpstreamTls {
  readonly mode: 'disable' | 'require' | 'verify-full';
  readonly ca?: Buffer;
  readonly serverName?: string;
}

/** Opens the proxy's connection to the server; failures and the deadline become MysqlUpstreamErrors. */
export function openSocket(host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = host.startsWith('/') ? net.connect({ path: host }) : net.connect({ host, port });
    const fail = (error: Error) => {
      cleanup();
      socket.on('error', () => {});
      socket.destroy();
      reject(
        signal.aborted
          ? new MysqlUpstreamError('timeout', `no connection to ${host}:${port} in time`)
          : new MysqlUpstreamError(
              'network',
              `${host}:${port}: ${(error as NodeJS.ErrnoException).code ?? error.message}`,
            ),
      );
    };
    const onAbort = () => fail(new Error('timeout'));
    const cleanup = () => {
      socket.off('error', fail);
      signal.removeEventListener('abort', onAbort);
    };
    socket.once('connect', () => {
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', fail);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Upgrades the connection to TLS, verifying the server's certificate when the mode asks for it. */
export function startTls(
  socket: net.Socket,
  options: { readonly host: string; readonly tls: UpstreamTls },
  signal: AbortSignal,
): Promise<tls.TLSSocket> {
  const verify = options.tls.mode === 'verify-full';
  const name = options.tls.serverName ?? options.host;
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket,
      host: name,
      ...(net.isIP(name) ? {} : { servername: name }),
      ...(options.tls.ca ? { ca: options.tls.ca } : {}),
      rejectUnauthorized: verify,
    });
    const onAbort = () => secure.destroy(new Error('timeout'));
    signal.addEventListener('abort', onAbort, { once: true });
    secure.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      secure.off('error', onError);
      resolve(secure);
    });
    const onError = (error: Error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new MysqlUpstreamError('tls', `TLS to the database failed: ${error.message}`));
    };
    secure.once('error', onError);
  });
}

/** `promise`, or a timeout error once the login's deadline passes (a read that never ends must not hang the login). */
export function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new MysqlUpstreamError('timeout', 'login timed out'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new MysqlUpstreamError('timeout', 'login timed out'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
