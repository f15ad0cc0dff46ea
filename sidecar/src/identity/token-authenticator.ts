import type { Logger } from 'pino';
import type { JwtVerificationConfig } from '../config/schema.ts';
import { AuthError, type Authenticator } from './identity.ts';
import { createTokenVerifier } from './token-verifier.ts';
import type { RemoteJwksOptions } from './verification-key.ts';

export interface TokenAuthenticatorOptions {
  readonly logger: Logger;
  readonly remoteJwks?: RemoteJwksOptions;
}

/** Gateway mode: each client sends a JWT (service-account or OIDC ID token) as its password. */
export async function createTokenAuthenticator(
  config: JwtVerificationConfig,
  options: TokenAuthenticatorOptions,
): Promise<Authenticator> {
  const verifier = await createTokenVerifier(config, {
    logger: options.logger,
    field: 'identity.token',
    ...(options.remoteJwks && { remoteJwks: options.remoteJwks }),
  });
  return {
    needsPassword: true,
    async authenticate({ password }) {
      // Tokens pasted into a password prompt often bring a newline along.
      const token = password?.trim() ?? '';
      if (token === '') throw new AuthError('a token is required as the password');
      return (await verifier.verify(token, 'token')).identity;
    },
    close() {},
  };
}
