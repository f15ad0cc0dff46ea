import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IdentityConfig } from '../config/schema.ts';
import { UserError } from '../errors.ts';
import { createAuthenticator } from './create-authenticator.ts';
import { captureLogs } from './log-capture.ts';
import { createTestIssuer, serviceAccountClaims, type TestIssuer } from './test-issuer.ts';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
let dir: string;
let issuer: TestIssuer;
let verify: { issuer: string; audience: string; publicKeyFile: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-create-'));
  issuer = await createTestIssuer('ES256', 'k1');
  verify = { issuer: ISSUER, audience: 'gatehouse.dev', publicKeyFile: join(dir, 'key.pem') };
  await writeFile(verify.publicKeyFile, issuer.publicPem);
  await writeFile(
    join(dir, 'token'),
    await issuer.sign(
      serviceAccountClaims({ issuer: ISSUER, audience: 'gatehouse.dev', namespace: 'shop', name: 'orders' }),
    ),
  );
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('createAuthenticator', () => {
  it('builds the authenticator of each mode', async () => {
    const logs = captureLogs();
    const configs: [IdentityConfig, boolean, string][] = [
      [{ mode: 'token', token: verify }, true, 'token'],
      [{ mode: 'token-file', tokenFile: { path: join(dir, 'token'), verify } }, false, 'token-file'],
      [{ mode: 'local', local: { users: [{ name: 'ada', password: 'pw' }] } }, true, 'local'],
    ];
    for (const [config, needsPassword, method] of configs) {
      const auth = await createAuthenticator(config, { logger: logs.logger });
      expect(auth.needsPassword).toBe(needsPassword);
      const password =
        method === 'token'
          ? await issuer.sign(
              serviceAccountClaims({ issuer: ISSUER, audience: 'gatehouse.dev', namespace: 'a', name: 'b' }),
            )
          : 'pw';
      expect((await auth.authenticate({ user: 'ada', password })).method).toBe(method);
      auth.close();
    }
    expect(logs.records().every((r) => r['component'] === 'identity')).toBe(true);
  });

  it('says which section is missing for the mode', async () => {
    const logger = captureLogs().logger;
    await expect(createAuthenticator({ mode: 'token' }, { logger })).rejects.toThrow(
      new UserError('identity.token: is required when identity.mode is token'),
    );
    await expect(createAuthenticator({ mode: 'token-file', token: verify }, { logger })).rejects.toThrow(
      'identity.tokenFile: is required when identity.mode is token-file',
    );
    await expect(
      createAuthenticator(
        { mode: 'token-file', tokenFile: { path: join(dir, 'token'), verify: { ...verify, jwksFile: 'x' } } },
        { logger },
      ),
    ).rejects.toThrow('identity.tokenFile.verify: needs exactly one of jwksUrl, jwksFile or publicKeyFile');
  });
});
