import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql2 from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mysql } from './mysql-cli.ts';
import { psql } from './pg-env.ts';
import { createCertificateAuthority } from './tls.ts';

const postgres = inject('postgres');
const mariadb = inject('mariadb');

const SSL_FACTS = 'SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()';

let strangerCaDir: string;
let strangerCaFile: string;

beforeAll(async () => {
  strangerCaDir = await mkdtemp(join(tmpdir(), 'gatehouse-stranger-ca-'));
  strangerCaFile = (await createCertificateAuthority(strangerCaDir)).certFile;
});

afterAll(async () => {
  await rm(strangerCaDir, { recursive: true, force: true });
});

it('runs the tests on Node 24, the version the project requires', () => {
  expect(process.versions.node.split('.')[0]).toBe('24');
});

describe('PostgreSQL', () => {
  it.each(['127.0.0.1', 'localhost'])(
    'lets scram_user in over TLS verified against the CA as %s',
    async (host) => {
      const result = await psql(['-At', '-c', SSL_FACTS], {
        server: postgres,
        login: postgres.users.scram,
        host,
        sslmode: 'verify-full',
      });
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('scram_user|t');
    },
  );

  it('refuses verify-full when the certificate comes from another CA', async () => {
    const result = await psql(['-At', '-c', 'SELECT 1'], {
      server: postgres,
      login: postgres.users.scram,
      sslmode: 'verify-full',
      caFile: strangerCaFile,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/certificate verify failed/);
  });

  it.each([
    ['scram', 'scram-sha-256'],
    ['md5', 'md5'],
    ['clear', 'password'],
  ] as const)(
    'lets %s_user in with its password and refuses a wrong one (hba method %s)',
    async (kind, method) => {
      const login = postgres.users[kind];
      const rule = await psql(
        [
          '-At',
          '-c',
          `SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND '${login.user}' = ANY(user_name)`,
        ],
        { server: postgres, sslmode: 'disable' },
      );
      expect(rule.stdout.trim()).toBe(method);

      const right = await psql(['-At', '-c', SSL_FACTS], { server: postgres, login, sslmode: 'disable' });
      expect(right.stderr).toBe('');
      expect(right.stdout.trim()).toBe(`${login.user}|f`);

      const wrong = await psql(['-At', '-c', 'SELECT 1'], {
        server: postgres,
        login: { user: login.user, password: `${login.password}x` },
        sslmode: 'disable',
      });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/password authentication failed for user "\w+"/);
    },
  );

  it('stores md5_user password as an md5 hash, so the md5 exchange really happens', async () => {
    const result = await psql(
      [
        '-At',
        '-c',
        "SELECT rolname, left(rolpassword, 3) FROM pg_authid WHERE rolname IN ('scram_user', 'md5_user', 'clear_user', 'trust_user') ORDER BY 1",
      ],
      { server: postgres, sslmode: 'require' },
    );
    expect(result.stdout.trim().split('\n')).toEqual([
      'clear_user|SCR',
      'md5_user|md5',
      'scram_user|SCR',
      'trust_user|',
    ]);
  });

  it('lets trust_user in without a password, over the Unix socket too', async () => {
    for (const host of [postgres.host, postgres.socketDir]) {
      const result = await psql(['-At', '-c', 'SELECT current_user'], {
        server: postgres,
        login: postgres.users.trust,
        host,
      });
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('trust_user');
    }
  });

  it('runs with the settings the harness promises', async () => {
    const result = await psql(
      [
        '-At',
        '-c',
        "SELECT current_setting('max_connections'), current_setting('server_version_num')::int / 10000",
      ],
      { server: postgres },
    );
    expect(result.stdout.trim()).toBe('600|15');
  });
});

describe('MariaDB', () => {
  it('answers the mysql client over TLS verified against the CA', async () => {
    const result = await mysql(
      ['--skip-column-names', '-e', "SELECT CURRENT_USER(); SHOW SESSION STATUS LIKE 'Ssl_version'"],
      { server: mariadb, ssl: 'verify' },
    );
    expect(result.stderr).toBe('');
    const [user, ssl] = result.stdout.trim().split('\n');
    expect(user).toBe('gatehouse_admin@%');
    expect(ssl).toMatch(/^Ssl_version\tTLSv1\.[23]$/);
  });

  it('refuses the mysql client with a wrong password', async () => {
    const result = await mysql(['-e', 'SELECT 1'], {
      server: mariadb,
      login: { user: mariadb.users.native.user, password: 'not-the-password' },
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Access denied for user 'native_user'/);
  });

  it('answers the mysql2 driver as native_user over verified TLS', async () => {
    const connection = await mysql2.createConnection({
      host: mariadb.host,
      port: mariadb.port,
      user: mariadb.users.native.user,
      password: mariadb.users.native.password,
      database: mariadb.database,
      ssl: { ca: readFileSync(mariadb.caFile), rejectUnauthorized: true, verifyIdentity: true },
    });
    try {
      const [rows] = await connection.query<mysql2.RowDataPacket[]>(
        "SELECT CURRENT_USER() AS user, VARIABLE_VALUE AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'",
      );
      expect(rows).toEqual([{ user: 'native_user@%', tls: expect.stringMatching(/^TLSv1\.[23]$/) }]);
    } finally {
      await connection.end();
    }
  });

  it('gives each MariaDB account the authentication plugin its name promises', async () => {
    const result = await mysql(
      [
        '--skip-column-names',
        '-e',
        "SELECT user, plugin FROM mysql.user WHERE user IN ('gatehouse_admin', 'native_user', 'caching_sha2_user') ORDER BY user",
      ],
      { server: mariadb },
    );
    const expected = ['gatehouse_admin\tmysql_native_password', 'native_user\tmysql_native_password'];
    if (mariadb.users.cachingSha2 !== null) expected.splice(0, 0, 'caching_sha2_user\tcaching_sha2_password');
    expect(result.stdout.trim().split('\n')).toEqual(expected);
  });

  it('makes mysql2 refuse a server certificate from another CA', async () => {
    const connecting = mysql2.createConnection({
      host: mariadb.host,
      port: mariadb.port,
      user: mariadb.users.native.user,
      password: mariadb.users.native.password,
      ssl: { ca: readFileSync(strangerCaFile), rejectUnauthorized: true },
    });
    await expect(connecting).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it.skipIf(mariadb.users.cachingSha2 === null)('lets caching_sha2_user in through mysql2', async () => {
    const login = mariadb.users.cachingSha2!;
    const connection = await mysql2.createConnection({
      host: mariadb.host,
      port: mariadb.port,
      user: login.user,
      password: login.password,
      ssl: { ca: readFileSync(mariadb.caFile) },
    });
    try {
      const [rows] = await connection.query<mysql2.RowDataPacket[]>('SELECT CURRENT_USER() AS user');
      expect(rows).toEqual([{ user: `${login.user}@%` }]);
    } finally {
      await connection.end();
    }
  });
});
