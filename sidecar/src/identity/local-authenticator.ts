import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { UserError } from '../errors.ts';
import { AuthError, type Authenticator } from './identity.ts';

export interface LocalUsersConfig {
  readonly users: readonly {
    readonly name: string;
    readonly password: string;
    readonly groups?: readonly string[];
  }[];
}

/** Development mode: named users with passwords written in the config. */
export function createLocalAuthenticator(
  config: LocalUsersConfig,
  options: { logger: Logger },
): Authenticator {
  const users = new Map<string, { digest: Buffer; groups: readonly string[] }>();
  for (const [index, user] of config.users.entries()) {
    if (users.has(user.name))
      throw new UserError(`identity.local.users[${index}].name: "${user.name}" is listed twice`);
    users.set(user.name, { digest: sha256(user.password), groups: [...(user.groups ?? [])] });
  }
  // Unknown users are compared against a digest no password has, so they take as long as known ones.
  const nobody = randomBytes(32);
  options.logger.warn(
    { users: users.size },
    'identity.mode is local: users and passwords come from the config file, for development only; ' +
      'use identity.mode token or token-file anywhere else',
  );
  return {
    needsPassword: true,
    async authenticate({ user: name, password }) {
      const user = users.get(name);
      // Digests have a fixed length, so timingSafeEqual never reveals the password's length either.
      const matches = timingSafeEqual(sha256(password ?? ''), user?.digest ?? nobody);
      if (!user || !matches) throw new AuthError(`password authentication failed for user "${name}"`);
      return { subject: `local:${name}`, groups: user.groups, method: 'local' };
    },
    close() {},
  };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
