import { UserError } from '../errors.ts';
import type { ClientConfig, DatabaseTarget } from './client-config.ts';
import type { TokenStore } from './token-store.ts';

/**
 * The identity provider whose token opens a database: --issuer, else the database's, else the
 * client config's, else the only one signed in to. Several and no hint is an error, not a guess.
 */
export function whichIssuer(
  flag: string | undefined,
  target: DatabaseTarget | undefined,
  config: ClientConfig,
  store: TokenStore,
): string {
  const named = flag ?? target?.issuer ?? config.issuer;
  if (named !== undefined) return named;
  const signedIn = store.list();
  if (signedIn.length === 1 && signedIn[0]) return signedIn[0].issuer;
  if (signedIn.length === 0)
    throw new UserError('not signed in: run gatehouse login --issuer URL --client-id ID');
  throw new UserError(
    `signed in to several identity providers (${signedIn.map((l) => l.issuer).join(', ')}): say which with --issuer`,
  );
}
