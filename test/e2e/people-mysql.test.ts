import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { exec } from '../harness/exec.ts';
import { type RunningOidcProvider, startOidcProvider } from '../harness/oidc-provider.ts';
import { policyDocument } from '../support/policy-documents.ts';
import { type GatehouseCli, gatehouseCli } from './support/gatehouse-cli.ts';
import { directMysql, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The same path as people-login.test.ts for a MySQL Gatehouse in front of a real MariaDB: sign in
 * with the device flow, then `gatehouse connect` runs the real mysql client over TLS with the token,
 * and `gatehouse tunnel` lets mysql2 and the mysql client in on loopback with no password.
 */
const server = inject('mariadb');
const tls = inject('tls');
const CLIENT_ID = 'gatehouse-cli';
const AUDIENCE = 'urn:gatehouse:people-mysql';
const TABLE = 'people_tunnel_customers';
const SELECT = `SELECT plan, email FROM ${TABLE} ORDER BY id`;

let provider: RunningOidcProvider;
let proxy: ProxyProcess;
let env: NodeJS.ProcessEnv;

function gatehouse(args: string[]): GatehouseCli {
  return gatehouseCli(args, env);
}

beforeAll(async () => {
  provider = await startOidcProvider({
    users: [{ id: 'alice', password: 'alice-pw', groups: ['analysts'] }],
    clients: [{ clientId: CLIENT_ID }],
    audience: AUDIENCE,
  });
  const admin = await directMysql(server);
  await admin.query(`DROP TABLE IF EXISTS ${TABLE};
    CREATE TABLE ${TABLE}(id int, plan text, email text);
    INSERT INTO ${TABLE} VALUES (1, 'gold', 'ann@example.com'), (2, 'basic', 'ben@example.com');`);
  await admin.end();
  proxy = await startProxyProcess(
    mysqlProxyConfig(server, {
      identity: {
        mode: 'token',
        token: { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: `${provider.issuer}/jwks` },
      },
      clientTls: { certFile: tls.certFile, keyFile: tls.keyFile },
      masking: { key: { value: 'people-mysql-masking-key-0123456789' } },
    }),
    {
      extraDocuments: [
        policyDocument('MaskingPolicy', 'emails', {
          rules: [{ columns: [`${TABLE}.email`], method: 'redact' }],
        }),
        policyDocument('DatabaseAccess', 'analysts', {
          subjects: [{ kind: 'Group', name: 'analysts' }],
          allow: ['read'],
          maskingPolicies: ['emails'],
        }),
      ],
    },
  );
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-person-mysql-'));
  writeFileSync(
    join(home, 'client.yaml'),
    stringify({
      issuer: provider.issuer,
      clientId: CLIENT_ID,
      databases: {
        shop: {
          protocol: 'mysql',
          host: '127.0.0.1',
          port: proxy.port,
          dbname: server.database,
          tls: 'verify-full',
          ca: tls.caFile,
        },
      },
    }),
  );
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, MYSQL_PWD: _p, ...rest } = process.env;
  env = {
    ...rest,
    XDG_CONFIG_HOME: join(home, 'config'),
    GATEHOUSE_CLIENT_CONFIG: join(home, 'client.yaml'),
  };
  const login = gatehouse(['login', '--device']);
  const [, code] = await login.waitFor(/enter the code (\S+)/);
  await provider.approveDevice(code!, { user: 'alice', password: 'alice-pw' });
  expect(await login.exit).toBe(0);
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.stop();
});

describe('gatehouse connect, mysql', () => {
  it('runs the mysql client over TLS with the token, and sees the masked rows', async () => {
    const cli = gatehouse([
      'connect',
      'shop',
      '--',
      '--no-defaults',
      '--batch',
      '--skip-column-names',
      '-e',
      SELECT,
    ]);
    expect(await cli.exit).toBe(0);
    expect(cli.stdout()).toBe('gold\t****\nbasic\t****\n');
  });
});

describe('gatehouse tunnel, mysql', () => {
  let tunnel: GatehouseCli;
  let port: number;

  beforeAll(async () => {
    tunnel = gatehouse(['tunnel', 'shop', '--port', '0']);
    const [, found] = await tunnel.waitFor(/listening on 127\.0\.0\.1:(\d+)/);
    port = Number(found);
  });

  afterAll(async () => {
    tunnel.child.kill('SIGTERM');
    await tunnel.exit;
  });

  it('lets mysql2 connect with no password, in text and binary protocol', async () => {
    const connection = await mysql.createConnection({
      host: '127.0.0.1',
      port,
      user: 'anyone',
      database: server.database,
    });
    try {
      const [rows] = await connection.query(SELECT);
      expect(rows).toEqual([
        { plan: 'gold', email: '****' },
        { plan: 'basic', email: '****' },
      ]);
      const [prepared] = await connection.execute(`SELECT email FROM ${TABLE} WHERE id = ?`, [2]);
      expect(prepared).toEqual([{ email: '****' }]);
    } finally {
      await connection.end();
    }
  });

  it('lets the mysql client connect with no password, and the audit names the OIDC subject and groups', async () => {
    const result = await exec(
      '/usr/bin/mysql',
      [
        '--no-defaults',
        '--protocol=TCP',
        '--host=127.0.0.1',
        `--port=${port}`,
        '--user=anyone',
        '--batch',
        '--skip-column-names',
        '-e',
        SELECT,
        server.database,
      ],
      { env, allowFailure: true },
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('gold\t****\nbasic\t****\n');
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
      protocol: 'mysql',
    });
  });
});
