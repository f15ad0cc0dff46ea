import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Authenticator } from '../identity/identity.ts';
import type { PolicySource } from '../policy/sources.ts';
import type { ApprovalBook } from './approval-book.ts';
import type { ShapeRegistry } from './learned-shapes.ts';

/**
 * The `/approvals` handler of the admin endpoint, or undefined where the proxy must not serve it:
 * - in token-file mode the proxy's identity is its pod's, and approvers are decided through the
 *   operator, not here;
 * - on an address other than loopback, since the admin endpoint speaks plain HTTP and approvers send
 *   passwords or tokens (reach a remote proxy's endpoint through an SSH or kubectl port-forward).
 * Loaded on demand, so a proxy that serves no approvals does not carry the HTTP framework.
 */
export async function approvalsHandler(
  adminHost: string,
  authenticator: Authenticator,
  book: ApprovalBook,
  logger: Logger,
  shapes?: ShapeRegistry,
  policy?: PolicySource,
): Promise<((request: IncomingMessage, response: ServerResponse) => void) | undefined> {
  if (!authenticator.needsPassword) return undefined;
  if (!isLoopback(adminHost)) {
    logger.warn(
      { admin: adminHost },
      'the approvals API is not served: admin.listen is not a loopback address, and approvers would send credentials over plain HTTP',
    );
    return undefined;
  }
  const [{ getRequestListener }, { approvalsApi }] = await Promise.all([
    import('@hono/node-server'),
    import('./approvals-api.ts'),
  ]);
  return getRequestListener(
    approvalsApi({
      book,
      authenticator,
      logger: logger.child({ component: 'approvals' }),
      ...(shapes && { shapes }),
      ...(policy && { policy }),
    }).fetch,
  );
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
