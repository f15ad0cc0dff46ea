import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCollectorConfig } from './collector-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-collector-config-'));

function file(text: string): string {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, text);
  return path;
}

describe('loadCollectorConfig', () => {
  it('reads every setting, secrets from files beside the config', () => {
    writeFileSync(join(dir, 'store-url'), 'postgres://u:p@db/audit\n');
    writeFileSync(join(dir, 'shipper-token'), 'a-shipper-token-from-a-file\n');
    const config = loadCollectorConfig(
      file(`listen: 0.0.0.0:8443
store: {urlFile: store-url, poolSize: 8}
retentionDays: 30
auth:
  shipperTokens: [{file: shipper-token}, {value: another-token-of-16}]
  tokenReview: {}
  readers: [oidc:alice]
  localUsers: [{name: lead, password: lead-secret}]
tls: {certFile: tls.crt, keyFile: tls.key}
`),
      {},
    );
    expect(config).toMatchObject({
      listen: { host: '0.0.0.0', port: 8443 },
      storeUrl: 'postgres://u:p@db/audit',
      poolSize: 8,
      retentionDays: 30,
      shipperTokens: ['a-shipper-token-from-a-file', 'another-token-of-16'],
      tokenReview: { audiences: ['gatehouse.dev'] },
      readers: ['oidc:alice'],
      localUsers: [{ name: 'lead', password: 'lead-secret' }],
      tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
    });
  });

  it('reads forward.http as the proxy reads audit.http, the token from a file, and names what is wrong', () => {
    writeFileSync(join(dir, 'hec-token'), 'hec-token-from-a-file\n');
    const store = 'store: {url: "postgres://u:p@db/audit"}\n';
    expect(
      loadCollectorConfig(
        file(
          `${store}forward:\n  http: {url: "https://splunk:8088/services/collector/event", shape: splunk-hec, format: ocsf, token: {file: hec-token}}\n`,
        ),
        {},
      ).forward,
    ).toMatchObject({
      url: 'https://splunk:8088/services/collector/event',
      shape: 'splunk-hec',
      format: 'ocsf',
      token: 'hec-token-from-a-file',
      batchRecords: 500,
    });
    expect(loadCollectorConfig(file(store), {}).forward).toBeUndefined();
    for (const [text, message] of [
      ['forward:\n  kafka: {}\n', 'forward.kafka: is not a forward setting'],
      ['forward:\n  http: {url: "ftp://x"}\n', 'forward.http.url'],
      ['forward:\n  http: {url: "https://x", shape: xml}\n', 'forward.http.shape'],
      ['forward:\n  http: {}\n', 'forward.http'],
    ] as const)
      expect(() => loadCollectorConfig(file(store + text), {})).toThrow(message);
  });

  it('takes flags over the file, with defaults for the rest', () => {
    const config = loadCollectorConfig(undefined, { store: 'pglite:memory', retentionDays: '7' });
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 7450 },
      storeUrl: 'pglite:memory',
      retentionDays: 7,
      shipperTokens: [],
      tokenReview: undefined,
      console: { sessionHours: 8, viewers: [], approvers: [], approvals: undefined },
    });
  });

  it('reads the console settings, and turns it off', () => {
    writeFileSync(join(dir, 'console-secret'), 'a-console-client-secret\n');
    const config = loadCollectorConfig(
      file(`store: {url: pglite:memory}
console:
  sessionHours: 2
  viewers: [{group: auditors}]
  approvers: [{subject: local:lead}, {group: approvers}]
  approvals: {url: 'http://127.0.0.1:9090', cluster: quickstart}
  oidc:
    issuer: https://idp.example
    clientId: gatehouse-console
    clientSecretFile: console-secret
    redirectUrl: https://audit.example/console/oidc/callback
    subjectClaim: email
`),
      {},
    );
    expect(config.console).toEqual({
      sessionHours: 2,
      viewers: [{ group: 'auditors' }],
      approvers: [{ subject: 'local:lead' }, { group: 'approvers' }],
      approvals: { url: 'http://127.0.0.1:9090', cluster: 'quickstart' },
      kubeApprovals: undefined,
      oidc: {
        issuer: 'https://idp.example',
        clientId: 'gatehouse-console',
        clientSecret: 'a-console-client-secret',
        redirectUrl: 'https://audit.example/console/oidc/callback',
        scopes: ['openid', 'groups'],
        subjectClaim: 'email',
        groupsClaim: 'groups',
      },
    });
    expect(
      loadCollectorConfig(file('store: {url: pglite:memory}\nconsole: {enabled: false}\n'), {}).console,
    ).toBe(undefined);
  });

  it('reads where Kubernetes ApprovalRequests are decided, with or without a proxy beside it', () => {
    writeFileSync(join(dir, 'kube-ca.crt'), 'not checked here\n');
    const oidc = `  oidc: {issuer: "https://idp.example", clientId: c, redirectUrl: "https://a/console/oidc/callback"}\n`;
    const kube = loadCollectorConfig(
      file(`store: {url: pglite:memory}
console:
  approvals:
    kubernetes: {server: "https://kubernetes.default.svc/", caFile: kube-ca.crt, cluster: prod, oidcIssuer: "https://idp.example"}
${oidc}`),
      {},
    ).console;
    expect(kube?.approvals).toBe(undefined);
    expect(kube?.kubeApprovals).toEqual({
      server: 'https://kubernetes.default.svc',
      caFile: join(dir, 'kube-ca.crt'),
      cluster: 'prod',
      oidcIssuer: 'https://idp.example',
    });
    const both = loadCollectorConfig(
      file(`store: {url: pglite:memory}
console:
  approvals:
    url: "http://127.0.0.1:9090"
    cluster: dev
    kubernetes: {server: "https://10.0.0.1:6443", cluster: prod}
`),
      {},
    ).console;
    expect(both?.approvals).toEqual({ url: 'http://127.0.0.1:9090', cluster: 'dev' });
    expect(both?.kubeApprovals).toEqual({
      server: 'https://10.0.0.1:6443',
      caFile: undefined,
      cluster: 'prod',
      oidcIssuer: undefined,
    });
  });

  it.each([
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "http://api.prod:6443", cluster: c}}}\n',
      /console.approvals.kubernetes.server: plain http only to loopback/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "api.prod:6443", cluster: c}}}\n',
      /console.approvals.kubernetes.server: must be an https URL/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "https://api"}}}\n',
      /console.approvals.kubernetes.cluster: must be a non-empty string/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "https://api", cluster: c, caFile: nowhere.crt}}}\n',
      /cannot read nowhere.crt: ENOENT/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "https://api", cluster: c, ca: x}}}\n',
      /console.approvals.kubernetes.ca: is not a setting here/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kubernetes: {server: "https://api", cluster: c, oidcIssuer: "https://idp"}}}\n',
      /oidcIssuer: "https:\/\/idp" is not the console's provider \(console.oidc.issuer is not set\)/,
    ],
    [
      'store: {url: pglite:memory}\nconsole:\n  approvals: {kubernetes: {server: "https://api", cluster: c, oidcIssuer: "https://other"}}\n  oidc: {issuer: "https://idp", clientId: c, redirectUrl: "https://a/console/oidc/callback"}\n',
      /is not the console's provider \(console.oidc.issuer "https:\/\/idp"\)/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {cluster: c, kubernetes: {server: "https://api", cluster: c}}}\n',
      /console.approvals.cluster: goes with console.approvals.url/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {kube: {}}}\n',
      /console.approvals.kube: is not an approvals setting/,
    ],
  ])('names the problem with console.approvals.kubernetes in %j', (text, message) => {
    expect(() => loadCollectorConfig(file(text), {})).toThrow(message);
  });

  it.each([
    ['store: {url: pglite:memory}\nretention: 3\n', /retention: is not a collector setting/],
    ['listen: 7450\nstore: {url: pglite:memory}\n', /listen: "7450" is not HOST:PORT/],
    ['store: {}\n', /store.url \(or --store URL\) is required/],
    ['store: {url: pglite:memory}\nauth: {shipperTokens: [{value: short}]}\n', /at least 16 characters/],
    [
      'store: {url: pglite:memory}\nauth: {shipperTokens: [{file: missing}]}\n',
      /cannot read missing: ENOENT/,
    ],
    ['store: {url: pglite:memory}\nauth: {localUsers: [{name: x}]}\n', /auth.localUsers\[0\].password/],
    ['- a list\n', /is not a YAML mapping/],
    ['store: {url: pglite:memory}\nconsole: {enable: false}\n', /console.enable: is not a console setting/],
    [
      'store: {url: pglite:memory}\nconsole: {enabled: no-thanks}\n',
      /console.enabled: must be true or false/,
    ],
    ['store: {url: pglite:memory}\nconsole: {sessionHours: 0}\n', /console.sessionHours/],
    [
      'store: {url: pglite:memory}\nconsole: {approvers: [lead]}\n',
      /console.approvers\[0\]: must be \{subject/,
    ],
    ['store: {url: pglite:memory}\nconsole: {approvals: {url: ftp://x, cluster: c}}\n', /http\(s\) URL/],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {url: "http://127.0.0.1:9"}}\n',
      /console.approvals.cluster/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {approvals: {url: "http://proxy.shop:9090", cluster: c}}\n',
      /plain http only to loopback/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {oidc: {issuer: "https://idp", clientId: c, redirectUrl: "https://h/cb"}}\n',
      /redirectUrl: must end with \/console\/oidc\/callback/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {oidc: {issuer: idp, clientId: c, redirectUrl: "https://h/console/oidc/callback"}}\n',
      /console.oidc.issuer: must be an http\(s\) URL/,
    ],
    [
      'store: {url: pglite:memory}\nconsole: {oidc: {issuer: "https://idp", clientID: c}}\n',
      /console.oidc.clientID: is not an OIDC setting/,
    ],
  ])('names the problem in %j', (text, message) => {
    expect(() => loadCollectorConfig(file(text), {})).toThrow(message);
  });
});
