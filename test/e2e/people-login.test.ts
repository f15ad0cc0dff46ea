import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { exec } from '../harness/exec.ts';
import { freePort } from '../harness/free-port.ts';
import { type RunningOidcProvider, startOidcProvider } from '../harness/oidc-provider.ts';
import { runningAsRoot } from '../harness/os-user.ts';
import { policyDocument } from '../support/policy-documents.ts';
import { directClient, freshDatabase, localProxyConfig, psql } from './support/clients.ts';
import { type GatehouseCli, gatehouseCli } from './support/gatehouse-cli.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A person's path, end to end and with real parts: `gatehouse login` against a certified OpenID
 * provider (node-oidc-provider, whose login and consent forms the test fills in over HTTP), then
 * `gatehouse connect` running the real psql and `gatehouse tunnel` serving node-postgres and psql
 * with no password, through a real proxy in token mode in front of a real PostgreSQL.
 */
const postgres = inject('postgres');
const DATABASE = 'people_login';
const CLIENT_ID = 'gatehouse-cli';
const AUDIENCE = 'urn:gatehouse:people';

let provider: RunningOidcProvider;
let proxy: ProxyProcess;
let home: string;
let env: NodeJS.ProcessEnv;
const printed: string[] = [];

beforeAll(async () => {
  provider = await startOidcProvider({
    users: [
      { id: 'alice', password: 'alice-pw', email: 'alice@example.test', groups: ['analysts'] },
      { id: 'mallory', password: 'mallory-pw', groups: ['contractors'] },
    ],
    clients: [{ clientId: CLIENT_ID }],
    audience: AUDIENCE,
  });
  const admin = await freshDatabase(postgres, DATABASE);
  await admin.query(`CREATE TABLE customers(id int, plan text, email text);
    INSERT INTO customers VALUES (1, 'gold', 'ann@example.com'), (2, 'basic', 'ben@example.com');`);
  await admin.end();
  const config = localProxyConfig(postgres, {
    identity: {
      mode: 'token',
      token: { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: `${provider.issuer}/jwks` },
    },
    masking: { key: { value: 'people-login-masking-key-0123456789' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'emails', {
        rules: [{ columns: ['customers.email'], method: 'redact' }],
      }),
      policyDocument('DatabaseAccess', 'analysts', {
        subjects: [{ kind: 'Group', name: 'analysts' }],
        allow: ['read'],
        maskingPolicies: ['emails'],
      }),
    ],
  });
  home = mkdtempSync(join(tmpdir(), 'gatehouse-person-'));
  writeFileSync(
    join(home, 'client.yaml'),
    stringify({
      issuer: provider.issuer,
      clientId: CLIENT_ID,
      databases: { app: { host: '127.0.0.1', port: proxy.port, dbname: DATABASE, tls: 'disable' } },
    }),
  );
  const { DISPLAY: _display, WAYLAND_DISPLAY: _wayland, PGPASSWORD: _pw, ...rest } = process.env;
  env = {
    ...rest,
    XDG_CONFIG_HOME: join(home, 'config'),
    GATEHOUSE_CLIENT_CONFIG: join(home, 'client.yaml'),
  };
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.stop();
});

type Cli = GatehouseCli;

function gatehouse(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Cli {
  return gatehouseCli(args, { ...env, ...extraEnv }, (out, err) => printed.push(out, err));
}

function cacheFiles(): string[] {
  const dir = join(home, 'config', 'gatehouse', 'tokens');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => join(dir, n));
}

function cached(): { accessToken: string; refreshToken?: string; expiresAt: number } {
  const [file] = cacheFiles();
  return JSON.parse(readFileSync(file!, 'utf8')) as {
    accessToken: string;
    refreshToken?: string;
    expiresAt: number;
  };
}

async function loginWithDevice(user: string, password: string): Promise<Cli> {
  const cli = gatehouse(['login', '--issuer', provider.issuer, '--client-id', CLIENT_ID]);
  const [, code] = await cli.waitFor(/enter the code (\S+)/);
  const outcome = await provider.approveDevice(code!, { user, password });
  expect(outcome.body).toContain('Sign-in Success');
  return cli;
}

const SELECT = 'SELECT plan, email FROM customers ORDER BY id';

describe('gatehouse login', () => {
  it('signs in with the device flow on a machine with no display, and keeps the tokens in a 0600 file', async () => {
    const cli = await loginWithDevice('alice', 'alice-pw');
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toMatch(
      new RegExp(`signed in to ${provider.issuer} as alice \\(groups: analysts\\)`),
    );
    const [file] = cacheFiles();
    expect(statSync(file!).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, 'config', 'gatehouse', 'tokens')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'config', 'gatehouse')).mode & 0o777).toBe(0o700);
    expect(cached().refreshToken).toEqual(expect.any(String));
  });

  it('signs in with the authorization code flow through the provider login form and a loopback redirect', async () => {
    const cli = gatehouse(['login', '--browser']);
    const [, url] = await cli.waitFor(/open this URL in a browser:\s+(\S+)/);
    expect(url).toContain('code_challenge_method=S256');
    expect(url).toMatch(/redirect_uri=http%3A%2F%2F127\.0\.0\.1%3A\d+%2Fcallback/);
    const outcome = await provider.completeCodeFlow(url!, { user: 'alice', password: 'alice-pw' });
    expect(outcome.body).toContain('Signed in to Gatehouse');
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toContain('as alice (groups: analysts)');
  });

  it('signs in with the code flow in a real headless browser', async () => {
    const cli = gatehouse(['login', '--browser']);
    const [, url] = await cli.waitFor(/open this URL in a browser:\s+(\S+)/);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url!);
      await page.fill('input[name=login]', 'alice');
      await page.fill('input[name=password]', 'alice-pw');
      await page.click('button:has-text("Sign in")');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
      expect(await page.textContent('body')).toContain('Signed in to Gatehouse');
      await screenshot(page, 'people-login-code-flow');
    } finally {
      await browser.close();
    }
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toContain('as alice (groups: analysts)');
  });

  it('says so when the person denies consent', async () => {
    const cli = gatehouse(['login', '--browser']);
    const [, url] = await cli.waitFor(/open this URL in a browser:\s+(\S+)/);
    const outcome = await provider.completeCodeFlow(url!, {
      user: 'alice',
      password: 'alice-pw',
      consent: 'deny',
    });
    expect(outcome.body).toContain('Sign-in failed');
    expect(await cli.exit).toBe(2);
    expect(cli.stderr()).toContain('gatehouse: sign-in was denied at the identity provider');
  });

  it.each([
    [
      'nothing listens there',
      async () => `http://127.0.0.1:${await freePort()}`,
      /cannot reach the identity provider http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    ],
    [
      'a page that is not a provider',
      async () => `${provider.issuer}/not-an-issuer`,
      /is not an OpenID provider Gatehouse can use/,
    ],
    [
      'plain http away from loopback',
      async () => 'http://idp.example.com',
      /--issuer must be an https:\/\/ URL/,
    ],
  ])('refuses a wrong issuer (%s) with a clear error', async (_, issuer, message) => {
    const cli = gatehouse(['login', '--issuer', await issuer(), '--client-id', CLIENT_ID, '--device']);
    expect(await cli.exit).toBe(2);
    expect(cli.stderr()).toMatch(/^gatehouse: /);
    expect(cli.stderr()).toMatch(message);
  });

  it('refuses an unknown client ID with a clear error', async () => {
    const cli = gatehouse(['login', '--client-id', 'nobody', '--device']);
    expect(await cli.exit).toBe(2);
    expect(cli.stderr()).toMatch(/gatehouse: the identity provider refused the client ID/);
  });

  it('says when the device code expired before anyone approved it', async () => {
    const shortLived = await startOidcProvider({
      users: [{ id: 'alice', password: 'alice-pw' }],
      clients: [{ clientId: CLIENT_ID }],
      deviceCodeTtlSeconds: 2,
    });
    try {
      const cli = gatehouse(['login', '--issuer', shortLived.issuer, '--client-id', CLIENT_ID, '--device'], {
        XDG_CONFIG_HOME: join(home, 'other-config'),
      });
      expect(await cli.exit).toBe(2);
      expect(cli.stderr()).toContain('gatehouse: the device code expired before it was approved');
    } finally {
      await shortLived.stop();
    }
  }, 30_000);
});

describe('gatehouse connect', () => {
  it('runs psql as the signed-in person: masked result, and the audit names the OIDC subject and groups', async () => {
    const cli = gatehouse(['connect', 'app', '--', '-X', '-At', '-c', SELECT]);
    expect(await cli.exit).toBe(0);
    const rows = cli.stdout().trim().split('\n');
    expect(rows).toHaveLength(2);
    expect(rows).toEqual(['gold|****', 'basic|****']);
    expect(cli.stdout()).not.toContain('ann@example.com');
    await new Promise((r) => setTimeout(r, 300));
    const records = readFileSync(proxy.auditFile!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const statement = records.filter((r) => r['type'] === 'statement').at(-1);
    expect(statement).toMatchObject({
      subject: 'alice',
      groups: ['analysts'],
      issuer: provider.issuer,
      method: 'token',
      application: 'gatehouse connect',
    });
  });

  it('renews a token that nears expiry with the refresh token before starting psql', async () => {
    const file = cacheFiles()[0]!;
    const before = cached();
    // The clock moves on: the cached token now has 10 s left, less than the renewal margin.
    writeFileSync(file, JSON.stringify({ ...before, expiresAt: Math.floor(Date.now() / 1000) + 10 }), {
      mode: 0o600,
    });
    const refreshes = provider.grants.filter((g) => g === 'refresh_token').length;
    const cli = gatehouse(['connect', 'app', '--', '-X', '-At', '-c', 'SELECT count(*) FROM customers']);
    expect(await cli.exit).toBe(0);
    expect(cli.stdout().trim()).toBe('2');
    expect(provider.grants.filter((g) => g === 'refresh_token').length).toBe(refreshes + 1);
    const after = cached();
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.expiresAt).toBeGreaterThan(Math.floor(Date.now() / 1000) + 60);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('passes the token in the environment, never on the command line', async () => {
    const cli = gatehouse(['connect', 'app', '--', '-X', '-At', '-c', 'SELECT 1']);
    // psql is running or done; its arguments in /proc would hold the token if it were passed there.
    const psqlArgs: string[] = [];
    const spy = setInterval(() => {
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (cmdline.startsWith('psql')) psqlArgs.push(cmdline);
        } catch {}
      }
    }, 5);
    expect(await cli.exit).toBe(0);
    clearInterval(spy);
    const token = cached().accessToken;
    for (const args of psqlArgs) expect(args).not.toContain(token);
  });
});

describe('gatehouse tunnel', () => {
  let tunnel: Cli;
  let port: number;

  beforeAll(async () => {
    tunnel = gatehouse(['tunnel', 'app', '--port', '0']);
    const [, found] = await tunnel.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
    port = Number(found);
  });

  afterAll(async () => {
    tunnel.child.kill('SIGTERM');
    await tunnel.exit;
  });

  it('lets node-postgres connect with no password and see the masked rows', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port, database: DATABASE, user: 'anyone' });
    await client.connect();
    try {
      const { rows } = await client.query(SELECT);
      expect(rows).toEqual([
        { plan: 'gold', email: '****' },
        { plan: 'basic', email: '****' },
      ]);
      expect(JSON.stringify(rows)).not.toContain('@example.com');
      const prepared = await client.query('SELECT email FROM customers WHERE id = $1', [2]);
      expect(JSON.stringify(prepared.rows)).not.toContain('ben@example.com');
    } finally {
      await client.end();
    }
  });

  it('lets psql connect with no password', async () => {
    const result = await psql(
      `host=127.0.0.1 port=${port} dbname=${DATABASE} sslmode=prefer`,
      ['-At', '-c', SELECT],
      {
        env: { PGPASSWORD: '' },
      },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('gold|****\nbasic|****\n');
    expect(result.stdout).not.toContain('ann@example.com');
  });

  it('forwards a cancel request, so Ctrl-C in psql stops the running query', async () => {
    const child = spawn(
      '/usr/bin/psql',
      [`host=127.0.0.1 port=${port} dbname=${DATABASE} sslmode=disable`, '-X', '-c', 'SELECT pg_sleep(30)'],
      {
        env: { ...env, PGPASSWORD: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const started = Date.now();
    // Once the query runs on the server, interrupt psql as Ctrl-C does.
    const watcher = await directClient({ ...postgres, database: DATABASE });
    try {
      for (;;) {
        const { rows } = await watcher.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'",
        );
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await watcher.end();
    }
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // 57014 is query_canceled; a masked session's proxy withholds the server's text, not its code.
    expect(stderr).toContain('Cancel request sent');
    expect(stderr).toContain('SQLSTATE 57014');
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it.runIf(runningAsRoot())("refuses another OS user's program on the same machine", async () => {
    const result = await exec(
      '/usr/bin/psql',
      [`host=127.0.0.1 port=${port} dbname=${DATABASE} user=x sslmode=disable`, '-X', '-At', '-c', SELECT],
      { user: 'postgres', env: { PATH: '/usr/bin:/bin', PGCONNECT_TIMEOUT: '10' }, allowFailure: true },
    );
    expect(result.code).not.toBe(0);
    expect(result.stdout).toBe('');
    await tunnel.waitFor(/refused a connection from another user's program \(uid \d+\)/);
  });

  it('serves many connections at once, renewing the token once when it nears expiry', async () => {
    const file = cacheFiles()[0]!;
    writeFileSync(file, JSON.stringify({ ...cached(), expiresAt: Math.floor(Date.now() / 1000) + 5 }), {
      mode: 0o600,
    });
    const refreshes = provider.grants.filter((g) => g === 'refresh_token').length;
    const counts = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const client = new pg.Client({ host: '127.0.0.1', port, database: DATABASE, user: 'anyone' });
        await client.connect();
        try {
          return (await client.query('SELECT count(*)::int AS n FROM customers')).rows[0].n as number;
        } finally {
          await client.end();
        }
      }),
    );
    expect(counts).toEqual([2, 2, 2, 2, 2]);
    expect(provider.grants.filter((g) => g === 'refresh_token').length).toBe(refreshes + 1);
  });

  it('relays the proxy refusing an identity no grant names', async () => {
    const other = join(home, 'mallory-config');
    const login = gatehouse(['login', '--device'], { XDG_CONFIG_HOME: other });
    const [, code] = await login.waitFor(/enter the code (\S+)/);
    await provider.approveDevice(code!, { user: 'mallory', password: 'mallory-pw' });
    expect(await login.exit).toBe(0);
    const hers = gatehouse(['tunnel', 'app', '--port', '0'], { XDG_CONFIG_HOME: other });
    const [, found] = await hers.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
    try {
      const client = new pg.Client({ host: '127.0.0.1', port: Number(found), database: DATABASE, user: 'x' });
      await expect(client.connect()).rejects.toThrow(/no DatabaseAccess grants mallory/);
    } finally {
      hers.child.kill('SIGTERM');
      await hers.exit;
    }
  });
});

describe('gatehouse logout', () => {
  it('removes the cached tokens, after which connect says to sign in', async () => {
    const file = cacheFiles()[0]!;
    const copy = readFileSync(file, 'utf8');
    const cli = gatehouse(['logout', '--issuer', provider.issuer]);
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toContain(
      `signed out of ${provider.issuer} (refresh token revoked at the provider)`,
    );
    expect(cacheFiles()).toEqual([]);
    const after = gatehouse(['connect', 'app', '--', '-c', 'SELECT 1']);
    expect(await after.exit).toBe(2);
    expect(after.stderr()).toContain(`not signed in to ${provider.issuer}: run gatehouse login`);

    // A copy kept from before the logout is worth nothing once its access token nears expiry: the
    // provider revoked the refresh token.
    const kept = JSON.parse(copy) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...kept, expiresAt: Math.floor(Date.now() / 1000) + 5 }), {
      mode: 0o600,
    });
    const revoked = gatehouse(['connect', 'app', '--', '-c', 'SELECT 1']);
    expect(await revoked.exit).toBe(2);
    expect(revoked.stderr()).toContain(
      `gatehouse: your sign-in at ${provider.issuer} has ended (the provider refused the refresh token): run gatehouse login --issuer ${provider.issuer}`,
    );
    rmSync(file);
  });

  it('never printed a token', () => {
    const all = printed.join('\n');
    // Every JWT the provider issued starts with the same header; none may appear in any output.
    expect(all).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
  });
});
