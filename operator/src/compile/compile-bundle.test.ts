import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseProxyConfig } from '../../../sidecar/src/config/load.ts';
import { loadPolicyDocuments } from '../../../sidecar/src/policy/load-policy.ts';
import { policyChangeEvent } from '../../../sidecar/src/policy/policy-diff.ts';
import {
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_JWKS_KEY,
  BUNDLE_MOUNT,
  BUNDLE_OPERATOR_CA_KEY,
  CREDENTIALS_MOUNT,
  MASKING_KEY_KEY,
  MASKING_KEY_MOUNT,
  TOKEN_AUDIENCE,
  UPSTREAM_CA_FILE,
  UPSTREAM_CA_MOUNT,
} from '../sidecar-layout.ts';
import { type BundleInput, BundleSpecError, compileBundle } from './compile-bundle.ts';

const JWKS = '{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}';

function input(overrides: Partial<BundleInput['access']['spec']> = {}): BundleInput {
  return {
    access: {
      metadata: { name: 'orders-app', namespace: 'shop' },
      spec: {
        subjects: [{ kind: 'ServiceAccount', name: 'orders' }],
        allow: ['read', 'write'],
        guardrails: ['no-drop'],
        maskingPolicies: ['pii'],
        upstream: {
          protocol: 'postgres',
          host: 'db.shop.svc',
          port: 6543,
          database: 'orders',
          credentialsSecretRef: { name: 'db-creds', userKey: 'user', passwordKey: 'pass' },
          tls: { mode: 'disable' },
        },
        ...overrides,
      },
    },
    guardrails: [
      {
        metadata: { name: 'no-drop', namespace: 'shop' },
        spec: { mode: 'enforce', rules: [{ name: 'drops', kinds: ['drop', 'truncate'], action: 'block' }] },
      },
    ],
    maskingPolicies: [
      {
        metadata: { name: 'pii', namespace: 'shop' },
        spec: { autoDetect: true, rules: [{ columns: ['customers.email'], method: 'redact' }] },
      },
    ],
    issuer: 'https://kubernetes.default.svc.cluster.local',
    jwks: JWKS,
  };
}

/** Plays kubelet: the Secret's keys as files, and the config's mount paths pointed at them. */
function loadAsSidecar(config: string) {
  const credentials = mkdtempSync(join(tmpdir(), 'gatehouse-credentials-'));
  writeFileSync(join(credentials, 'user'), 'orders_app\n');
  writeFileSync(join(credentials, 'pass'), 's3cret\n');
  const maskingKey = mkdtempSync(join(tmpdir(), 'gatehouse-masking-key-'));
  writeFileSync(join(maskingKey, MASKING_KEY_KEY), 'k'.repeat(43));
  const text = config.replaceAll(CREDENTIALS_MOUNT, credentials).replaceAll(MASKING_KEY_MOUNT, maskingKey);
  const proxy = parseProxyConfig(text, 'bundle.yaml');
  return { proxy, policy: loadPolicyDocuments(proxy.policyDocuments, 'bundle.yaml') };
}

describe('compileBundle', () => {
  it('compiles a bundle that the sidecar loads: proxy settings, the access and every policy it names', () => {
    const bundle = compileBundle(input());
    expect(Object.keys(bundle.data).sort()).toEqual([BUNDLE_CONFIG_KEY, BUNDLE_JWKS_KEY].sort());
    expect(bundle.data[BUNDLE_JWKS_KEY]).toBe(JWKS);
    const { proxy, policy } = loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(proxy.listen).toEqual({ host: '127.0.0.1', port: 5432 });
    expect(proxy.admin).toEqual({ host: '0.0.0.0', port: 15090 });
    expect(proxy.upstream).toMatchObject({
      protocol: 'postgres',
      host: 'db.shop.svc',
      port: 6543,
      database: 'orders',
      user: 'orders_app',
      password: 's3cret',
      tls: { mode: 'disable' },
    });
    expect(proxy.identity).toMatchObject({
      mode: 'token-file',
      tokenFile: {
        path: '/var/run/secrets/gatehouse.dev/serviceaccount/token',
        verify: {
          issuer: 'https://kubernetes.default.svc.cluster.local',
          audience: TOKEN_AUDIENCE,
          jwksFile: '/etc/gatehouse/bundle/jwks.json',
        },
      },
    });
    expect(proxy.audit).toMatchObject({
      file: '/var/lib/gatehouse/audit/audit.jsonl',
      stdout: true,
      // The namespace's persistent key, so the log verifies across pod restarts with the key pinned.
      signingKeyFile: '/etc/gatehouse/audit-signing-key/key.pem',
    });
    expect(policy.grants).toHaveLength(1);
    expect(policy.grants[0]!.guardrails.map((g) => g.metadata.name)).toEqual(['no-drop']);
    expect(policy.grants[0]!.maskingPolicies.map((m) => m.metadata.name)).toEqual(['pii']);
    expect(policy.grants[0]!.access.metadata).toEqual({ name: 'orders-app', namespace: 'shop' });
  });

  it('never puts credentials in the bundle, only the paths where the Secret is mounted', () => {
    const config = compileBundle(input()).data[BUNDLE_CONFIG_KEY]!;
    const proxy = parseAllDocuments(config)[0]!.toJS() as { upstream: Record<string, unknown> };
    expect(proxy.upstream['user']).toEqual({ file: `${CREDENTIALS_MOUNT}/user` });
    expect(proxy.upstream['password']).toEqual({ file: `${CREDENTIALS_MOUNT}/pass` });
    expect(config).not.toContain('s3cret');
  });

  it('is deterministic, and its hash follows any change to the access, a policy or the keys', () => {
    const base = compileBundle(input());
    expect(compileBundle(input()).hash).toBe(base.hash);
    expect(base.hash).toMatch(/^[0-9a-f]{64}$/);
    const changedGuardrail = input();
    (changedGuardrail.guardrails[0]!.spec.rules[0]!.kinds as string[]).push('alter');
    expect(compileBundle(changedGuardrail).hash).not.toBe(base.hash);
    expect(compileBundle({ ...input(), jwks: '{"keys":[]}' }).hash).not.toBe(base.hash);
    expect(compileBundle(input({ allow: ['read'] })).hash).not.toBe(base.hash);
  });

  it('carries who changed each object (the webhook stamp) into the bundle, and no other annotation', () => {
    const stamped = input();
    const author = { 'gatehouse.dev/changed-by': 'alice@example.com', 'argocd.argoproj.io/tracking-id': 'x' };
    const withAuthor = {
      ...stamped,
      guardrails: stamped.guardrails.map((g) => ({ ...g, metadata: { ...g.metadata, annotations: author } })),
    };
    const bundle = compileBundle(withAuthor);
    expect(bundle.hash).not.toBe(compileBundle(stamped).hash);
    const { proxy, policy } = loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(policy.grants).toHaveLength(1);
    const guardrail = proxy.policyDocuments.find((d) => (d as { kind: string }).kind === 'Guardrail') as {
      metadata: { annotations?: Record<string, string> };
    };
    expect(guardrail.metadata.annotations).toEqual({ 'gatehouse.dev/changed-by': 'alice@example.com' });
    // The sidecar's policy.change record names the author of the document it put in force.
    expect(policyChangeEvent(undefined, proxy.policyDocuments, 'bundle.yaml', undefined)).toMatchObject({
      changedBy: 'alice@example.com',
      changedByDocument: { 'Guardrail shop/no-drop': 'alice@example.com' },
    });
  });

  it("points the sidecar at the operator's approvals endpoint with its CA, when the operator serves one", () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const url = 'https://gatehouse-webhook.gatehouse-system.svc';
    const bundle = compileBundle({ ...input(), approvals: { url, ca } });
    expect(bundle.data[BUNDLE_OPERATOR_CA_KEY]).toBe(ca);
    const { proxy } = loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(proxy.approvals).toEqual({
      operator: {
        url,
        caFile: `/etc/gatehouse/bundle/${BUNDLE_OPERATOR_CA_KEY}`,
        tokenFile: proxy.identity.tokenFile?.path,
      },
    });
    expect(compileBundle(input()).data[BUNDLE_OPERATOR_CA_KEY]).toBeUndefined();
    expect(loadAsSidecar(compileBundle(input()).data[BUNDLE_CONFIG_KEY]!).proxy.approvals).toBeUndefined();
    // A renewed CA is a new bundle: the sidecars get it with the ConfigMap.
    expect(compileBundle({ ...input(), approvals: { url, ca: `${ca}\n` } }).hash).not.toBe(bundle.hash);
  });

  it("ships the audit log to the chart's collector over https with the pod's token, verified by the CA the bundle carries", () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const collector = {
      url: 'https://gatehouse-collector.gatehouse-system.svc:7450',
      cluster: 'prod-eu',
      ca,
    };
    const bundle = compileBundle({ ...input(), collector });
    const { proxy } = loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(proxy.audit.ship).toMatchObject({
      url: collector.url,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      tokenFile: proxy.identity.tokenFile?.path,
      cluster: 'prod-eu',
      namespace: 'shop',
    });
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe(ca);
    const without = compileBundle(input());
    expect(loadAsSidecar(without.data[BUNDLE_CONFIG_KEY]!).proxy.audit.ship).toBeUndefined();
    expect(without.data[BUNDLE_COLLECTOR_CA_KEY]).toBeUndefined();
    expect(compileBundle({ ...input(), collector: { ...collector, cluster: 'prod-us' } }).hash).not.toBe(
      bundle.hash,
    );
    // A renewed CA is a new bundle, which the kubelet brings to running sidecars (read for every batch).
    expect(compileBundle({ ...input(), collector: { ...collector, ca: `${ca}${ca}` } }).hash).not.toBe(
      bundle.hash,
    );
  });

  it('carries an empty CA file while the collector has no CA yet: the sidecar ships nothing, in clear least of all', () => {
    const collector = { url: 'https://gatehouse-collector.gatehouse-system.svc:7450', cluster: 'prod-eu' };
    const bundle = compileBundle({ ...input(), collector });
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe('');
    const { proxy } = loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(proxy.audit.ship?.url).toBe(collector.url);
    expect(proxy.audit.ship?.caFile).toBe(`${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`);
    expect(compileBundle({ ...input(), collector: { ...collector, ca: 'x' } }).hash).not.toBe(bundle.hash);
  });

  it('is refused by the sidecar when the collector URL is plain http beyond loopback', () => {
    for (const url of [
      'http://gatehouse-collector.gatehouse-system.svc:7450',
      'http://gatehouse-collector:7450',
      'http://10.0.0.7:7450',
      'http://[fd00::7]:7450',
    ]) {
      const bundle = compileBundle({ ...input(), collector: { url, cluster: 'c', ca: 'x' } });
      expect(() => loadAsSidecar(bundle.data[BUNDLE_CONFIG_KEY]!), url).toThrow(
        /plain http only to loopback/,
      );
    }
  });

  it('uses the sidecar port and protocol defaults', () => {
    const mysql = input({
      upstream: { protocol: 'mysql', host: 'm', credentialsSecretRef: { name: 's' } },
      sidecar: { port: 13306 },
    });
    const proxy = parseAllDocuments(compileBundle(mysql).data[BUNDLE_CONFIG_KEY]!)[0]!.toJS();
    expect(proxy).toMatchObject({
      listen: '127.0.0.1:13306',
      upstream: {
        protocol: 'mysql',
        port: 3306,
        tls: { mode: 'require' },
        user: { file: `${CREDENTIALS_MOUNT}/username` },
        password: { file: `${CREDENTIALS_MOUNT}/password` },
      },
    });
  });

  it('points verify-full at the CA Secret the injector mounts, and masking at the namespace key', () => {
    const bundle = compileBundle(
      input({
        upstream: {
          host: 'db.shop.svc',
          credentialsSecretRef: { name: 'db-creds' },
          tls: { mode: 'verify-full', caSecretRef: { name: 'db-ca' } },
        },
      }),
    );
    const proxy = parseAllDocuments(bundle.data[BUNDLE_CONFIG_KEY]!)[0]!.toJS() as {
      upstream: { tls: Record<string, unknown> };
      masking: unknown;
    };
    expect(proxy.upstream.tls).toEqual({
      mode: 'verify-full',
      caFile: `${UPSTREAM_CA_MOUNT}/${UPSTREAM_CA_FILE}`,
    });
    expect(proxy.masking).toEqual({ key: { file: `${MASKING_KEY_MOUNT}/${MASKING_KEY_KEY}` } });
  });

  it('names the field when the access cannot become a sidecar configuration', () => {
    const fieldOf = (spec: Partial<BundleInput['access']['spec']>) => {
      try {
        compileBundle(input(spec));
      } catch (error) {
        expect(error).toBeInstanceOf(BundleSpecError);
        return (error as BundleSpecError).field;
      }
      throw new Error('expected a BundleSpecError');
    };
    const noUpstream = input();
    delete (noUpstream.access.spec as { upstream?: unknown }).upstream;
    expect(() => compileBundle(noUpstream)).toThrow(/spec\.upstream: is required/);
    expect(fieldOf({ upstream: { host: 'h' } })).toBe('spec.upstream.credentialsSecretRef');
    expect(fieldOf({ sidecar: { port: 15090 } })).toBe('spec.sidecar.port');
    expect(fieldOf({ sidecar: { mcp: { port: 15090 } } })).toBe('spec.sidecar.mcp.port');
    expect(fieldOf({ sidecar: { port: 9000, mcp: { port: 9000 } } })).toBe('spec.sidecar.mcp.port');
  });

  it("enables the MCP endpoint on loopback with spec.sidecar.mcp, as the workload's own identity", () => {
    const off = loadAsSidecar(compileBundle(input()).data[BUNDLE_CONFIG_KEY]!).proxy;
    expect(off.mcp).toBeUndefined();
    const on = loadAsSidecar(compileBundle(input({ sidecar: { mcp: {} } })).data[BUNDLE_CONFIG_KEY]!).proxy;
    expect(on.mcp).toMatchObject({ listen: { host: '127.0.0.1', port: 8808 }, agent: { kind: 'pod' } });
    const port = loadAsSidecar(
      compileBundle(input({ sidecar: { mcp: { port: 9100 } } })).data[BUNDLE_CONFIG_KEY]!,
    ).proxy;
    expect(port.mcp?.listen).toEqual({ host: '127.0.0.1', port: 9100 });
  });
});
