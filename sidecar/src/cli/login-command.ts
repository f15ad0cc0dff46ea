import * as oidc from 'openid-client';
import { UserError } from '../errors.ts';
import { clientConfigPath, loadClientConfig } from '../login/client-config.ts';
import { codeFlow, DEFAULT_SCOPES, deviceFlow, discoverProvider } from '../login/oidc-flows.ts';
import { configDirectory, normalizeIssuer, type StoredLogin, TokenStore } from '../login/token-store.ts';
import { parseCliArgs } from './parse-cli-args.ts';

export const LOGIN_USAGE = `usage: gatehouse login [--issuer URL] [--client-id ID] [--device | --browser] [options]

Signs you in to your identity provider (OpenID Connect) so that \`gatehouse connect\` and
\`gatehouse tunnel\` can open databases as you. On a desktop it prints a URL to open (authorization
code with PKCE; the provider redirects to a listener on 127.0.0.1); on a machine with no display it
uses the device flow: open the URL on any device and enter the code shown. The tokens are kept in
$XDG_CONFIG_HOME/gatehouse/tokens (else ~/.config/gatehouse/tokens), one file per issuer, mode 0600,
and renewed with the refresh token when they near expiry. They are never printed.

  --issuer URL          the provider (https://; http:// only on loopback) (default: the client config's)
  --client-id ID        the public client registered there for Gatehouse (default: the client config's)
  --scopes LIST         space- or comma-separated (default: ${DEFAULT_SCOPES.join(' ')})
  --device              use the device flow (the default when there is no DISPLAY or WAYLAND_DISPLAY)
  --browser             use the authorization code flow even with no display
  --open                also start the desktop's browser on the URL (otherwise it is only printed)
  --timeout SECONDS     how long to wait for the browser's redirect (default 300)
  --client-config FILE  the client config (default: $GATEHOUSE_CLIENT_CONFIG, else client.yaml there)
  -h, --help            show this text

usage: gatehouse logout [--issuer URL]

Removes the cached tokens of one issuer (or of every issuer without --issuer), after asking the
provider to revoke the refresh token where it offers revocation.`;

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env: NodeJS.ProcessEnv;
}

export async function runLoginCommand(argv: string[], io: CliIo = process): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        issuer: { type: 'string' },
        'client-id': { type: 'string' },
        scopes: { type: 'string', multiple: true },
        device: { type: 'boolean' },
        browser: { type: 'boolean' },
        open: { type: 'boolean' },
        timeout: { type: 'string' },
        'client-config': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'login',
  );
  if (values.help) {
    io.stdout.write(`${LOGIN_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0)
    throw new UserError(`unexpected argument "${positionals[0]}" (see gatehouse login --help)`);
  if (values.device && values.browser) throw new UserError('choose one of --device and --browser');
  const config = loadClientConfig(
    clientConfigPath(values['client-config'], io.env),
    values['client-config'] !== undefined,
  );
  const issuer = values.issuer ?? config.issuer;
  const clientId = values['client-id'] ?? config.clientId;
  if (issuer === undefined) throw new UserError('login needs --issuer URL (or issuer in the client config)');
  if (clientId === undefined)
    throw new UserError('login needs --client-id ID (or clientId in the client config)');
  const scopes = values.scopes
    ? values.scopes.flatMap((s) => s.split(/[\s,]+/)).filter((s) => s !== '')
    : [...(config.scopes ?? DEFAULT_SCOPES)];
  if (!scopes.includes('openid')) scopes.unshift('openid');
  const timeoutSeconds = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
    throw new UserError(`--timeout must be a number of seconds, not "${values.timeout}"`);

  const settings = { issuer: normalizeIssuer(issuer), clientId, scopes };
  const provider = await discoverProvider(settings);
  const useDevice = values.device ?? (!values.browser && !hasDisplay(io.env));
  const login = useDevice
    ? await deviceFlow(provider, settings, {
        announce: (uri, code, complete) =>
          io.stderr.write(
            `To sign in, open ${uri} on any device and enter the code ${code}\n${complete ? `(or open ${complete})\n` : ''}Waiting for approval...\n`,
          ),
      })
    : await codeFlow(provider, settings, {
        announce: (url) =>
          io.stderr.write(
            `To sign in, open this URL in a browser:\n\n  ${url}\n\nWaiting for the sign-in...\n`,
          ),
        openBrowser: values.open === true,
        timeoutMs: timeoutSeconds * 1000,
      });
  const store = new TokenStore(configDirectory(io.env));
  store.write(login);
  io.stdout.write(`${describeLogin(login)}\n`);
  return 0;
}

export async function runLogoutCommand(argv: string[], io: CliIo = process): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { issuer: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    },
    'logout',
  );
  if (values.help) {
    io.stdout.write(`${LOGIN_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0)
    throw new UserError(`unexpected argument "${positionals[0]}" (see gatehouse logout --help)`);
  const store = new TokenStore(configDirectory(io.env));
  const logins =
    values.issuer === undefined ? store.list() : [store.read(values.issuer)].filter((l) => l !== undefined);
  if (logins.length === 0) {
    io.stdout.write(
      values.issuer === undefined
        ? 'not signed in anywhere\n'
        : `not signed in to ${normalizeIssuer(values.issuer)}\n`,
    );
    return 0;
  }
  for (const login of logins) {
    const revoked = await revoke(login);
    store.remove(login.issuer);
    io.stdout.write(`signed out of ${login.issuer}${revoked}\n`);
  }
  return 0;
}

/** Best effort: the local copy goes either way, and the provider may not offer revocation. */
async function revoke(login: StoredLogin): Promise<string> {
  if (login.refreshToken === undefined) return '';
  try {
    const config = await discoverProvider(login);
    if (!config.serverMetadata().revocation_endpoint)
      return ' (the provider offers no revocation; the refresh token lives until it expires)';
    await oidc.tokenRevocation(config, login.refreshToken, { token_type_hint: 'refresh_token' });
    return ' (refresh token revoked at the provider)';
  } catch (error) {
    return ` (could not revoke the refresh token at the provider: ${error instanceof Error ? error.message : String(error)})`;
  }
}

/** Who the tokens name, never the tokens. */
export function describeLogin(login: StoredLogin): string {
  const who = login.subject ?? 'an identity the token does not name';
  const groups = login.groups && login.groups.length > 0 ? ` (groups: ${login.groups.join(', ')})` : '';
  const until = new Date(login.expiresAt * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const renew = login.refreshToken
    ? '; renewed with the refresh token as needed'
    : '; no refresh token: sign in again then';
  return `signed in to ${login.issuer} as ${who}${groups}; token valid until ${until}${renew}`;
}

function hasDisplay(env: NodeJS.ProcessEnv): boolean {
  if (process.platform === 'darwin' || process.platform === 'win32') return true;
  return Boolean(env['DISPLAY'] || env['WAYLAND_DISPLAY']);
}
