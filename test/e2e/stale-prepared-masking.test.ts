import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';
import { RawClient } from './support/raw-client.ts';

/**
 * A statement prepared by a masked identity has its masks planned at prepare, from the catalog then.
 * When another identity (who may) redefines a view it reads, or puts a view over a masked column in
 * place of a table it reads, the server runs the statement by the new definition: the proxy must plan
 * its masks again before relaying a row, or a column the old plan left clear would carry masked
 * values. The masked column is protected by a rule naming it and nothing else (no automatic
 * detection, a value no scanner recognises), so only lineage protects it; when the definition goes
 * back, clear values show again, which tells re-planning from masking everything.
 */

const SECRET = 'zq-7731-secret';
const CLEAR = ['first', 'second'];
const POLICIES = [
  policyDocument('MaskingPolicy', 'by-name', {
    autoDetect: false,
    rules: [{ columns: ['customers.code'], method: 'redact' }],
  }),
  policyDocument('DatabaseAccess', 'agent', {
    subjects: [localUser('demo')],
    allow: ['read', 'write'],
    maskingPolicies: ['by-name'],
  }),
  // Someone who sees everything in clear and may change the schema, through the same proxy.
  policyDocument('DatabaseAccess', 'owner', {
    subjects: [localUser('admin')],
    allow: ['read', 'write', 'ddl'],
  }),
];

/** What a masked execution may show: rows without the secret, or a refusal by Gatehouse. */
function expectNoSecret(result: readonly unknown[] | Error): void {
  if (result instanceof Error) {
    expect(result.message).toMatch(/Gatehouse/);
    return;
  }
  expect(result).toHaveLength(2);
  expect(JSON.stringify(result)).not.toContain(SECRET);
}

const pgInfo = inject('postgres');
const mariadb = inject('mariadb');

describe('PostgreSQL: prepared statements are masked by the catalog in force when they run', () => {
  const DATABASE = 'staleplans';
  let proxy: ProxyProcess;
  let owner: pg.Client;
  let agent: pg.Client;

  beforeAll(async () => {
    const admin = await freshDatabase(pgInfo, DATABASE);
    await admin.query(`
      CREATE TABLE customers(id int, label text, code text);
      INSERT INTO customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}');
      CREATE TABLE notes(id int, body text);
      INSERT INTO notes VALUES (1, 'first'), (2, 'second');
      CREATE VIEW v AS SELECT id, label AS x FROM customers;
      CREATE VIEW w AS SELECT id, label AS x FROM customers;
      CREATE VIEW u AS SELECT id, label AS x FROM customers;
      CREATE VIEW t AS SELECT id, label AS x FROM customers;
    `);
    await admin.end();
    const config = localProxyConfig(pgInfo, {
      masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    });
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    proxy = await startProxyProcess(config, { extraDocuments: POLICIES });
    const connect = async (user: string, password: string) => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: proxy.port,
        user,
        password,
        database: DATABASE,
      });
      await client.connect();
      return client;
    };
    owner = await connect('admin', 'admin-secret');
    agent = await connect('demo', 'demo-secret');
  });

  afterAll(async () => {
    await agent?.end().catch(() => {});
    await owner?.end().catch(() => {});
    await proxy?.stop();
  });

  /** node-postgres prepares a named statement once per connection, then only binds and executes it. */
  const named = (name: string, text: string) => (): Promise<string[] | Error> =>
    agent.query({ name, text }).then(
      (r) => r.rows.map((row) => Object.values(row)[0] as string),
      (e: Error) => e,
    );

  it('a named statement over a view another identity redefines', async () => {
    const run = named('over_v', 'SELECT x FROM v ORDER BY id');
    expect(await run()).toEqual(CLEAR);
    await owner.query('CREATE OR REPLACE VIEW v AS SELECT id, code AS x FROM customers');
    expectNoSecret(await run());
    await owner.query('CREATE OR REPLACE VIEW v AS SELECT id, label AS x FROM customers');
    expect(await run()).toEqual(CLEAR);
  });

  it('a named statement over a view redefined in a transaction block', async () => {
    const run = named('over_w', 'SELECT x FROM w ORDER BY id');
    expect(await run()).toEqual(CLEAR);
    const started = performance.now();
    await owner.query('BEGIN');
    await owner.query('CREATE OR REPLACE VIEW w AS SELECT id, code AS x FROM customers');
    await owner.query('COMMIT');
    // The catalog is reloaded once the DDL is committed: a reload inside the transaction would wait on
    // its lock (until the catalog query's timeout) and hold the transaction's next statement with it.
    expect(performance.now() - started).toBeLessThan(5000);
    expectNoSecret(await run());
    await owner.query('BEGIN; CREATE OR REPLACE VIEW w AS SELECT id, label AS x FROM customers; COMMIT');
    expect(await run()).toEqual(CLEAR);
  });

  it('a named statement over a table another identity replaces by a view of the masked column', async () => {
    const run = named('over_notes', 'SELECT body FROM notes ORDER BY id');
    expect(await run()).toEqual(CLEAR);
    await owner.query(
      'ALTER TABLE notes RENAME TO notes_old; CREATE VIEW notes AS SELECT id, code AS body FROM customers',
    );
    expectNoSecret(await run());
    await owner.query('DROP VIEW notes; ALTER TABLE notes_old RENAME TO notes');
    expect(await run()).toEqual(CLEAR);
  });

  it('an unnamed and a named statement on the raw extended protocol, bound again after the change', async () => {
    const client = await RawClient.login(proxy.port, 'demo', 'demo-secret', DATABASE);
    try {
      let rows: string[] = [];
      let errors: string[] = [];
      client.onMessage((m) => {
        if (m.name === 'dataRow') rows.push(String((m as unknown as { fields: unknown[] }).fields[0]));
        if (m.name === 'error') errors.push((m as unknown as { message: string }).message);
      });
      // Both prepared once; each round binds and executes them again.
      client.socket.write(
        Buffer.concat([
          serialize.parse({ name: '', text: 'SELECT x FROM u ORDER BY id', types: [] }),
          serialize.parse({ name: 'raw', text: 'SELECT x FROM u ORDER BY id', types: [] }),
          serialize.sync(),
        ]),
      );
      await client.waitFor('readyForQuery');
      const round = async (): Promise<string[] | Error> => {
        rows = [];
        errors = [];
        let readies = 0;
        const both = new Promise<void>((resolve) => {
          const off = client.onMessage((m) => {
            if (m.name === 'readyForQuery' && ++readies === 2) {
              off();
              resolve();
            }
          });
        });
        client.socket.write(
          Buffer.concat(
            ['', 'raw'].flatMap((statement) => [
              serialize.bind({ statement, values: [] }),
              serialize.execute({}),
              serialize.sync(),
            ]),
          ),
        );
        await both;
        return errors.length > 0 ? new Error(errors.join('; ')) : rows;
      };
      expect(await round()).toEqual([...CLEAR, ...CLEAR]);
      await owner.query('CREATE OR REPLACE VIEW u AS SELECT id, code AS x FROM customers');
      const masked = await round();
      if (!(masked instanceof Error)) expect(masked).toHaveLength(4);
      expect(JSON.stringify(masked instanceof Error ? masked.message : masked)).not.toContain(SECRET);
      await owner.query('CREATE OR REPLACE VIEW u AS SELECT id, label AS x FROM customers');
      expect(await round()).toEqual([...CLEAR, ...CLEAR]);
    } finally {
      client.close();
    }
  });

  it('SQL PREPARE and EXECUTE over a view another identity redefines', async () => {
    const run = () =>
      agent.query('EXECUTE sql_t').then(
        (r) => r.rows.map((row) => row.x as string),
        (e: Error) => e,
      );
    await agent.query('PREPARE sql_t AS SELECT x FROM t ORDER BY id');
    expect(await run()).toEqual(CLEAR);
    await owner.query('CREATE OR REPLACE VIEW t AS SELECT id, code AS x FROM customers');
    expectNoSecret(await run());
    await owner.query('CREATE OR REPLACE VIEW t AS SELECT id, label AS x FROM customers');
    expect(await run()).toEqual(CLEAR);
  });
});

describe('MySQL: prepared statements are masked by the catalog in force when they run', () => {
  const DATABASE = 'staleplans';
  let proxy: ProxyProcess;
  let owner: mysql.Connection;
  let agent: mysql.Connection;

  beforeAll(async () => {
    const admin = await directMysql(mariadb);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${mariadb.users.native.user}'@'%'`);
    await admin.changeUser({ database: DATABASE });
    for (const sql of [
      'CREATE TABLE customers(id int, label text, code text)',
      `INSERT INTO customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}')`,
      'CREATE VIEW v AS SELECT id, label AS x FROM customers',
      'CREATE VIEW t AS SELECT id, label AS x FROM customers',
    ])
      await admin.query(sql);
    await admin.end();
    const config = mysqlProxyConfig(mariadb);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    proxy = await startProxyProcess(config, { extraDocuments: POLICIES });
    owner = await mysqlClient(proxy.port, { database: DATABASE, user: 'admin', password: 'admin-secret' });
    agent = await mysqlClient(proxy.port, { database: DATABASE });
  });

  afterAll(async () => {
    await agent?.end().catch(() => {});
    await owner?.end().catch(() => {});
    await proxy?.stop();
  });

  it('a COM_STMT_PREPARE statement (mysql2 execute) over a view another identity redefines', async () => {
    // mysql2 prepares a text once per connection, then only executes it.
    const run = () =>
      agent.execute('SELECT x FROM v ORDER BY id').then(
        ([rows]) => (rows as { x: string }[]).map((r) => r.x),
        (e: Error) => e,
      );
    expect(await run()).toEqual(CLEAR);
    await owner.query('CREATE OR REPLACE VIEW v AS SELECT id, code AS x FROM customers');
    expectNoSecret(await run());
    await owner.query('CREATE OR REPLACE VIEW v AS SELECT id, label AS x FROM customers');
    expect(await run()).toEqual(CLEAR);
  });

  it('SQL PREPARE and EXECUTE over a view another identity redefines', async () => {
    const run = () =>
      agent.query('EXECUTE sql_t').then(
        ([rows]) => (rows as { x: string }[]).map((r) => r.x),
        (e: Error) => e,
      );
    await agent.query("PREPARE sql_t FROM 'SELECT x FROM t ORDER BY id'");
    expect(await run()).toEqual(CLEAR);
    await owner.query('CREATE OR REPLACE VIEW t AS SELECT id, code AS x FROM customers');
    expectNoSecret(await run());
    await owner.query('CREATE OR REPLACE VIEW t AS SELECT id, label AS x FROM customers');
    expect(await run()).toEqual(CLEAR);
  });
});

describe('a policy reload reaches statements prepared before it', () => {
  const DATABASE = 'staleplans_reload';
  /** The agent's grant, first without the MaskingPolicy; the reload adds it. */
  const ACCESS = (masked: boolean) =>
    policyDocument('DatabaseAccess', 'agent', {
      subjects: [localUser('demo')],
      allow: ['read'],
      maskingPolicies: masked ? ['by-name'] : [],
    });
  const reload = (proxy: ProxyProcess, masked: boolean) => {
    const file = join(proxy.dir, 'gatehouse.yaml');
    const [from, to] = masked
      ? ['maskingPolicies: []', 'maskingPolicies:\n    - by-name']
      : ['maskingPolicies:\n    - by-name', 'maskingPolicies: []'];
    writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
  };

  it('PostgreSQL: a named statement parsed while clear is masked once the policy masks the identity', async () => {
    const admin = await freshDatabase(pgInfo, DATABASE);
    await admin.query(`
      CREATE TABLE customers(id int, label text, code text);
      INSERT INTO customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}');
    `);
    await admin.end();
    const config = localProxyConfig(pgInfo, {
      masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    });
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const proxy = await startProxyProcess(config, { extraDocuments: [POLICIES[0], ACCESS(false)] });
    const agent = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'demo',
      password: 'demo-secret',
      database: DATABASE,
    });
    try {
      await agent.connect();
      const run = () =>
        agent.query({ name: 'codes', text: 'SELECT code FROM customers ORDER BY id' }).then(
          (r) => r.rows.map((row) => row.code as string),
          (e: Error) => e,
        );
      expect(await run()).toEqual([SECRET, SECRET]);
      reload(proxy, true);
      // A plain statement shows when the reload is in force; then the prepared one must follow it.
      await expect
        .poll(async () => JSON.stringify((await agent.query('SELECT code FROM customers')).rows), {
          timeout: 5000,
          interval: 100,
        })
        .not.toContain(SECRET);
      expectNoSecret(await run());
      reload(proxy, false);
      await expect.poll(run, { timeout: 5000, interval: 100 }).toEqual([SECRET, SECRET]);
    } finally {
      await agent.end().catch(() => {});
      await proxy.stop();
    }
  });

  it('MySQL: a COM_STMT_PREPARE statement prepared while clear is masked once the policy masks the identity', async () => {
    const admin = await directMysql(mariadb);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${mariadb.users.native.user}'@'%'`);
    await admin.changeUser({ database: DATABASE });
    await admin.query('CREATE TABLE customers(id int, label text, code text)');
    await admin.query(`INSERT INTO customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}')`);
    await admin.end();
    const config = mysqlProxyConfig(mariadb);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    const proxy = await startProxyProcess(config, { extraDocuments: [POLICIES[0], ACCESS(false)] });
    const agent = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      const run = () =>
        agent.execute('SELECT code FROM customers ORDER BY id').then(
          ([rows]) => (rows as { code: string }[]).map((r) => r.code),
          (e: Error) => e,
        );
      expect(await run()).toEqual([SECRET, SECRET]);
      reload(proxy, true);
      await expect
        .poll(async () => JSON.stringify((await agent.query('SELECT code FROM customers'))[0]), {
          timeout: 5000,
          interval: 100,
        })
        .not.toContain(SECRET);
      expectNoSecret(await run());
    } finally {
      await agent.end().catch(() => {});
      await proxy.stop();
    }
  });
});
