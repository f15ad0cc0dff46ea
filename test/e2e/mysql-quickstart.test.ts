import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { directClient } from './support/clients.ts';
import { directMysql, mysqlClient } from './support/mysql.ts';
import { type ProxyProcess, REPO_ROOT, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const pgInfo = inject('postgres');
const QUICKSTART_CONFIG = join(REPO_ROOT, 'examples/quickstart/gatehouse.yaml');
/** The shop the docs load into the MariaDB a user starts. */
const SHOP = 'shop';
let proxy: ProxyProcess;
let seedLoad: { stdout: string; stderr: string };

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(
    `DROP DATABASE IF EXISTS ${SHOP}; CREATE DATABASE ${SHOP}; GRANT ALL PRIVILEGES ON ${SHOP}.* TO '${server.users.native.user}'@'%'`,
  );
  await admin.end();
  // The seed as the docs load it: the mysql client reading the shipped file.
  seedLoad = await mysqlCli([], {
    server,
    database: SHOP,
    input: readFileSync(join(REPO_ROOT, 'examples/quickstart/seed-mysql.sql'), 'utf8'),
    timeoutMs: 60_000,
  });
  const shop = await directMysql(server, SHOP);
  await shop.query(
    'CREATE TABLE quickstart_notes(id int primary key, body text); INSERT INTO quickstart_notes VALUES (1, "hello")',
  );
  await shop.end();
  // The quickstart file as shipped, but on free ports with the audit log in a directory of its own.
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mysql-quickstart-'));
  const text = readFileSync(QUICKSTART_CONFIG, 'utf8');
  const config = parseAllDocuments(text)[0]!.toJS() as Record<string, unknown>;
  const policy = text
    .split(/^---$/m)
    .slice(1)
    .map((doc) => parseAllDocuments(doc)[0]!.toJS() as unknown);
  config['audit'] = { file: join(dir, 'audit.jsonl'), stdout: false };
  delete config['listen'];
  delete config['admin'];
  // The proxy names its port in an info line.
  config['log'] = { level: 'info' };
  const { native } = server.users;
  // The command line of the issue: the URL's scheme selects the protocol.
  proxy = await startProxyProcess(config, {
    extraDocuments: policy,
    args: ['--upstream', `mysql://${native.user}:${native.password}@${server.host}:${server.port}/${SHOP}`],
  });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
});

const run = (user: string, password: string, sql: string) =>
  mysqlCli(['--skip-column-names', '-e', sql], {
    server,
    login: { user, password },
    port: proxy.port,
    database: SHOP,
  });

describe('the MySQL seed (examples/quickstart/seed-mysql.sql)', () => {
  it('loads with the mysql client into MariaDB', async () => {
    expect(seedLoad.stderr).toBe('');
    const shop = await directMysql(server, SHOP);
    try {
      const [rows] = await shop.query(
        'SELECT (SELECT COUNT(*) FROM customers) AS customers, (SELECT COUNT(*) FROM products) AS products, (SELECT COUNT(*) FROM orders) AS orders',
      );
      expect(rows).toEqual([{ customers: 200, products: 12, orders: 1000 }]);
    } finally {
      await shop.end();
    }
  });

  it('holds the same shop as seed.sql on PostgreSQL, row for row', async () => {
    const bootstrap = await directClient(pgInfo);
    await bootstrap.query('DROP DATABASE IF EXISTS quickstart_seed');
    await bootstrap.query('CREATE DATABASE quickstart_seed');
    await bootstrap.end();
    const pg = await directClient({ ...pgInfo, database: 'quickstart_seed' });
    const shop = await directMysql(server, SHOP);
    try {
      await pg.query(readFileSync(join(REPO_ROOT, 'examples/quickstart/seed.sql'), 'utf8'));
      const pgRows = async (sql: string) =>
        (await pg.query({ text: sql, rowMode: 'array' })).rows.map(String);
      const myRows = async (sql: string) =>
        ((await shop.query({ sql, rowsAsArray: true }))[0] as unknown[][]).map(String);
      expect(
        await myRows(
          "SELECT id, name, email, phone, ssn, card_number, DATE_FORMAT(date_of_birth, '%Y-%m-%d'), address, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s') FROM customers ORDER BY id",
        ),
      ).toEqual(
        await pgRows(
          "SELECT id, name, email, phone, ssn, card_number, to_char(date_of_birth, 'YYYY-MM-DD'), address, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM customers ORDER BY id",
        ),
      );
      expect(await myRows('SELECT id, sku, name, category, price FROM products ORDER BY id')).toEqual(
        await pgRows('SELECT id, sku, name, category, price FROM products ORDER BY id'),
      );
      expect(
        await myRows(
          "SELECT id, customer_id, amount, status, shipped_to, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s') FROM orders ORDER BY id",
        ),
      ).toEqual(
        await pgRows(
          "SELECT id, customer_id, amount, status, shipped_to, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM orders ORDER BY id",
        ),
      );
    } finally {
      await pg.end();
      await shop.end();
    }
  });

  it('is masked for demo and clear for admin through the quickstart policy', async () => {
    const direct = await directMysql(server, SHOP);
    const [[clear]] = (await direct.query(
      'SELECT name, email, phone, ssn, card_number, address FROM customers WHERE id = 7',
    )) as unknown as [[Record<string, string>]];
    await direct.end();
    const demo = await mysqlClient(proxy.port, { user: 'demo', password: 'demo', database: SHOP });
    const admin = await mysqlClient(proxy.port, { user: 'admin', password: 'admin', database: SHOP });
    try {
      const sql = 'SELECT name, email, phone, ssn, card_number, address FROM customers WHERE id = 7';
      const [[masked]] = (await demo.query(sql)) as unknown as [[Record<string, string>]];
      for (const column of Object.keys(clear)) expect(masked[column], column).not.toBe(clear[column]);
      // Card numbers keep their last four digits; emails are tokens of the same shape.
      expect(masked['card_number']!.slice(-4)).toBe(clear['card_number']!.slice(-4));
      expect(masked['email']).toMatch(/@/);
      const [[seen]] = (await admin.query(sql)) as unknown as [[Record<string, string>]];
      expect(seen).toEqual(clear);
      // What is not personal stays exact for demo.
      const [totals] = await demo.query(
        'SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY status',
      );
      expect((totals as { n: number }[]).reduce((sum, r) => sum + Number(r.n), 0)).toBe(1000);
    } finally {
      await demo.end();
      await admin.end();
    }
  });
});

describe('the quickstart policy in front of MariaDB', () => {
  it('lets demo read and write; refuses its DELETE without WHERE (1142, guardrail) and its DROP (1227, grant)', async () => {
    expect((await run('demo', 'demo', 'SELECT body FROM quickstart_notes WHERE id = 1')).stdout.trim()).toBe(
      'hello',
    );
    const unfiltered = await run('demo', 'demo', 'DELETE FROM quickstart_notes');
    expect(unfiltered.stderr).toMatch(/ERROR 1142 \(42000\)[\s\S]*guardrail "defaults"/);
    const drop = await run('demo', 'demo', 'DROP TABLE quickstart_notes');
    expect(drop.stderr).toMatch(/ERROR 1227 \(42000\)[\s\S]*DatabaseAccess "demo" does not allow ddl/);
    expect((await run('demo', 'demo', 'SELECT COUNT(*) FROM quickstart_notes')).stdout.trim()).toBe('1');
  });

  it('lets admin change the schema, and holds its DROP for approval until lead decides', async () => {
    const alter = await run('admin', 'admin', 'ALTER TABLE quickstart_notes COMMENT = "x"');
    expect(alter.stderr).toBe('');
    const dropping = run('admin', 'admin', 'DROP TABLE quickstart_notes');
    const lead = `Basic ${Buffer.from('lead:lead').toString('base64')}`;
    const approvals = `http://127.0.0.1:${proxy.adminPort}/approvals`;
    let id: string | undefined;
    for (let i = 0; i < 200 && !id; i++) {
      const pending = (await (
        await fetch(`${approvals}?phase=Pending`, { headers: { authorization: lead } })
      ).json()) as { id: string; statement: string }[];
      id = pending.find((r) => r.statement === 'DROP TABLE quickstart_notes')?.id;
      if (!id) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(id).toBeDefined();
    const denied = await fetch(`${approvals}/${id}/deny`, {
      method: 'POST',
      headers: { authorization: lead, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'keep the notes' }),
    });
    expect(denied.status).toBe(200);
    const drop = await dropping;
    expect(drop.stderr).toMatch(
      new RegExp(`ERROR 1142[\\s\\S]*request ${id} was denied by local:lead: keep the notes`),
    );
    const admin = await directMysql(server, SHOP);
    const [tables] = await admin.query("SHOW TABLES LIKE 'quickstart_notes'");
    await admin.end();
    expect((tables as unknown[]).length).toBe(1);
  });

  it('refuses an unknown user with 1045', async () => {
    expect((await run('mallory', 'x', 'SELECT 1')).stderr).toMatch(/ERROR 1045/);
  });
});
