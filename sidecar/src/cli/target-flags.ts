import { UserError } from '../errors.ts';
import {
  type ClientConfig,
  clientConfigPath,
  type DatabaseTarget,
  loadClientConfig,
  resolveTarget,
} from '../login/client-config.ts';
import { FreshToken } from '../login/fresh-token.ts';
import { configDirectory, TokenStore } from '../login/token-store.ts';
import { whichIssuer } from '../login/which-issuer.ts';

/** The flags `connect` and `tunnel` share: where the database is, and whose token opens it. */
export const TARGET_OPTIONS = {
  issuer: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  protocol: { type: 'string' },
  user: { type: 'string' },
  dbname: { type: 'string' },
  tls: { type: 'string' },
  ca: { type: 'string' },
  'client-config': { type: 'string' },
} as const;

/** `portFlag` is --port for connect; tunnel keeps --port for its own listener and says --proxy-port. */
export const targetUsage = (
  portFlag: string,
): string => `  --issuer URL          the identity provider whose token to use (default: the database's, the
                        client config's, or the only one you are signed in to)
  --host HOST           the Gatehouse proxy (overrides the client config's)
  ${`${portFlag} N`.padEnd(21)} its port (default 5432, or 3306 for mysql)
  --protocol P          postgres or mysql (default postgres)
  --user NAME           the user name to send (default: the database's, else your token's subject)
  --dbname NAME         the database (default: the database's, else DATABASE)
  --tls MODE            disable, require or verify-full (default verify-full)
  --ca FILE             the CA the proxy's certificate is checked against (verify-full)
  --client-config FILE  the client config (default: $GATEHOUSE_CLIENT_CONFIG, else
                        ~/.config/gatehouse/client.yaml); see docs/people.md`;

export interface ResolvedTarget {
  readonly target: DatabaseTarget;
  readonly token: FreshToken;
  readonly config: ClientConfig;
}

type TargetValues = { readonly [K in keyof typeof TARGET_OPTIONS]?: string | undefined };

export function resolveTargetFlags(
  name: string | undefined,
  values: TargetValues,
  env: NodeJS.ProcessEnv,
): ResolvedTarget {
  if (name === undefined && values.host === undefined)
    throw new UserError('name a DATABASE from the client config, or give --host, --port and --dbname');
  const config = loadClientConfig(
    clientConfigPath(values['client-config'], env),
    values['client-config'] !== undefined,
  );
  const target = resolveTarget(name, values, config);
  const store = new TokenStore(configDirectory(env));
  return { target, config, token: new FreshToken(store, whichIssuer(values.issuer, target, config, store)) };
}
