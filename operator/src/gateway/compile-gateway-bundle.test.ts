import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../../../sidecar/src/config/load.ts';
import { loadPolicyDocuments } from '../../../sidecar/src/policy/load-policy.ts';
import { createCertificateAuthority, issueServerCertificate } from '../../../sidecar/src/tls/certificates.ts';
import { BundleSpecError } from '../compile/compile-bundle.ts';
import {
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_MOUNT,
  CREDENTIALS_MOUNT,
  MASKING_KEY_KEY,
  MASKING_KEY_MOUNT,
  TOKEN_FILE,
  TOKEN_MOUNT,
} from '../sidecar-layout.ts';
import { compileGatewayBundle, type GatewayBundleInput } from './compile-gateway-bundle.ts';
import { CLIENT_TLS_MOUNT } from './gateway-layout.ts';

function input(
  gateway: Partial<GatewayBundleInput['gateway']['spec']> = {},
  protocol?: 'mysql',
): GatewayBundleInput {
  return {
    gateway: {
      spec: {
        access: 'analysts',
        oidc: {
          issuer: 'https://login.example.com',
          audience: 'gatehouse',
          jwksUrl: 'https://login.example.com/jwks',
        },
        ...gateway,
      },
    },
    access: {
      metadata: { name: 'analysts', namespace: 'shop' },
      spec: {
        subjects: [{ kind: 'Group', name: 'analysts' }],
        allow: ['read'],
        maskingPolicies: ['pii'],
        upstream: {
          ...(protocol && { protocol }),
          host: 'db.shop.svc',
          database: 'orders',
          credentialsSecretRef: { name: 'db-creds' },
        },
      },
    },
    guardrails: [],
    maskingPolicies: [
      { metadata: { name: 'pii' }, spec: { rules: [{ columns: ['customers.email'], method: 'redact' }] } },
    ],
  };
}

/** The bundle as the proxy loads it, with the Secret volumes as temporary directories. */
async function loadAsProxy(config: string) {
  const tls = mkdtempSync(join(tmpdir(), 'gatehouse-gw-tls-'));
  const ca = await createCertificateAuthority('test ca', new Date(), 1);
  const served = await issueServerCertificate(ca, ['localhost'], new Date(), 1);
  writeFileSync(join(tls, 'tls.crt'), served.certificate.toString('pem'));
  writeFileSync(join(tls, 'tls.key'), served.keyPem);
  const credentials = mkdtempSync(join(tmpdir(), 'gatehouse-gw-credentials-'));
  writeFileSync(join(credentials, 'username'), 'app\n');
  writeFileSync(join(credentials, 'password'), 'pw\n');
  const maskingKey = mkdtempSync(join(tmpdir(), 'gatehouse-gw-masking-key-'));
  writeFileSync(join(maskingKey, MASKING_KEY_KEY), 'k'.repeat(43));
  const text = config
    .replaceAll(CREDENTIALS_MOUNT, credentials)
    .replaceAll(MASKING_KEY_MOUNT, maskingKey)
    .replaceAll(CLIENT_TLS_MOUNT, tls);
  const proxy = parseProxyConfig(text, 'gateway.yaml');
  return { proxy, policy: loadPolicyDocuments(proxy.policyDocuments, 'gateway.yaml') };
}

describe('compileGatewayBundle', () => {
  it('compiles what the proxy loads: every address, OIDC tokens as passwords, TLS required, the same policies', async () => {
    const bundle = compileGatewayBundle(
      input({ oidc: { ...input().gateway.spec.oidc, groupsClaim: 'roles' } }),
    );
    expect(Object.keys(bundle.data)).toEqual([BUNDLE_CONFIG_KEY]);
    const { proxy, policy } = await loadAsProxy(bundle.data[BUNDLE_CONFIG_KEY]!);
    expect(proxy.listen).toEqual({ host: '0.0.0.0', port: 5432 });
    expect(proxy.identity).toMatchObject({
      mode: 'token',
      token: {
        issuer: 'https://login.example.com',
        audience: 'gatehouse',
        jwksUrl: 'https://login.example.com/jwks',
        groupsClaim: 'roles',
      },
    });
    expect(bundle.data[BUNDLE_CONFIG_KEY]).toContain(`certFile: ${CLIENT_TLS_MOUNT}/tls.crt`);
    expect(proxy.clientTls).toMatchObject({ required: true });
    expect(proxy.upstream).toMatchObject({ host: 'db.shop.svc', user: 'app', password: 'pw' });
    expect(proxy.approvals).toBeUndefined();
    expect(policy.grants.map((g) => g.access.metadata.name)).toEqual(['analysts']);
    expect(policy.grants[0]!.maskingPolicies.map((m) => m.metadata.name)).toEqual(['pii']);
  });

  it('listens on the protocol default or spec.port, and never on the admin port', async () => {
    const mysql = compileGatewayBundle(input({}, 'mysql'));
    expect((await loadAsProxy(mysql.data[BUNDLE_CONFIG_KEY]!)).proxy.listen).toEqual({
      host: '0.0.0.0',
      port: 3306,
    });
    const custom = compileGatewayBundle(input({ port: 6432 }));
    expect((await loadAsProxy(custom.data[BUNDLE_CONFIG_KEY]!)).proxy.listen.port).toBe(6432);
    expect(() => compileGatewayBundle(input({ port: 15090 }))).toThrow(BundleSpecError);
  });

  it("ships its audit log to the chart's collector as a sidecar does: same URL and CA, the pod's own token", async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const collector = {
      url: 'https://gatehouse-collector.gatehouse-system.svc:7450',
      cluster: 'prod-eu',
      ca,
    };
    const bundle = compileGatewayBundle({ ...input(), collector });
    const { proxy } = await loadAsProxy(bundle.data[BUNDLE_CONFIG_KEY]!);
    // The pod's projected token (audience gatehouse.dev), never a person's: the collector binds it
    // (TokenReview) to the gateway's namespace and pod, and takes the pod's records only.
    expect(proxy.audit.ship).toEqual({
      url: collector.url,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      tokenFile: `${TOKEN_MOUNT}/${TOKEN_FILE}`,
      cluster: 'prod-eu',
      namespace: 'shop',
      batchRecords: 1000,
    });
    expect(proxy.audit.ship?.pod).toBeUndefined();
    expect(bundle.data[BUNDLE_COLLECTOR_CA_KEY]).toBe(ca);
    expect(Object.keys(bundle.data).sort()).toEqual([BUNDLE_COLLECTOR_CA_KEY, BUNDLE_CONFIG_KEY].sort());
    // A renewed CA is a new bundle; before there is one, an empty CA file, and nothing is sent.
    expect(compileGatewayBundle({ ...input(), collector: { ...collector, ca: `${ca}${ca}` } }).hash).not.toBe(
      bundle.hash,
    );
    const waiting = compileGatewayBundle({ ...input(), collector: { ...collector, ca: undefined } });
    expect(waiting.data[BUNDLE_COLLECTOR_CA_KEY]).toBe('');
    expect((await loadAsProxy(compileGatewayBundle(input()).data[BUNDLE_CONFIG_KEY]!)).proxy.audit.ship).toBe(
      undefined,
    );
  });

  it('is deterministic: the same input gives the same hash, another issuer another', () => {
    expect(compileGatewayBundle(input()).hash).toBe(compileGatewayBundle(input()).hash);
    const other = input({ oidc: { ...input().gateway.spec.oidc, issuer: 'https://other.example.com' } });
    expect(compileGatewayBundle(other).hash).not.toBe(compileGatewayBundle(input()).hash);
  });
});
