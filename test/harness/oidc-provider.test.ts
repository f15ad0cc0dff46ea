import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './free-port.ts';
import { type RunningOidcProvider, startOidcProvider } from './oidc-provider.ts';

const CLIENT = 'gatehouse-cli';
let provider: RunningOidcProvider;

beforeAll(async () => {
  provider = await startOidcProvider({
    users: [
      { id: 'alice', password: 'alice-pw', email: 'alice@example.test', groups: ['analysts', 'eu'] },
      { id: 'bob', password: 'bob-pw' },
    ],
    clients: [{ clientId: CLIENT }],
    audience: 'urn:gatehouse:test',
  });
});

afterAll(async () => {
  await provider?.stop();
});

async function token(
  params: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${provider.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT, ...params }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function verifyAccessToken(accessToken: unknown) {
  expect(typeof accessToken).toBe('string');
  const keys = createRemoteJWKSet(new URL(`${provider.issuer}/jwks`));
  const { payload } = await jwtVerify(accessToken as string, keys, {
    issuer: provider.issuer,
    audience: 'urn:gatehouse:test',
  });
  return payload;
}

async function startDeviceFlow(): Promise<{ device_code: string; user_code: string }> {
  const response = await fetch(`${provider.issuer}/device/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: CLIENT, scope: 'openid email groups offline_access' }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { device_code: string; user_code: string };
}

describe('device flow', () => {
  it('issues a JWT access token for the audience, carrying the groups, and a refresh token that works', async () => {
    const { device_code, user_code } = await startDeviceFlow();
    const pending = await token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code });
    expect(pending.body['error']).toBe('authorization_pending');

    const outcome = await provider.approveDevice(user_code, { user: 'alice', password: 'alice-pw' });
    expect(outcome.body).toContain('Sign-in Success');

    const granted = await token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code });
    expect(granted.status).toBe(200);
    const claims = await verifyAccessToken(granted.body['access_token']);
    expect(claims.sub).toBe('alice');
    expect(claims['groups']).toEqual(['analysts', 'eu']);
    expect(typeof granted.body['refresh_token']).toBe('string');

    const refreshed = await token({
      grant_type: 'refresh_token',
      refresh_token: granted.body['refresh_token'] as string,
    });
    expect(refreshed.status).toBe(200);
    expect((await verifyAccessToken(refreshed.body['access_token'])).sub).toBe('alice');
    expect(provider.grants).toContain('refresh_token');
  });

  it('refuses a wrong password and grants nothing', async () => {
    const { device_code, user_code } = await startDeviceFlow();
    const outcome = await provider.approveDevice(user_code, { user: 'alice', password: 'wrong' });
    expect(outcome.status).toBe(401);
    expect(outcome.body).toContain('Invalid user or password');
    const still = await token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code });
    expect(still.body['error']).toBe('authorization_pending');
  });

  it('reports denied consent to the polling client as access_denied', async () => {
    const { device_code, user_code } = await startDeviceFlow();
    await provider.approveDevice(user_code, { user: 'bob', password: 'bob-pw', consent: 'deny' });
    const denied = await token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code });
    expect(denied.body['error']).toBe('access_denied');
  });
});

describe('authorization code flow with PKCE and a loopback redirect', () => {
  let callback: Server;
  let callbackPort: number;
  const received: URL[] = [];

  beforeAll(async () => {
    callbackPort = await freePort();
    callback = createServer((req, res) => {
      received.push(new URL(req.url ?? '/', `http://127.0.0.1:${callbackPort}`));
      res.end('you may close this window');
    });
    await new Promise<void>((resolve) => callback.listen(callbackPort, '127.0.0.1', resolve));
  });

  afterAll(() => new Promise<void>((resolve) => callback.close(() => resolve())));

  function authorizationUrl(verifier: string, state: string): string {
    const url = new URL(`${provider.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: CLIENT,
      response_type: 'code',
      scope: 'openid groups offline_access',
      redirect_uri: `http://127.0.0.1:${callbackPort}/callback`,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      state,
      prompt: 'consent',
    }).toString();
    return url.toString();
  }

  it('signs in on the login form and redirects the code to the loopback listener', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const outcome = await provider.completeCodeFlow(authorizationUrl(verifier, 'st-1'), {
      user: 'alice',
      password: 'alice-pw',
    });
    expect(outcome.body).toBe('you may close this window');
    const landed = received.at(-1);
    expect(landed?.searchParams.get('state')).toBe('st-1');
    const code = landed?.searchParams.get('code') ?? '';
    const granted = await token({
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: `http://127.0.0.1:${callbackPort}/callback`,
    });
    expect(granted.status).toBe(200);
    const claims = await verifyAccessToken(granted.body['access_token']);
    expect(claims.sub).toBe('alice');
    expect(claims['groups']).toEqual(['analysts', 'eu']);
  });

  it('redirects access_denied when the user denies consent', async () => {
    const verifier = randomBytes(32).toString('base64url');
    await provider.completeCodeFlow(authorizationUrl(verifier, 'st-2'), {
      user: 'bob',
      password: 'bob-pw',
      consent: 'deny',
    });
    const landed = received.at(-1);
    expect(landed?.searchParams.get('state')).toBe('st-2');
    expect(landed?.searchParams.get('error')).toBe('access_denied');
  });
});
