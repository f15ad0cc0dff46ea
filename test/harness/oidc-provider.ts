// A real, certified OpenID provider for the tests (node-oidc-provider), on 127.0.0.1 with static
// users and groups. It serves the authorization code flow (with PKCE), the device flow and refresh
// tokens; access tokens are JWTs for one audience and carry the user's groups, as an enterprise
// identity provider issues them. The login and consent pages are the harness's own plain HTML forms,
// so a test signs a user in over HTTP the way a browser would: no stub stands in for the provider.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type ClientMetadata, type Configuration, errors } from 'oidc-provider';
import { freePort } from './free-port.ts';

export interface OidcUser {
  /** The `sub` claim. */
  readonly id: string;
  readonly password: string;
  readonly email?: string;
  readonly groups?: readonly string[];
}

export type OidcGrantType =
  | 'authorization_code'
  | 'refresh_token'
  | 'urn:ietf:params:oauth:grant-type:device_code'
  | 'client_credentials';

export interface OidcClient {
  readonly clientId: string;
  /** Loopback URIs match on any port (RFC 8252 §7.3) for public clients. Default http://127.0.0.1/callback. */
  readonly redirectUris?: readonly string[];
  /** Default: authorization code, device code and refresh token. */
  readonly grantTypes?: readonly OidcGrantType[];
  /** A native app with no secret (the default unless clientSecret is given). */
  readonly public?: boolean;
  readonly clientSecret?: string;
}

export interface OidcProviderOptions {
  readonly users: readonly OidcUser[];
  readonly clients: readonly OidcClient[];
  /** The `aud` of every access token (a URI, as resource indicators require). Default urn:gatehouse:proxy. */
  readonly audience?: string;
  /** Access token lifetime; short values let tests see refresh. Default 300 s. */
  readonly accessTokenTtlSeconds?: number;
  /** Device code lifetime; short values let tests see expiry. Default 600 s. */
  readonly deviceCodeTtlSeconds?: number;
}

export interface SignInAs {
  readonly user: string;
  readonly password: string;
  /** What the user answers on the consent page. Default approve. */
  readonly consent?: 'approve' | 'deny';
}

export interface FlowOutcome {
  /** The last URL the browser reached. */
  readonly url: string;
  readonly status: number;
  readonly body: string;
}

export interface RunningOidcProvider {
  readonly issuer: string;
  readonly audience: string;
  /** Grant types the token endpoint has granted, in order: lets a test see a refresh happen. */
  readonly grants: readonly string[];
  /**
   * Opens an authorization URL as a browser would, signs in on the provider's login form, answers
   * the consent page, and follows the redirect back to the client (so a loopback listener gets the code).
   */
  completeCodeFlow(authorizationUrl: string, as: SignInAs): Promise<FlowOutcome>;
  /** Enters a device flow's user code on the provider's verification page, signs in and answers consent. */
  approveDevice(userCode: string, as: SignInAs): Promise<FlowOutcome>;
  stop(): Promise<void>;
}

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const DEFAULT_GRANTS: readonly OidcGrantType[] = ['authorization_code', DEVICE_CODE_GRANT, 'refresh_token'];

export async function startOidcProvider(options: OidcProviderOptions): Promise<RunningOidcProvider> {
  const audience = options.audience ?? 'urn:gatehouse:proxy';
  const users = new Map(options.users.map((u) => [u.id, u]));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'harness', alg: 'RS256', use: 'sig' };

  const configuration: Configuration = {
    clients: options.clients.map((c) => clientMetadata(c)),
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email'], groups: ['groups'] },
    scopes: ['openid', 'offline_access', 'email', 'groups'],
    async findAccount(_ctx, id) {
      const user = users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            ...(user.email !== undefined && { email: user.email }),
            groups: [...(user.groups ?? [])],
          };
        },
      };
    },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        // Plain pages around the provider's own forms (with their xsrf fields), as the login page is.
        userCodeInputSource: async (ctx, form, _out, error) => {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><title>Device sign-in</title>${error ? '<p id="error">The code is not valid</p>' : ''}${form}`;
        },
        userCodeConfirmSource: async (ctx, form, _client, _info, userCode) => {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><title>Confirm device</title><p>Code ${escapeHtml(userCode)}</p>${form}`;
        },
        successSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = '<!DOCTYPE html><title>Signed in</title><p id="success">Sign-in Success</p>';
        },
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Every token is for the proxy, whether or not the client names it as a resource.
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        async getResourceServerInfo(_ctx, indicator) {
          if (indicator !== audience) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
          return {
            scope: 'openid',
            audience,
            accessTokenTTL: options.accessTokenTtlSeconds ?? 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(_ctx, token) {
      const accountId = (token as { accountId?: string }).accountId;
      const user = accountId === undefined ? undefined : users.get(accountId);
      return user ? { groups: [...(user.groups ?? [])] } : undefined;
    },
    // Public CLI clients get a refresh token whenever they may use one, as the enterprise
    // providers configured for `gatehouse login` do; it outlives the browser session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 300,
      DeviceCode: options.deviceCodeTtlSeconds ?? 600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>error</title><pre id="error">${escapeHtml(JSON.stringify(out))}</pre>`;
    },
  };
  const provider = new Provider(issuer, configuration);
  const grants: string[] = [];
  provider.on('grant.success', (ctx) => {
    const grantType = (ctx as { oidc?: { params?: { grant_type?: unknown } } }).oidc?.params?.grant_type;
    if (typeof grantType === 'string') grants.push(grantType);
  });
  const providerHandler = provider.callback();

  const handleInteraction = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (req.method === 'GET') {
      sendHtml(res, details.prompt.name === 'login' ? loginPage(details.uid) : consentPage(details.uid));
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    if (path.endsWith('/login')) {
      const user = users.get(form.get('login') ?? '');
      if (!user || user.password !== form.get('password')) {
        sendHtml(res, loginPage(details.uid, 'Invalid user or password'), 401);
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: user.id } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (path.endsWith('/deny')) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user denied consent' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (path.endsWith('/approve')) {
      const accountId = details.session?.accountId;
      const clientId = details.params['client_id'];
      if (typeof accountId !== 'string' || typeof clientId !== 'string')
        throw new Error('no session to consent for');
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId });
      if (!grant) throw new Error('the interaction names a grant that does not exist');
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: details.grantId ? {} : { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    res.writeHead(404).end();
  };

  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      handleInteraction(req, res).catch((error: unknown) => {
        if (!res.headersSent)
          sendHtml(
            res,
            `<pre id="error">${escapeHtml(error instanceof Error ? error.message : String(error))}</pre>`,
            400,
          );
        else res.end();
      });
      return;
    }
    providerHandler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    issuer,
    audience,
    grants,
    completeCodeFlow: (url, as) => new FormBrowser(issuer).codeFlow(url, as),
    approveDevice: (userCode, as) => new FormBrowser(issuer).deviceFlow(userCode, as),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function clientMetadata(client: OidcClient): ClientMetadata {
  const isPublic = client.public ?? client.clientSecret === undefined;
  const grantTypes = [...(client.grantTypes ?? DEFAULT_GRANTS)];
  return {
    client_id: client.clientId,
    ...(isPublic
      ? { token_endpoint_auth_method: 'none', application_type: 'native' }
      : { client_secret: client.clientSecret ?? '', token_endpoint_auth_method: 'client_secret_basic' }),
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    redirect_uris: grantTypes.includes('authorization_code')
      ? [...(client.redirectUris ?? ['http://127.0.0.1/callback'])]
      : [],
  };
}

function loginPage(uid: string, error?: string): string {
  return `<!DOCTYPE html><title>Sign in</title>
${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<input name="login" autocomplete="username"><input name="password" type="password">
<button type="submit">Sign in</button></form>`;
}

function consentPage(uid: string): string {
  return `<!DOCTYPE html><title>Allow access</title>
<form method="post" action="/interaction/${uid}/approve"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${uid}/deny"><button type="submit">Deny</button></form>`;
}

function sendHtml(res: ServerResponse, html: string, status = 200): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface HtmlForm {
  readonly id: string | undefined;
  readonly action: string;
  readonly fields: Map<string, string>;
}

/**
 * What a person's browser does on the provider's pages, over plain HTTP: keeps cookies, follows
 * redirects, and submits the forms the pages serve (hidden fields, such as the device page's xsrf
 * token, included). Only forms and redirects; no scripts run on these pages.
 */
class FormBrowser {
  private readonly cookies = new Map<string, string>();
  private readonly issuer: string;

  constructor(issuer: string) {
    this.issuer = issuer;
  }

  async codeFlow(authorizationUrl: string, as: SignInAs): Promise<FlowOutcome> {
    const page = await this.request('GET', authorizationUrl);
    return this.signInAndConsent(page, as);
  }

  async deviceFlow(userCode: string, as: SignInAs): Promise<FlowOutcome> {
    const entry = await this.request('GET', `${this.issuer}/device`);
    const input = this.form(entry, 'op.deviceInputForm');
    input.fields.set('user_code', userCode);
    const confirm = await this.submit(entry, input);
    if (confirm.status !== 200 || !confirm.body.includes('op.deviceConfirmForm')) return confirm;
    const afterConfirm = await this.submit(confirm, this.form(confirm, 'op.deviceConfirmForm'));
    return this.signInAndConsent(afterConfirm, as);
  }

  private async signInAndConsent(start: FlowOutcome, as: SignInAs): Promise<FlowOutcome> {
    let page = start;
    for (let step = 0; step < 4; step++) {
      const login = this.formWithAction(page, '/login');
      if (login) {
        login.fields.set('login', as.user);
        login.fields.set('password', as.password);
        page = await this.submit(page, login);
        continue;
      }
      const answer = this.formWithAction(page, as.consent === 'deny' ? '/deny' : '/approve');
      if (answer) {
        page = await this.submit(page, answer);
        continue;
      }
      return page;
    }
    return page;
  }

  private formWithAction(page: FlowOutcome, suffix: string): HtmlForm | undefined {
    return parseForms(page.body).find((f) => f.action.endsWith(suffix));
  }

  private form(page: FlowOutcome, id: string): HtmlForm {
    const form = parseForms(page.body).find((f) => f.id === id);
    if (!form)
      throw new Error(`no form ${id} on ${page.url} (status ${page.status}): ${page.body.slice(0, 300)}`);
    return form;
  }

  private submit(page: FlowOutcome, form: HtmlForm): Promise<FlowOutcome> {
    const target = new URL(form.action || page.url, page.url).toString();
    return this.request('POST', target, new URLSearchParams([...form.fields]).toString());
  }

  private async request(method: 'GET' | 'POST', url: string, body?: string): Promise<FlowOutcome> {
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    for (let hop = 0; hop < 20; hop++) {
      const ownOrigin = new URL(current).origin === this.issuer;
      const headers: Record<string, string> = {};
      if (ownOrigin && this.cookies.size > 0)
        headers['cookie'] = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (currentBody !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(current, {
        method: currentMethod,
        headers,
        redirect: 'manual',
        ...(currentBody !== undefined && { body: currentBody }),
      });
      if (ownOrigin) this.keepCookies(response.headers.getSetCookie());
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.arrayBuffer();
        current = new URL(location, current).toString();
        // 303 and the 302 after a form post become GETs, as browsers do; 307/308 keep the method.
        if (response.status !== 307 && response.status !== 308) {
          currentMethod = 'GET';
          currentBody = undefined;
        }
        continue;
      }
      return { url: current, status: response.status, body: await response.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  private keepCookies(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [key = '', v = ''] = a.split('=').map((s) => s.trim());
        if (key.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (key.toLowerCase() === 'expires') return Date.parse(v) < Date.now();
        return false;
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** The forms of a page the harness or the provider wrote: attributes and inputs, nothing more. */
function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = match[1] ?? '';
    const fields = new Map<string, string>();
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const name = attribute(input[1] ?? '', 'name');
      if (name !== undefined) fields.set(name, attribute(input[1] ?? '', 'value') ?? '');
    }
    forms.push({ id: attribute(attributes, 'id'), action: attribute(attributes, 'action') ?? '', fields });
  }
  return forms;
}

function attribute(attributes: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(attributes);
  return match?.[1]
    ?.replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
}
