import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { parseProxyConfig } from './load.ts';

const LOCAL = 'identity:\n  mode: local\n  local:\n    users: [{name: demo, password: demo}]\n';

function errorOf(text: string, overrides = {}): string {
  try {
    parseProxyConfig(text, 'g.yaml', overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseProxyConfig', () => {
  it('applies defaults and reads the upstream URL', () => {
    const config = parseProxyConfig(
      `upstream:\n  url: postgres://app:s%40cret@db.internal:6543/shop?sslmode=verify-full\n${LOCAL}`,
      'g.yaml',
    );
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6432 });
    expect(config.upstream).toMatchObject({
      protocol: 'postgres',
      host: 'db.internal',
      port: 6543,
      database: 'shop',
      user: 'app',
      password: 's@cret',
      tls: { mode: 'verify-full' },
    });
    expect(config.audit).toMatchObject({
      stdout: true,
      failClosed: true,
      columnLineage: true,
      checkpointEveryRecords: 1000,
      checkpointIntervalMs: 10_000,
    });
    expect(config.limits.maxConnections).toBe(1000);
    expect(config.policyDocuments).toEqual([]);
  });

  it('takes audit.columnLineage as a boolean', () => {
    const upstream = 'upstream:\n  url: postgres://app@db/shop\n';
    const off = parseProxyConfig(`${upstream}${LOCAL}audit:\n  columnLineage: false\n`, 'g.yaml');
    expect(off.audit.columnLineage).toBe(false);
    expect(errorOf(`${upstream}${LOCAL}audit:\n  columnLineage: sometimes\n`)).toMatch(/columnLineage/);
  });

  it('asks the operator for approvals with the token-file token unless another is named, and only over https', () => {
    const upstream = 'upstream:\n  url: postgres://app:x@db:5432/shop\n';
    const tokenFile =
      'identity:\n  mode: token-file\n  tokenFile:\n    path: /var/run/token\n    verify: {issuer: https://k, audience: gatehouse.dev, jwksFile: /j.json}\n';
    const operator = 'approvals:\n  operator:\n    url: https://gatehouse-webhook.gatehouse-system.svc\n';
    expect(parseProxyConfig(upstream + tokenFile + operator, 'g.yaml').approvals).toEqual({
      operator: { url: 'https://gatehouse-webhook.gatehouse-system.svc', tokenFile: '/var/run/token' },
    });
    expect(
      parseProxyConfig(`${upstream}${LOCAL}${operator}    tokenFile: /t\n    caFile: /ca.crt\n`, 'g.yaml')
        .approvals,
    ).toEqual({
      operator: { url: 'https://gatehouse-webhook.gatehouse-system.svc', tokenFile: '/t', caFile: '/ca.crt' },
    });
    expect(parseProxyConfig(upstream + LOCAL, 'g.yaml').approvals).toBeUndefined();
    expect(errorOf(upstream + LOCAL + operator)).toContain('approvals.operator.tokenFile');
    expect(errorOf(`${upstream}${tokenFile}approvals:\n  operator:\n    url: http://operator\n`)).toContain(
      'approvals.operator.url',
    );
  });

  it('takes clientTls: auto, its options, or a certificate and key, and says when it is neither', () => {
    const base = `upstream:\n  url: mysql://app:x@db:3306/shop\n${LOCAL}`;
    expect(parseProxyConfig(`${base}clientTls: auto\n`, 'g.yaml').clientTlsAuto).toEqual({
      dir: resolve('.gatehouse/tls'),
      names: [],
      required: false,
    });
    expect(
      parseProxyConfig(
        `${base}clientTls:\n  auto: {dir: /etc/gh, names: [db.example.test]}\n  required: true\n`,
        'g.yaml',
      ).clientTlsAuto,
    ).toEqual({ dir: '/etc/gh', names: ['db.example.test'], required: true });
    expect(errorOf(`${base}clientTls:\n  required: true\n`)).toMatch(
      /clientTls.*needs certFile and keyFile, or `auto`/,
    );
    expect(errorOf(`${base}clientTls:\n  auto: {}\n  certFile: a.pem\n  keyFile: k.pem\n`)).toMatch(
      /either certFile and keyFile or auto/,
    );
    expect(errorOf(`${base}clientTls: automatic\n`)).toMatch(/clientTls/);
  });

  it('takes audit.ship only with an audit file to ship from and one way to authenticate', () => {
    const base = `upstream:\n  url: postgres://app:x@db/shop\n${LOCAL}`;
    const ship = (audit: string) => `${base}audit:\n${audit}`;
    const config = parseProxyConfig(
      ship('  file: a.jsonl\n  ship:\n    url: http://127.0.0.1:7450\n    tokenFile: /var/run/token\n'),
      'g.yaml',
    );
    expect(config.audit.ship).toMatchObject({
      url: 'http://127.0.0.1:7450',
      tokenFile: '/var/run/token',
      cluster: 'local',
    });
    expect(errorOf(ship('  ship:\n    url: http://c:7450\n    tokenFile: t\n'))).toMatch(
      /audit.ship.*needs audit.file/,
    );
    expect(errorOf(ship('  file: a.jsonl\n  ship:\n    url: http://c:7450\n'))).toMatch(
      /exactly one of tokenFile or token/,
    );
    expect(
      errorOf(
        ship(
          '  file: a.jsonl\n  ship:\n    url: http://c:7450\n    tokenFile: t\n    token: long-enough-token-0\n',
        ),
      ),
    ).toMatch(/exactly one of tokenFile or token/);
    expect(errorOf(ship('  file: a.jsonl\n  ship:\n    url: ftp://c\n    tokenFile: t\n'))).toMatch(
      /audit.ship.url/,
    );
    expect(errorOf(ship('  file: a.jsonl\n  ship:\n    url: http://c\n    token: short\n'))).toMatch(
      /audit.ship.token/,
    );
  });

  it('ships in clear only to loopback: beyond it, https, with caFile only for https', () => {
    const base = `upstream:\n  url: postgres://app:x@db/shop\n${LOCAL}`;
    const ship = (url: string, extra = '') =>
      `${base}audit:\n  file: a.jsonl\n  ship:\n    url: ${url}\n    tokenFile: t\n${extra}`;
    for (const url of [
      'http://127.0.0.1:7450',
      'http://localhost:7450',
      'http://[::1]:7450',
      'http://127.8.0.1',
    ])
      expect(parseProxyConfig(ship(url), 'g.yaml').audit.ship?.url, url).toBe(url);
    for (const url of [
      'http://gatehouse-collector.gatehouse-system.svc:7450',
      'http://collector:7450',
      'http://10.0.0.7:7450',
      'http://[fd00::7]:7450',
      'http://0.0.0.0:7450',
      'http://localhost.example.com:7450',
      'http://127.0.0.1.nip.io:7450',
      'http://user:pw@collector:7450',
    ])
      expect(errorOf(ship(url)), url).toMatch(/audit.ship.url.*plain http only to loopback/);
    const https = parseProxyConfig(ship('https://collector:7450', '    caFile: /etc/ca.crt\n'), 'g.yaml');
    expect(https.audit.ship).toMatchObject({ url: 'https://collector:7450', caFile: '/etc/ca.crt' });
    expect(errorOf(ship('http://127.0.0.1:7450', '    caFile: /etc/ca.crt\n'))).toMatch(
      /audit.ship.caFile.*https/,
    );
  });

  it('lets flags override the file, keeping the upstream TLS settings', () => {
    const config = parseProxyConfig(
      `upstream:\n  url: postgres://a@h/db\n  tls: {mode: require}\n${LOCAL}`,
      'g.yaml',
      {
        upstream: 'postgres://b:pw@other:5433/db2',
        listen: '0.0.0.0:7000',
        auditFile: 'x.jsonl',
        adminListen: '[::1]:9999',
      },
    );
    expect(config.upstream).toMatchObject({
      host: 'other',
      port: 5433,
      user: 'b',
      database: 'db2',
      tls: { mode: 'require' },
    });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 7000 });
    expect(config.audit.file).toBe('x.jsonl');
    expect(config.admin).toEqual({ host: '::1', port: 9999 });
  });

  it('resolves the upstream password from a file or the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const fromFile = parseProxyConfig(
      `upstream:\n  host: h\n  user: u\n  password: {file: ${join(dir, 'pw')}}\n${LOCAL}`,
      'g.yaml',
    );
    expect(fromFile.upstream.password).toBe('from-file');
    process.env['GATEHOUSE_TEST_PW'] = 'from-env';
    const fromEnv = parseProxyConfig(
      `upstream:\n  host: h\n  user: u\n  password: {env: GATEHOUSE_TEST_PW}\n${LOCAL}`,
      'g.yaml',
    );
    expect(fromEnv.upstream.password).toBe('from-env');
  });

  it('reads the upstream user from a file, as a pod mounts it from a Secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
    writeFileSync(join(dir, 'username'), 'app_user\n');
    const config = parseProxyConfig(
      `upstream:\n  host: h\n  user: {file: ${join(dir, 'username')}}\n${LOCAL}`,
      'g.yaml',
    );
    expect(config.upstream.user).toBe('app_user');
    expect(config.upstream.database).toBe('app_user');
    expect(errorOf(`upstream:\n  host: h\n  user: {file: ${join(dir, 'missing')}}\n${LOCAL}`)).toMatch(
      /^g\.yaml: upstream\.user\.file: cannot read .*missing \(ENOENT\)$/,
    );
  });

  it('keeps the other documents of the file for the policy loader', () => {
    const config = parseProxyConfig(
      `upstream: {url: postgres://u@h/db}\n${LOCAL}---\nkind: Guardrail\nmetadata: {name: g}\n`,
      'g.yaml',
    );
    expect(config.policyDocuments).toEqual([{ kind: 'Guardrail', metadata: { name: 'g' } }]);
  });

  it.each([
    [`upstream: {url: postgres://u@h/db}\n${LOCAL}lissen: 1`, 'g.yaml: lissen: is not a known field'],
    [
      `upstream: {url: postgres://u@h/db, tls: {mode: sometimes}}\n${LOCAL}`,
      'g.yaml: upstream.tls.mode: must be one of disable, require, verify-full',
    ],
    [
      `upstream: {url: "http://h/db"}\n${LOCAL}`,
      'g.yaml: upstream.url: has scheme "http"; use postgres:// or mysql://',
    ],
    [
      `upstream: {url: postgres://h/db}\n${LOCAL}`,
      'g.yaml: upstream.user: is required (or give it in upstream.url)',
    ],
    [
      `upstream: {url: postgres://u@h/db}\nidentity: {mode: token}\n`,
      'g.yaml: identity.token: is required when identity.mode is token',
    ],
    [
      `upstream: {url: postgres://u@h/db}\nidentity: {mode: token, token: {issuer: i, audience: a}}\n`,
      'g.yaml: identity.token: needs exactly one of jwksUrl, jwksFile or publicKeyFile',
    ],
    [
      `upstream: {url: postgres://u@h/db}\n${LOCAL}listen: "nohost"`,
      'g.yaml: listen: is not in the expected form',
    ],
    [
      `upstream: {url: postgres://u@h/db, password: {value: a, env: B}}\n${LOCAL}`,
      'g.yaml: upstream.password: needs exactly one of value, file or env',
    ],
    [`upstream: [1\n`, 'g.yaml: line 2, column 1: Flow sequence'],
    [`kind: Guardrail\n`, 'g.yaml: has no proxy settings'],
  ])('%s → %s', (text, message) => {
    expect(errorOf(text)).toContain(message);
  });
});

describe('parseProxyConfig: mcp', () => {
  const PEM = join(mkdtempSync(join(tmpdir(), 'gatehouse-mcp-config-')), 'x.pem');
  writeFileSync(PEM, 'not read as PEM here');
  const UP = 'upstream: {url: postgres://u@h/db}\n';
  const POD =
    'identity:\n  mode: token-file\n  tokenFile:\n    path: /var/run/token\n    verify: {issuer: https://k, audience: gatehouse.dev, jwksFile: /j.json}\n';
  const TOKEN = 'identity: {mode: token, token: {issuer: https://i, audience: a, jwksFile: /j.json}}\n';

  it("takes the pod's identity in token-file mode, a token file in token mode, a user in local mode", () => {
    expect(parseProxyConfig(`${UP}${POD}mcp: {listen: "127.0.0.1:8808"}\n`, 'g.yaml').mcp).toEqual({
      listen: { host: '127.0.0.1', port: 8808 },
      agent: { kind: 'pod' },
      maxRows: 200,
      maxBytes: 65536,
      approvalWaitMs: 30_000,
    });
    expect(
      parseProxyConfig(`${UP}${TOKEN}mcp: {listen: "localhost:0", tokenFile: /t}\n`, 'g.yaml').mcp?.agent,
    ).toEqual({ kind: 'token-file', path: '/t' });
    expect(
      parseProxyConfig(
        `${UP}${LOCAL}mcp: {listen: "[::1]:1", user: agent, password: {value: s}, maxRows: 5}\n`,
        'g.yaml',
      ).mcp,
    ).toMatchObject({ agent: { kind: 'local', user: 'agent', password: 's' }, maxRows: 5 });
  });

  it.each([
    [`${POD}mcp: {listen: "0.0.0.0:8808"}\n`, /mcp.listen: must be a loopback address .* not 0.0.0.0/],
    [`${POD}mcp: {listen: "10.0.0.1:8808"}\n`, /mcp.listen: must be a loopback address/],
    [
      `${POD}mcp: {listen: "127.0.0.1:1", user: a, password: {value: b}}\n`,
      /mcp.user: is not used in identity.mode token-file/,
    ],
    [`${POD}mcp: {listen: "127.0.0.1:1", tokenFile: /t}\n`, /mcp.tokenFile: is not used/],
    [`${TOKEN}mcp: {listen: "127.0.0.1:1"}\n`, /mcp.tokenFile: is required in identity.mode token/],
    [`${LOCAL}mcp: {listen: "127.0.0.1:1", user: a}\n`, /mcp.user: and mcp.password are required/],
    [`${LOCAL}mcp: {listen: "127.0.0.1:1", user: a, password: {value: b}, extra: 1}\n`, /mcp/],
    [
      `${LOCAL}clientTls: {certFile: ${PEM}, keyFile: ${PEM}, required: true}\nmcp: {listen: "127.0.0.1:1", user: a, password: {value: b}}\n`,
      /mcp: cannot be used with clientTls.required/,
    ],
  ])('refuses %j', (text, message) => {
    expect(errorOf(`${UP}${text}`)).toMatch(message);
  });

  it('refuses token mode in front of MySQL, whose tokens go only over TLS', () => {
    expect(
      errorOf(`upstream: {url: "mysql://u@h/db"}\n${TOKEN}mcp: {listen: "127.0.0.1:1", tokenFile: /t}\n`),
    ).toMatch(/mcp: cannot be used with a MySQL upstream in identity.mode token/);
  });
});
