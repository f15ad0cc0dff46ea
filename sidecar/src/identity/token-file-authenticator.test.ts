import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { projectFile } from '../../../test/support/kubelet-volume.ts';
import { AuthError, type Authenticator, type Identity } from './identity.ts';
import { captureLogs } from './log-capture.ts';
import { createTestIssuer, nowSeconds, serviceAccountClaims, type TestIssuer } from './test-issuer.ts';
import { createTokenFileAuthenticator } from './token-file-authenticator.ts';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'gatehouse.dev';
const HOUR_MS = 3_600_000;

let root: string;
let cluster: TestIssuer;
let jwksFile: string;
const logs = captureLogs();
const opened: Authenticator[] = [];
const issued: string[] = [];
let directories = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gatehouse-token-file-'));
  cluster = await createTestIssuer('ES256', 'cluster-key');
  jwksFile = join(root, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [cluster.publicJwk] }));
});

afterEach(() => {
  for (const authenticator of opened.splice(0)) authenticator.close();
});

afterAll(async () => {
  const logged = logs.lines.join('\n');
  for (const token of issued) expect(logged).not.toContain(token.split('.')[1]);
  await rm(root, { recursive: true, force: true });
});

async function podToken(pod: string, overrides: JWTPayload = {}): Promise<string> {
  const claims = serviceAccountClaims({
    issuer: ISSUER,
    audience: [AUDIENCE],
    namespace: 'shop',
    name: 'orders',
    pod,
  });
  const token = await cluster.sign({ ...claims, ...overrides });
  issued.push(token);
  return token;
}

async function freshDirectory(): Promise<string> {
  const directory = join(root, `volume-${++directories}`);
  await mkdir(directory);
  return directory;
}

function projectToken(directory: string, token: string): Promise<void> {
  return projectFile(directory, 'token', token);
}

async function open(path: string, refreshIntervalMs = HOUR_MS): Promise<Authenticator> {
  const authenticator = await createTokenFileAuthenticator(
    { path, verify: { issuer: ISSUER, audience: AUDIENCE, jwksFile } },
    { logger: logs.logger, refreshIntervalMs },
  );
  opened.push(authenticator);
  return authenticator;
}

/** Polls until `check` passes: file events and timers land when they land, within `timeoutMs`. */
async function eventually<T>(
  attempt: () => Promise<T>,
  check: (value: T | AuthError) => boolean,
  timeoutMs = 3000,
) {
  const deadline = Date.now() + timeoutMs;
  let last: T | AuthError;
  do {
    last = await attempt().catch((error: unknown) => {
      if (error instanceof AuthError) return error;
      throw error;
    });
    if (check(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  } while (Date.now() < deadline);
  expect.fail(`condition not reached within ${timeoutMs} ms; last result: ${JSON.stringify(last)}`);
}

async function refusal(attempt: Promise<unknown>): Promise<AuthError> {
  const error = await attempt.then(
    () => expect.fail('the connection was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthError);
  return error as AuthError;
}

const podOf = (result: Identity | AuthError) => (result instanceof AuthError ? undefined : result.pod);

describe('token-file mode', () => {
  it("gives every connection the pod's identity and ignores the client's password", async () => {
    const directory = await freshDirectory();
    await projectToken(directory, await podToken('orders-1'));
    const auth = await open(join(directory, 'token'));
    expect(auth.needsPassword).toBe(false);
    for (const credentials of [{ user: 'app' }, { user: 'other', password: 'not-a-token' }]) {
      expect(await auth.authenticate(credentials)).toMatchObject({
        subject: 'system:serviceaccount:shop:orders',
        method: 'token-file',
        namespace: 'shop',
        serviceAccount: 'orders',
        pod: 'orders-1',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      });
    }
  });

  it("follows kubelet's atomic ..data symlink swap, rotation after rotation", async () => {
    const directory = await freshDirectory();
    await projectToken(directory, await podToken('rotation-1'));
    // An hour between periodic re-reads: only the directory watch can pick the new tokens up in time.
    const auth = await open(join(directory, 'token'));
    expect((await auth.authenticate({ user: 'app' })).pod).toBe('rotation-1');
    for (const pod of ['rotation-2', 'rotation-3']) {
      await projectToken(directory, await podToken(pod));
      await eventually(
        () => auth.authenticate({ user: 'app' }),
        (result) => podOf(result) === pod,
      );
    }
    expect(
      logs.records().filter((r) => r['msg'] === 'the pod token rotated' && r['pod'] === 'rotation-3'),
    ).toHaveLength(1);
  });

  it('fails closed on an expired token in the file, warns without the token, and recovers on rotation', async () => {
    const directory = await freshDirectory();
    const exp = nowSeconds() - 3600;
    await projectToken(directory, await podToken('stale', { iat: exp - 3600, nbf: exp - 3600, exp }));
    const path = join(directory, 'token');
    const auth = await open(path);
    const refused = await refusal(auth.authenticate({ user: 'app' }));
    expect(refused.sqlstate).toBe('28000');
    expect(refused.message).toBe(
      `the sidecar's service-account token is not usable: token expired at ${new Date(exp * 1000).toISOString().replace('.000Z', 'Z')}`,
    );
    const warning = logs.records().find((r) => r['tokenFile'] === path && r['level'] === 40);
    expect(warning).toMatchObject({
      msg: 'connections are refused: the pod token is not usable',
      reason: expect.stringMatching(/^token expired at/),
    });

    await projectToken(directory, await podToken('fresh'));
    await eventually(
      () => auth.authenticate({ user: 'app' }),
      (result) => podOf(result) === 'fresh',
    );
  });

  it('refuses a token signed by a key the issuer does not have', async () => {
    const directory = await freshDirectory();
    const impostor = await createTestIssuer('ES256', 'cluster-key');
    const forged = await impostor.sign(
      serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'orders' }),
    );
    issued.push(forged);
    await projectToken(directory, forged);
    const auth = await open(join(directory, 'token'));
    expect((await refusal(auth.authenticate({ user: 'app' }))).message).toBe(
      "the sidecar's service-account token is not usable: token signature invalid",
    );
  });

  it('refuses until the token file appears, then accepts', async () => {
    const directory = await freshDirectory();
    const path = join(directory, 'token');
    const auth = await open(path);
    const refused = await refusal(auth.authenticate({ user: 'app' }));
    expect(refused.message).toBe(
      `the sidecar's service-account token is not usable: ${path} does not exist; check the pod's projected service-account token volume`,
    );
    await projectToken(directory, await podToken('late'));
    await eventually(
      () => auth.authenticate({ user: 'app' }),
      (result) => podOf(result) === 'late',
    );
  });

  it('re-reads periodically, even when the directory did not exist at start', async () => {
    const directory = join(root, 'not-mounted-yet');
    const auth = await open(join(directory, 'token'), 100);
    await refusal(auth.authenticate({ user: 'app' }));
    await mkdir(directory);
    await projectToken(directory, await podToken('mounted-late'));
    await eventually(
      () => auth.authenticate({ user: 'app' }),
      (result) => podOf(result) === 'mounted-late',
    );
  });

  it('re-reads a token in the last 10% of its life on the next connection, without any file event', async () => {
    // The path is a symlink into a directory nobody watches, so changing the target raises no event.
    const hidden = await freshDirectory();
    const visible = await freshDirectory();
    const now = nowSeconds();
    const ageing = await podToken('ageing-1', { iat: now - 3300, nbf: now - 3300, exp: now + 300 });
    const young = await podToken('young-1');
    await writeFile(join(hidden, 'ageing'), ageing);
    await writeFile(join(hidden, 'young'), young);
    await symlink(join(hidden, 'ageing'), join(visible, 'ageing'));
    await symlink(join(hidden, 'young'), join(visible, 'young'));
    const ageingAuth = await open(join(visible, 'ageing'));
    const youngAuth = await open(join(visible, 'young'));

    await writeFile(join(hidden, 'ageing'), await podToken('ageing-2'));
    await writeFile(join(hidden, 'young'), await podToken('young-2'));
    // Re-reads are throttled to one a second, so a burst of connections costs one read.
    expect((await ageingAuth.authenticate({ user: 'app' })).pod).toBe('ageing-1');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await ageingAuth.authenticate({ user: 'app' })).pod).toBe('ageing-2');
    expect((await youngAuth.authenticate({ user: 'app' })).pod).toBe('young-1');
  });

  it('refuses a cached token once it expires, though the file never changed', async () => {
    const directory = await freshDirectory();
    const now = nowSeconds();
    await projectToken(
      directory,
      await podToken('short-lived', { iat: now - 60, nbf: now - 60, exp: now + 2 }),
    );
    const auth = await createTokenFileAuthenticator(
      {
        path: join(directory, 'token'),
        verify: { issuer: ISSUER, audience: AUDIENCE, jwksFile, clockToleranceSeconds: 0 },
      },
      { logger: logs.logger, refreshIntervalMs: HOUR_MS },
    );
    opened.push(auth);
    expect((await auth.authenticate({ user: 'app' })).pod).toBe('short-lived');
    const refused = await eventually(
      () => auth.authenticate({ user: 'app' }),
      (result) => result instanceof AuthError,
      4000,
    );
    expect((refused as AuthError).message).toMatch(
      /^the sidecar's service-account token is not usable: token expired at /,
    );
  });
});
