import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { mysql as mysqlCli } from '../harness/mysql-cli.ts';
import { directMysql } from './support/mysql.ts';
import { type ProxyProcess, REPO_ROOT, startProxyProcess } from './support/proxy-process.ts';

const server = inject('mariadb');
const QUICKSTART_CONFIG = join(REPO_ROOT, 'examples/quickstart/gatehouse.yaml');
let proxy: ProxyProcess;

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(
    'CREATE TABLE IF NOT EXISTS quickstart_notes(id int primary key, body text); REPLACE INTO quickstart_notes VALUES (1, "hello")',
  );
  await admin.end();
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
    args: [
      '--upstream',
      `mysql://${native.user}:${native.password}@${server.host}:${server.port}/${server.database}`,
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
});

const run = (user: string, password: string, sql: string) =>
  mysqlCli(['--skip-column-names', '-e', sql], { server, login: { user, password }, port: proxy.port });

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

  it('lets admin change the schema, and asks for approval of its DROP', async () => {
    const alter = await run('admin', 'admin', 'ALTER TABLE quickstart_notes COMMENT = "x"');
    expect(alter.stderr).toBe('');
    const drop = await run('admin', 'admin', 'DROP TABLE quickstart_notes');
    expect(drop.stderr).toMatch(/ERROR 1142[\s\S]*approval/);
    const admin = await directMysql(server);
    const [tables] = await admin.query("SHOW TABLES LIKE 'quickstart_notes'");
    await admin.end();
    expect((tables as unknown[]).length).toBe(1);
  });

  it('refuses an unknown user with 1045', async () => {
    expect((await run('mallory', 'x', 'SELECT 1')).stderr).toMatch(/ERROR 1045/);
  });
});
