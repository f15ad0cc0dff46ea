import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, type JWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JwtVerificationConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import { AuthError, type Authenticator } from './identity.ts';
import { captureLogs } from './log-capture.ts';
import {
  createTestIssuer,
  nowSeconds,
  serviceAccountClaims,
  type TestIssuer,
  unsignedToken,
} from './test-issuer.ts';
import { createTokenAuthenticator } from './token-authenticator.ts';
import type { RemoteJwksOptions } from './verification-key.ts';

const K8S_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const OIDC_ISSUER = 'https://login.example.test/realms/staff';
const AUDIENCE = 'gatehouse.dev';

let dir: string;
let cluster: TestIssuer;
let oidc: TestIssuer;
let jwksFile: string;
let rsaPemFile: string;
let ecPemFile: string;
const logs = captureLogs();
const opened: Authenticator[] = [];
/** Every token the tests hand out; none may show up in a log line or an error message. */
const issued: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-token-'));
  cluster = await createTestIssuer('RS256', 'cluster-key-1');
  oidc = await createTestIssuer('ES256', 'oidc-key-1');
  jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [cluster.publicJwk, oidc.publicJwk] }));
  rsaPemFile = join(dir, 'cluster.pem');
  await writeFile(rsaPemFile, cluster.publicPem);
  ecPemFile = join(dir, 'oidc.pem');
  await writeFile(ecPemFile, oidc.publicPem);
});

afterEach(() => {
  for (const authenticator of opened.splice(0)) authenticator.close();
});

afterAll(async () => {
  const logged = logs.lines.join('\n');
  for (const token of issued) expect(logged).not.toContain(token.split('.')[1]);
  await rm(dir, { recursive: true, force: true });
});

async function authenticator(
  config: Partial<JwtVerificationConfig> = {},
  remoteJwks?: RemoteJwksOptions,
): Promise<Authenticator> {
  const created = await createTokenAuthenticator(
    {
      issuer: K8S_ISSUER,
      audience: AUDIENCE,
      ...(config.jwksUrl || config.publicKeyFile ? {} : { jwksFile }),
      ...config,
    },
    { logger: logs.logger, ...(remoteJwks && { remoteJwks }) },
  );
  opened.push(created);
  return created;
}

async function sign(issuer: TestIssuer, claims: JWTPayload, header?: { kid?: string }): Promise<string> {
  const token = await issuer.sign(claims, header);
  issued.push(token);
  return token;
}

function podToken(overrides: JWTPayload = {}): Promise<string> {
  const claims = serviceAccountClaims({
    issuer: K8S_ISSUER,
    audience: [AUDIENCE],
    namespace: 'shop',
    name: 'orders',
    pod: 'orders-7d9f8-x2x4q',
  });
  return sign(cluster, { ...claims, ...overrides });
}

function staffToken(overrides: JWTPayload = {}): Promise<string> {
  const iat = nowSeconds();
  return sign(oidc, {
    iss: OIDC_ISSUER,
    aud: AUDIENCE,
    sub: 'ada@example.test',
    groups: ['dba', 'oncall'],
    iat,
    exp: iat + 600,
    ...overrides,
  });
}

async function refusal(attempt: Promise<unknown>, token?: string): Promise<AuthError> {
  const error = await attempt.then(
    () => expect.fail('the token was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthError);
  const authError = error as AuthError;
  if (token) {
    for (const part of token.split('.').filter((p) => p.length > 8))
      expect(authError.message).not.toContain(part);
  }
  return authError;
}

function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

describe('token mode, keys from a JWKS file', () => {
  it('turns a service-account token into the pod identity Kubernetes would give it', async () => {
    const token = await podToken();
    const identity = await (await authenticator()).authenticate({ user: 'app', password: token });
    expect(identity).toEqual({
      subject: 'system:serviceaccount:shop:orders',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      method: 'token',
      issuer: K8S_ISSUER,
      namespace: 'shop',
      serviceAccount: 'orders',
      pod: 'orders-7d9f8-x2x4q',
      expiresAt: expect.any(Number),
    });
    expect(identity.expiresAt).toBeGreaterThan(nowSeconds());
  });

  it('asks for needsPassword and accepts a token pasted with a trailing newline', async () => {
    const auth = await authenticator();
    expect(auth.needsPassword).toBe(true);
    const identity = await auth.authenticate({ user: 'app', password: ` ${await podToken()}\n` });
    expect(identity.subject).toBe('system:serviceaccount:shop:orders');
  });

  it('reads an OIDC user and groups, from a list or a single string', async () => {
    const auth = await authenticator({ issuer: OIDC_ISSUER });
    const listed = await auth.authenticate({ user: 'ada', password: await staffToken() });
    expect(listed).toMatchObject({
      subject: 'ada@example.test',
      groups: ['dba', 'oncall'],
      issuer: OIDC_ISSUER,
    });
    expect(listed.namespace).toBeUndefined();
    const single = await auth.authenticate({ user: 'ada', password: await staffToken({ groups: 'dba' }) });
    expect(single.groups).toEqual(['dba']);
    const none = await auth.authenticate({ user: 'ada', password: await staffToken({ groups: undefined }) });
    expect(none.groups).toEqual([]);
  });

  it('takes subject and groups from configured claims', async () => {
    const auth = await authenticator({ issuer: OIDC_ISSUER, subjectClaim: 'email', groupsClaim: 'roles' });
    const token = await staffToken({ sub: '0b5e-11f0', email: 'ada@example.test', roles: ['analyst'] });
    expect(await auth.authenticate({ user: 'ada', password: token })).toMatchObject({
      subject: 'ada@example.test',
      groups: ['analyst'],
    });
    const refused = await refusal(auth.authenticate({ user: 'ada', password: await staffToken() }));
    expect(refused.message).toBe('token has no "email" claim to name its subject');
  });

  it('accepts any one of several configured audiences', async () => {
    const auth = await authenticator({ issuer: OIDC_ISSUER, audience: ['psql', AUDIENCE] });
    await expect(auth.authenticate({ user: 'ada', password: await staffToken() })).resolves.toBeDefined();
    const token = await staffToken({ aud: ['grafana'] });
    const refused = await refusal(auth.authenticate({ user: 'ada', password: token }), token);
    expect(refused.message).toBe('token audience includes none of psql, gatehouse.dev');
  });

  it('refuses an expired token and says when it expired', async () => {
    const exp = nowSeconds() - 120;
    const token = await podToken({ iat: exp - 3600, nbf: exp - 3600, exp });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe(`token expired at ${iso(exp)}`);
    expect(refused.sqlstate).toBe('28P01');
  });

  it('allows the configured clock skew, and no more', async () => {
    const token = await podToken({ exp: nowSeconds() - 10 });
    await expect(
      (await authenticator()).authenticate({ user: 'app', password: token }),
    ).resolves.toBeDefined();
    const strict = await authenticator({ clockToleranceSeconds: 0 });
    expect((await refusal(strict.authenticate({ user: 'app', password: token }))).message).toMatch(
      /^token expired at/,
    );
  });

  it('refuses a token that is not valid yet', async () => {
    const nbf = nowSeconds() + 600;
    const token = await podToken({ nbf, exp: nbf + 3600 });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe(`token is not valid before ${iso(nbf)}`);
  });

  it('refuses a token from another issuer', async () => {
    const token = await podToken({ iss: 'https://evil.example.test' });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe(`token issuer "https://evil.example.test" is not ${K8S_ISSUER}`);
  });

  it('refuses a token for another audience', async () => {
    const token = await podToken({ aud: ['https://kubernetes.default.svc'] });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe('token audience does not include gatehouse.dev');
  });

  it('refuses a token without an expiry', async () => {
    const token = await podToken({ exp: undefined });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe('token has no "exp" claim');
  });

  it('refuses a token signed by another key that claims the same kid', async () => {
    const impostor = await createTestIssuer('RS256', cluster.kid);
    const token = await sign(
      impostor,
      serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'orders' }),
    );
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe('token signature invalid');
  });

  it('refuses a token whose kid the key set does not have', async () => {
    const token = await podToken();
    const other = await sign(
      cluster,
      serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'orders' }),
      {
        kid: 'retired-key',
      },
    );
    expect(token).not.toBe(other);
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: other }),
      other,
    );
    expect(refused.message).toBe(
      `token signature invalid: the key set in ${jwksFile} has no key with kid "retired-key" for "RS256"`,
    );
  });

  it('tries each key of the set for a token without kid, and accepts only a real signature', async () => {
    const second = await createTestIssuer('RS256', 'unused');
    const stranger = await createTestIssuer('RS256', 'unused');
    const withoutKid = (jwk: JWK) => ({ ...jwk, kid: undefined });
    const anonymousFile = join(dir, 'anonymous.json');
    await writeFile(
      anonymousFile,
      JSON.stringify({ keys: [withoutKid(cluster.publicJwk), withoutKid(second.publicJwk)] }),
    );
    const auth = await authenticator({ jwksFile: anonymousFile });
    const claims = serviceAccountClaims({
      issuer: K8S_ISSUER,
      audience: AUDIENCE,
      namespace: 'shop',
      name: 'orders',
    });
    for (const signer of [cluster, second]) {
      const token = await sign(signer, claims, { kid: undefined });
      expect((await auth.authenticate({ user: 'app', password: token })).serviceAccount).toBe('orders');
    }
    const forged = await sign(stranger, claims, { kid: undefined });
    expect((await refusal(auth.authenticate({ user: 'app', password: forged }), forged)).message).toBe(
      'token signature invalid',
    );
  });

  it('refuses an unsigned token (alg none)', async () => {
    const token = unsignedToken(
      serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'orders' }),
    );
    issued.push(token);
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toBe('token is unsigned (alg "none"); a signed token is required');
  });

  it('refuses HS256 tokens forged with the public key as the HMAC secret', async () => {
    const claims = serviceAccountClaims({
      issuer: K8S_ISSUER,
      audience: AUDIENCE,
      namespace: 'kube-system',
      name: 'admin',
    });
    const withJwk = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: cluster.kid })
      .sign(new TextEncoder().encode(JSON.stringify(cluster.publicJwk)));
    const withPem = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(cluster.publicPem));
    issued.push(withJwk, withPem);
    const fromSet = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: withJwk }),
      withJwk,
    );
    expect(fromSet.message).toMatch(/^token algorithm "HS256" is not accepted \(accepted: RS256, .*ES256/);
    const fromPem = await authenticator({ publicKeyFile: rsaPemFile });
    expect(
      (await refusal(fromPem.authenticate({ user: 'app', password: withPem }), withPem)).message,
    ).toMatch(
      /^token algorithm "HS256" is not accepted \(accepted: RS256, RS384, RS512, PS256, PS384, PS512\)$/,
    );
  });

  it('says "password is not a JWT" for anything that is not one', async () => {
    const auth = await authenticator();
    for (const garbage of [
      'hunter2',
      'a.b.c',
      'e30.e30',
      '....',
      `${'x'.repeat(70_000)}.e30.x`,
      'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln',
    ]) {
      const refused = await refusal(auth.authenticate({ user: 'app', password: garbage }));
      expect(refused.message, garbage.slice(0, 40)).toMatch(
        /^password is not a JWT$|^token claims are not a JSON object$|^token signature invalid/,
      );
    }
    expect((await refusal(auth.authenticate({ user: 'app', password: 'hunter2' }))).message).toBe(
      'password is not a JWT',
    );
  });

  it('asks for a token when the password is empty', async () => {
    const auth = await authenticator();
    for (const password of ['', '  \n', undefined]) {
      const refused = await refusal(
        auth.authenticate({ user: 'app', ...(password !== undefined && { password }) }),
      );
      expect(refused.message).toBe('a token is required as the password');
      expect(refused.sqlstate).toBe('28P01');
    }
  });

  it('refuses a service-account subject that contradicts its kubernetes.io claim', async () => {
    const token = await podToken({ sub: 'system:serviceaccount:kube-system:admin' });
    const refused = await refusal(
      (await authenticator()).authenticate({ user: 'app', password: token }),
      token,
    );
    expect(refused.message).toMatch(/^token subject does not match/);
  });
});

describe('token mode, a PEM public key file', () => {
  it('verifies RS256 with an RSA key and refuses other key types', async () => {
    const auth = await authenticator({ publicKeyFile: rsaPemFile });
    expect((await auth.authenticate({ user: 'app', password: await podToken() })).serviceAccount).toBe(
      'orders',
    );
    const ecToken = await sign(
      oidc,
      serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'orders' }),
    );
    expect((await refusal(auth.authenticate({ user: 'app', password: ecToken }), ecToken)).message).toMatch(
      /^token algorithm "ES256" is not accepted/,
    );
  });

  it('verifies ES256 with an EC P-256 key', async () => {
    const auth = await authenticator({ issuer: OIDC_ISSUER, publicKeyFile: ecPemFile });
    expect((await auth.authenticate({ user: 'ada', password: await staffToken() })).subject).toBe(
      'ada@example.test',
    );
    const forged = await sign(await createTestIssuer('ES256', oidc.kid), {
      iss: OIDC_ISSUER,
      aud: AUDIENCE,
      sub: 'root',
      exp: nowSeconds() + 60,
    });
    expect((await refusal(auth.authenticate({ user: 'ada', password: forged }), forged)).message).toBe(
      'token signature invalid',
    );
  });

  it('stops at start when the key and the algorithms disagree, or the file is wrong', async () => {
    await expect(authenticator({ publicKeyFile: rsaPemFile, algorithms: ['ES256'] })).rejects.toThrow(
      /identity\.token\.algorithms: the key in .* is an RSA key, which signs with RS256/,
    );
    await expect(authenticator({ publicKeyFile: join(dir, 'missing.pem') })).rejects.toThrow(
      /identity\.token\.publicKeyFile: cannot read .*missing\.pem \(ENOENT\)/,
    );
    await expect(authenticator({ publicKeyFile: jwksFile })).rejects.toThrow(/is not a PEM public key/);
  });
});

describe('token mode, symmetric keys only when configured', () => {
  it('accepts HS256 from an "oct" key in a JWKS file when algorithms lists it, and not by default', async () => {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const sharedFile = join(dir, 'shared.json');
    const octKey: JWK = { kty: 'oct', k: base64url.encode(secret), kid: 'shared', alg: 'HS256' };
    await writeFile(sharedFile, JSON.stringify({ keys: [octKey, cluster.publicJwk] }));
    const token = await new SignJWT(
      serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'dev', name: 'ci' }),
    )
      .setProtectedHeader({ alg: 'HS256', kid: 'shared' })
      .sign(secret);
    issued.push(token);
    const configured = await authenticator({ jwksFile: sharedFile, algorithms: ['HS256', 'RS256'] });
    expect((await configured.authenticate({ user: 'ci', password: token })).subject).toBe(
      'system:serviceaccount:dev:ci',
    );
    expect((await configured.authenticate({ user: 'app', password: await podToken() })).namespace).toBe(
      'shop',
    );
    const byDefault = await authenticator({ jwksFile: sharedFile });
    expect((await refusal(byDefault.authenticate({ user: 'ci', password: token }), token)).message).toMatch(
      /^token algorithm "HS256" is not accepted/,
    );
  });

  it('refuses impossible algorithm settings at start', async () => {
    await expect(authenticator({ algorithms: ['none'] })).rejects.toThrow(/"none" is never accepted/);
    await expect(authenticator({ algorithms: ['RS1'] })).rejects.toThrow(/RS1 is not supported/);
    await expect(authenticator({ publicKeyFile: rsaPemFile, algorithms: ['HS256'] })).rejects.toThrow(
      /HS256 needs a shared secret, which only a jwksFile can hold/,
    );
    await expect(authenticator({ algorithms: ['HS256'] })).rejects.toThrow(/holds no "oct" key/);
    await expect(authenticator({ algorithms: ['HS256'] })).rejects.toBeInstanceOf(UserError);
  });
});

describe('token mode, a remote JWKS over HTTP', () => {
  let server: Server;
  let url: string;
  let served: JWK[] = [];
  let fetches = 0;
  let status = 200;

  beforeAll(async () => {
    server = createServer((request, response) => {
      fetches++;
      if (request.url !== '/openid/v1/jwks') {
        response.writeHead(404).end();
        return;
      }
      response
        .writeHead(status, { 'content-type': 'application/jwk-set+json' })
        .end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/openid/v1/jwks`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('follows a key rotation: a new kid makes it fetch the set again', async () => {
    status = 200;
    served = [cluster.publicJwk];
    const auth = await authenticator({ jwksUrl: url }, { cooldownMs: 0 });
    expect((await auth.authenticate({ user: 'app', password: await podToken() })).pod).toBe(
      'orders-7d9f8-x2x4q',
    );

    const next = await createTestIssuer('RS256', 'cluster-key-2');
    const rotated = await sign(
      next,
      serviceAccountClaims({
        issuer: K8S_ISSUER,
        audience: AUDIENCE,
        namespace: 'shop',
        name: 'orders',
        pod: 'orders-new',
      }),
    );
    const beforeRotation = await refusal(auth.authenticate({ user: 'app', password: rotated }), rotated);
    expect(beforeRotation.message).toBe(
      `token signature invalid: the key set at ${url} has no key with kid "cluster-key-2" for "RS256"`,
    );

    served = [cluster.publicJwk, next.publicJwk];
    const fetchesBefore = fetches;
    expect((await auth.authenticate({ user: 'app', password: rotated })).pod).toBe('orders-new');
    expect(fetches).toBe(fetchesBefore + 1);
    // Both keys are now cached: neither token costs another fetch.
    await auth.authenticate({ user: 'app', password: await podToken() });
    await auth.authenticate({ user: 'app', password: rotated });
    expect(fetches).toBe(fetchesBefore + 1);
  });

  it('does not refetch for unknown kids during the cooldown, so junk tokens cannot flood the issuer', async () => {
    status = 200;
    served = [cluster.publicJwk];
    const auth = await authenticator({ jwksUrl: url });
    await auth.authenticate({ user: 'app', password: await podToken() });
    const fetchesBefore = fetches;
    for (let i = 0; i < 5; i++) {
      const junk = await sign(
        cluster,
        serviceAccountClaims({ issuer: K8S_ISSUER, audience: AUDIENCE, namespace: 'a', name: 'b' }),
        { kid: `junk-${i}` },
      );
      await refusal(auth.authenticate({ user: 'app', password: junk }), junk);
    }
    expect(fetches).toBe(fetchesBefore);
  });

  it('refuses with 28000 and a reason when the key set cannot be fetched, and warns once', async () => {
    served = [cluster.publicJwk];
    status = 503;
    const auth = await authenticator({ jwksUrl: url }, { cooldownMs: 0 });
    const warningsBefore = logs
      .records()
      .filter((r) => r['msg'] === 'tokens cannot be verified until the key source answers').length;
    for (let i = 0; i < 3; i++) {
      const token = await podToken();
      const refused = await refusal(auth.authenticate({ user: 'app', password: token }), token);
      expect(refused.sqlstate).toBe('28000');
      expect(refused.message).toBe(
        `cannot verify the token now: cannot fetch the key set at ${url}: Expected 200 OK from the JSON Web Key Set HTTP response`,
      );
    }
    const warnings = logs
      .records()
      .filter((r) => r['msg'] === 'tokens cannot be verified until the key source answers');
    expect(warnings.length - warningsBefore).toBe(1);
    status = 200;
    expect((await auth.authenticate({ user: 'app', password: await podToken() })).namespace).toBe('shop');
  });

  it('names the socket error when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const auth = await authenticator({ jwksUrl: `http://127.0.0.1:${port}/keys` });
    const refused = await refusal(auth.authenticate({ user: 'app', password: await podToken() }));
    expect(refused.message).toMatch(
      /^cannot verify the token now: cannot fetch the key set at .*: fetch failed \(ECONNREFUSED\)$/,
    );
  });

  it('insists on https except on loopback', async () => {
    await expect(authenticator({ jwksUrl: 'http://keys.example.test/jwks' })).rejects.toThrow(
      /must be an https:\/\/ URL/,
    );
    await expect(authenticator({ jwksUrl: 'not a url' })).rejects.toThrow(/is not a URL/);
  });
});
