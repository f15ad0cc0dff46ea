import type { Logger } from 'pino';
import type { IdentityConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import type { Authenticator } from './identity.ts';
import { createLocalAuthenticator } from './local-authenticator.ts';
import type { RemoteJwksOptions } from './verification-key.ts';

export interface AuthenticatorOptions {
  readonly logger: Logger;
  /** Fetching and caching of a remote key set (jwksUrl); the defaults suit production. */
  readonly remoteJwks?: RemoteJwksOptions;
  /** token-file mode: re-read the file this often even without a file event (default 60 s). */
  readonly tokenFileRefreshIntervalMs?: number;
}

/**
 * The authenticator for `identity.mode`. Key files and key sets are read here, so a broken
 * identity config stops the proxy at start (UserError) rather than at the first connection.
 */
export async function createAuthenticator(
  config: IdentityConfig,
  options: AuthenticatorOptions,
): Promise<Authenticator> {
  const logger = options.logger.child({ component: 'identity', mode: config.mode });
  const remote = options.remoteJwks && { remoteJwks: options.remoteJwks };
  switch (config.mode) {
    // The token modes' modules (and the JOSE library) load only when the mode needs them.
    case 'token': {
      if (!config.token) throw missingSection('token', config.mode);
      const { createTokenAuthenticator } = await import('./token-authenticator.ts');
      return createTokenAuthenticator(config.token, { logger, ...remote });
    }
    case 'token-file': {
      if (!config.tokenFile) throw missingSection('tokenFile', config.mode);
      const { createTokenFileAuthenticator } = await import('./token-file-authenticator.ts');
      return createTokenFileAuthenticator(config.tokenFile, {
        logger,
        ...remote,
        ...(options.tokenFileRefreshIntervalMs !== undefined && {
          refreshIntervalMs: options.tokenFileRefreshIntervalMs,
        }),
      });
    }
    case 'local':
      if (!config.local) throw missingSection('local', config.mode);
      return createLocalAuthenticator(config.local, { logger });
    default:
      throw new UserError(`identity.mode: "${String(config.mode)}" is not one of token, token-file, local`);
  }
}

function missingSection(key: string, mode: string): UserError {
  return new UserError(`identity.${key}: is required when identity.mode is ${mode}`);
}
