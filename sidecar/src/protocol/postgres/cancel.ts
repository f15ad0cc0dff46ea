import type net from 'node:net';
import type { BackendKey } from './upstream.ts';
import { UpstreamError } from './upstream-error.ts';
import { discard, openUpstreamSocket, type UpstreamEndpoint } from './upstream-socket.ts';

export interface CancelTarget extends UpstreamEndpoint, BackendKey {
  /** Covers connecting, TLS and waiting for the server to close; 10 s when absent. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

const CANCEL_REQUEST_CODE = 80877102;

/**
 * Asks the server to cancel whatever the backend `processId` is running, over a connection of its
 * own. TLS is negotiated first unless the mode is `disable`: PostgreSQL reads a CancelRequest after
 * SSLRequest as it reads a startup packet, and a server that insists on TLS gets it. Resolves once
 * the server has closed the connection, which it does after acting on the request; the server never
 * says whether a backend matched, so neither can we.
 */
export async function sendCancel(target: CancelTarget): Promise<void> {
  const label = `cancel ${target.host}:${target.port} pid ${target.processId}`;
  const timeoutMs = target.timeoutMs ?? 10_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = target.signal ? AbortSignal.any([target.signal, timeout]) : timeout;
  let socket: net.Socket | undefined;
  try {
    socket = await openUpstreamSocket(target, signal, label);
    await deliver(socket, cancelRequest(target), signal, label);
  } catch (err) {
    if (timeout.aborted) {
      throw new UpstreamError('timeout', `${label}: not done within ${timeoutMs} ms`, { code: 'ETIMEDOUT' });
    }
    if (signal.aborted) throw new UpstreamError('aborted', `${label}: aborted`, { cause: signal.reason });
    throw err;
  } finally {
    if (socket) discard(socket);
  }
}

function cancelRequest(key: BackendKey): Buffer {
  const message = Buffer.alloc(12 + key.secretKey.length);
  message.writeInt32BE(message.length, 0);
  message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  message.writeInt32BE(key.processId, 8);
  key.secretKey.copy(message, 12);
  return message;
}

/** Writes the request and waits for the server to hang up; what it might send meanwhile is ignored. */
function deliver(socket: net.Socket, request: Buffer, signal: AbortSignal, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = false;
    const finish = (err?: unknown) => {
      socket.off('close', onClose);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onClose = () =>
      finish(sent ? undefined : new UpstreamError('network', `${label}: server closed the connection`));
    const onError = (err: NodeJS.ErrnoException) => {
      // Once the request is out, a reset is just the server hanging up without ceremony.
      if (!sent)
        finish(new UpstreamError('network', `${label}: ${err.message}`, { code: err.code, cause: err }));
    };
    const onAbort = () => finish(signal.reason);
    socket.on('close', onClose);
    socket.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.resume();
    socket.write(request, (err) => {
      if (!err) sent = true;
    });
  });
}
