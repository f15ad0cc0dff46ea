import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestIssuer,
  nowSeconds,
  serviceAccountClaims,
  type TestIssuer,
  unsignedToken,
} from '../../sidecar/src/identity/test-issuer.ts';
import { projectFile } from '../support/kubelet-volume.ts';
import { localProxyConfig, psql } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const pgInfo = inject('postgres');
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'gatehouse.dev';

let issuer: TestIssuer;
let stranger: TestIssuer;
let proxy: ProxyProcess;
let jwksFile: string;

const dsn = (port: number, token: string) =>
  `host=127.0.0.1 port=${port} dbname=app user=anyone password=${token} sslmode=disable`;

function tokenConfig(path: string): Record<string, unknown> {
  return localProxyConfig(pgInfo, {
    identity: { mode: 'token', token: { issuer: ISSUER, audience: AUDIENCE, jwksFile: path } },
  });
}

beforeAll(async () => {
  issuer = await createTestIssuer('RS256', 'cluster-key-1');
  stranger = await createTestIssuer('RS256', 'cluster-key-1');
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-jwks-'));
  jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [issuer.publicJwk] }));
  proxy = await startProxyProcess(tokenConfig(jwksFile));
});

afterAll(async () => {
  await proxy?.stop();
});

describe('token identity at the gateway', () => {
  it('accepts a Kubernetes service-account token and records the workload in the audit log', async () => {
    const token = await issuer.sign(
      serviceAccountClaims({
        issuer: ISSUER,
        audience: AUDIENCE,
        namespace: 'shop',
        name: 'api',
        pod: 'api-7d9f',
      }),
    );
    const result = await psql(dsn(proxy.port, token), [
      '-At',
      '-c',
      "SELECT current_setting('application_name')",
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('gatehouse:system:serviceaccount:shop:api');
    await new Promise((r) => setTimeout(r, 300));
    const records = readFileSync(proxy.auditFile!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const statement = records.find((r) => r['type'] === 'statement');
    expect(statement).toMatchObject({
      subject: 'system:serviceaccount:shop:api',
      pod: 'api-7d9f',
      namespace: 'shop',
    });
    expect(JSON.stringify(records)).not.toContain(token);
  });

  it('accepts an OIDC token with groups', async () => {
    const now = nowSeconds();
    const token = await issuer.sign({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'alice@example.com',
      groups: ['dba'],
      iat: now,
      exp: now + 600,
    });
    const result = await psql(dsn(proxy.port, token), ['-At', '-c', 'SELECT 1']);
    expect(result.stdout.trim()).toBe('1');
  });

  it('records both identities of a token exchanged on behalf of a user: the user and the agent acting', async () => {
    const now = nowSeconds();
    const token = await issuer.sign({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'bob@example.com',
      groups: ['analysts'],
      act: { sub: 'agent:report-writer', act: { sub: 'mcp-gateway' } },
      iat: now,
      exp: now + 600,
    });
    const result = await psql(dsn(proxy.port, token), ['-At', '-c', 'SELECT 2 AS exchanged']);
    expect(result.stdout.trim()).toBe('2');
    // The audit file is written in batches: the record was accepted before the statement ran.
    await new Promise((r) => setTimeout(r, 300));
    const records = readFileSync(proxy.auditFile!, 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const statement = records.find(
      (r) =>
        r['type'] === 'statement' &&
        r['subject'] === 'bob@example.com' &&
        String(r['statement']).includes('exchanged'),
    );
    expect(statement).toMatchObject({
      subject: 'bob@example.com',
      actors: ['agent:report-writer', 'mcp-gateway'],
    });
    // A malformed act fails the login rather than record the user without the agent.
    const malformed = await issuer.sign({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'bob@example.com',
      act: 'agent',
      iat: now,
      exp: now + 600,
    });
    const refused = await psql(dsn(proxy.port, malformed), ['-At', '-c', 'SELECT 1']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('act');
  });

  const now = nowSeconds();
  const bad: Array<[string, () => Promise<string>]> = [
    [
      'expired',
      () =>
        issuer.sign({
          ...serviceAccountClaims({
            issuer: ISSUER,
            audience: AUDIENCE,
            namespace: 'shop',
            name: 'api',
            issuedAt: now - 7200,
          }),
        }),
    ],
    [
      'not yet valid',
      () => issuer.sign({ iss: ISSUER, aud: AUDIENCE, sub: 'x', nbf: now + 3600, exp: now + 7200 }),
    ],
    [
      'wrong audience',
      () =>
        issuer.sign(
          serviceAccountClaims({ issuer: ISSUER, audience: 'other', namespace: 'shop', name: 'api' }),
        ),
    ],
    [
      'wrong issuer',
      () =>
        issuer.sign(
          serviceAccountClaims({
            issuer: 'https://evil.example',
            audience: AUDIENCE,
            namespace: 'shop',
            name: 'api',
          }),
        ),
    ],
    [
      'signed by another key',
      () =>
        stranger.sign(
          serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'api' }),
        ),
    ],
    [
      'unsigned (alg none)',
      async () =>
        unsignedToken(
          serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'shop', name: 'api' }),
        ),
    ],
    ['not a JWT', async () => 'hunter2'],
  ];
  it.each(bad)('refuses a token that is %s with 28P01 and never logs it', async (_name, make) => {
    const token = await make();
    const result = await psql(dsn(proxy.port, token), ['-c', 'SELECT 1'], {
      env: { PGAPPNAME: 'bad-token-test' },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/FATAL/);
    expect(result.stderr).not.toContain(token);
    expect(proxy.lines.join('\n')).not.toContain(token);
  });

  it('refuses a connection without a password', async () => {
    const result = await psql(`host=127.0.0.1 port=${proxy.port} dbname=app user=anyone sslmode=disable`, [
      '-w',
      '-c',
      'SELECT 1',
    ]);
    expect(result.code).not.toBe(0);
  });
});

describe('token-file identity in a sidecar', () => {
  it('uses the pod token from the file and follows its rotation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-token-'));
    await projectFile(
      dir,
      'token',
      await issuer.sign(
        serviceAccountClaims({
          issuer: ISSUER,
          audience: AUDIENCE,
          namespace: 'shop',
          name: 'api',
          pod: 'api-1',
        }),
      ),
    );
    const sidecar = await startProxyProcess(
      localProxyConfig(pgInfo, {
        identity: {
          mode: 'token-file',
          tokenFile: { path: join(dir, 'token'), verify: { issuer: ISSUER, audience: AUDIENCE, jwksFile } },
        },
      }),
    );
    try {
      const appDsn = `host=127.0.0.1 port=${sidecar.port} dbname=app user=app sslmode=disable`;
      const first = await psql(appDsn, ['-At', '-c', "SELECT current_setting('application_name')"]);
      expect(first.stdout.trim()).toBe('gatehouse:system:serviceaccount:shop:api');

      await projectFile(
        dir,
        'token',
        await issuer.sign(
          serviceAccountClaims({
            issuer: ISSUER,
            audience: AUDIENCE,
            namespace: 'shop',
            name: 'worker',
            pod: 'api-1',
          }),
        ),
      );
      let seen = '';
      for (let i = 0; i < 50 && !seen.endsWith(':worker'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = (
          await psql(appDsn, ['-At', '-c', "SELECT current_setting('application_name')"])
        ).stdout.trim();
      }
      expect(seen).toBe('gatehouse:system:serviceaccount:shop:worker');
    } finally {
      await sidecar.stop();
    }
  });
});
