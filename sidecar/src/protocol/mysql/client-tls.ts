import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { withPrefix } from './prefixed-stream.ts';
import { ProtocolError } from './protocol-error.ts';

/**
 * The client's socket upgraded to TLS, when it asked for it in its handshake. `early` holds bytes it
 * sent behind its request (its ClientHello), already read off the plain socket.
 */
export function upgradeClientToTls(
  line: { readonly socket: Socket; readonly logger: Logger },
  secureContext: SecureContext,
  early: Buffer,
): Promise<Socket> {
  const socket = line.socket;
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(early.length > 0 ? withPrefix(socket, early) : socket, {
      isServer: true,
      secureContext,
    });
    const onError = (error: Error) => reject(new ProtocolError(`TLS handshake failed: ${error.message}`));
    secure.once('secure', () => {
      secure.off('error', onError);
      secure.on('error', (error) => line.logger.debug({ err: error.message }, 'client TLS error'));
      resolve(secure);
    });
    secure.once('error', onError);
  });
}
