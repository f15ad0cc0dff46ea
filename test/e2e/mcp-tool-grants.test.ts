import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadProxyConfig } from '../../sidecar/src/config/load.ts';
import { type RunningProxy, startProxy } from '../../sidecar/src/proxy.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * Per-tool permissions (`spec.mcp.tools` of a DatabaseAccess), enforced by the proxy for the tool
 * calls its own MCP server hands it in process, and the tool it records as `mcpTool`: an identity
 * that may write over the wire, granted only `query` and `list_tables` as an agent. Driven by the
 * SDK's client, through the proxy's `mcp` option (Streamable HTTP) and `gatehouse mcp --config`
 * (stdio), in front of PostgreSQL and MariaDB; and a wire client that names a tool as its
 * application, which gains, loses and is recorded as nothing more.
 */

const pgInfo = inject('postgres');
const mariadb = inject('mariadb');
const proxies: ProxyProcess[] = [];
const clients: Client[] = [];

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  for (const proxy of proxies) await proxy.stop();
});

const AGENT_ACCESS = policyDocument('DatabaseAccess', 'agent', {
  subjects: [localUser('agent')],
  allow: ['read', 'write'],
  mcp: { tools: ['query', 'list_tables'] },
});
const LOCAL_AGENT = { mode: 'local', local: { users: [{ name: 'agent', password: 'agent-secret' }] } };

interface ToolResult {
  isError?: boolean;
  content: { type: string; text: string }[];
}

async function callTool(client: Client, name: string, args: Record<string, unknown> = {}) {
  return (await client.callTool({ name, arguments: args })) as ToolResult;
}

async function httpClient(proxy: ProxyProcess): Promise<Client> {
  const ready = proxy.lines.find((line) => line.includes('gatehouse proxy listening'))!;
  const client = new Client({ name: 'e2e-agent', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL((JSON.parse(ready) as { mcp: string }).mcp)),
  );
  clients.push(client);
  return client;
}

/** `gatehouse mcp --config` over stdio: its own proxy in process, from the same config file. */
async function stdioClient(proxy: ProxyProcess, auditFile: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      '--liftoff-only',
      MAIN,
      'mcp',
      '--config',
      join(proxy.dir, 'gatehouse.yaml'),
      '--audit-file',
      auditFile,
      '--user',
      'agent',
      '--password',
      'agent-secret',
    ],
    cwd: proxy.dir,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'e2e-agent', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** The wire clients' statement records, once the proxy has written all `count` of them. */
async function wireStatements(file: string, count: number): Promise<Record<string, unknown>[]> {
  for (let waited = 0; ; waited += 50) {
    const found = records(file).filter(
      (r) =>
        r['type'] === 'statement' &&
        /^(INSERT INTO customers VALUES|DELETE FROM customers WHERE id)/.test(String(r['statement'])),
    );
    if (found.length >= count || waited > 5000) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function records(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Every way an agent granted `query` and `list_tables` may try to change data or call another tool. */
const REFUSED_CALLS: [string, Record<string, unknown>][] = [
  ['execute', { sql: 'DELETE FROM customers WHERE id = 1' }],
  ['execute', { sql: 'INSERT INTO customers VALUES (9, $$x$$)' }],
  ['execute', { sql: 'UPDATE customers SET email = NULL; DELETE FROM customers' }],
  // Even a read: the tool is what is not granted, whatever its argument.
  ['execute', { sql: 'SELECT 1' }],
  ['describe_table', { table: 'customers' }],
  ['explain', { sql: 'SELECT * FROM customers' }],
];
/** Writes through the granted `query`: refused by its own checks, or by the proxy in its READ ONLY transaction. */
const WRITES_THROUGH_QUERY = [
  'DELETE FROM customers WHERE id = 1',
  'SELECT 1; DELETE FROM customers',
  'SELECT 1 /* ; */ ; DELETE FROM customers',
  'UPDATE customers SET email = NULL',
];
const PG_WRITES_THROUGH_QUERY = [
  ...WRITES_THROUGH_QUERY,
  'WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d',
  "SELECT set_config('transaction_read_only', 'off', true)",
];
const MYSQL_WRITES_THROUGH_QUERY = [
  ...WRITES_THROUGH_QUERY,
  'SELECT * FROM customers FOR UPDATE',
  '/*!50000 DELETE FROM customers */',
];
/** Names of tools that are not the granted ones, spelled close to them. */
const LOOKALIKE_TOOLS = ['Execute', 'EXECUTE', 'execute ', 'query_execute', 'gatehouse-mcp/execute'];

async function expectToolGrantsHold(client: Client, writes: readonly string[]): Promise<void> {
  const listed = (await client.listTools()).tools.map((t) => t.name).sort();
  expect(listed).toEqual(['list_tables', 'query']);
  for (const [tool, args] of REFUSED_CALLS) {
    const result = await callTool(client, tool, args);
    expect(result.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
    expect(result.content[0]!.text).toContain(`no DatabaseAccess grants local:agent the MCP tool ${tool}`);
    expect(result.content[0]!.text).toContain('it may call list_tables, query');
  }
  for (const sql of writes) {
    const result = await callTool(client, 'query', { sql });
    expect(result.isError, sql).toBe(true);
  }
  for (const name of LOOKALIKE_TOOLS) {
    const result = await client
      .callTool({ name, arguments: { sql: 'DELETE FROM customers' } })
      .catch((error: Error) => ({ isError: true, content: [{ type: 'text', text: error.message }] }));
    expect(result.isError, name).toBe(true);
  }
  const tables = await callTool(client, 'list_tables');
  expect(tables.isError, tables.content[0]!.text).toBeFalsy();
  expect(tables.content[0]!.text).toContain('customers');
  const read = await callTool(client, 'query', { sql: 'SELECT count(*) FROM customers' });
  expect(read.isError, read.content[0]!.text).toBeFalsy();
  expect(read.content[0]!.text).toContain('"2"');
}

/** The tool the proxy records is the tool it refused or ran, and only the MCP server's sessions have one. */
function expectTrustedToolField(file: string): void {
  const all = records(file);
  const refused = all.filter((r) => r['type'] === 'connection.refused');
  expect(new Set(refused.map((r) => r['mcpTool']))).toEqual(
    new Set(['execute', 'describe_table', 'explain']),
  );
  for (const r of refused) expect(r['sqlstate']).toMatch(/^(42501|42000)$/);
  const statements = all.filter((r) => r['type'] === 'statement');
  const byTool = statements.filter((r) => r['mcpTool'] !== undefined);
  expect(new Set(byTool.map((r) => r['mcpTool']))).toEqual(new Set(['query', 'list_tables']));
  // Whatever ran under `query` was a read: nothing written, and nothing marked with another tool.
  for (const r of byTool) expect(r['application']).toBe(`gatehouse-mcp/${r['mcpTool']}`);
  expect(
    byTool.some((r) => r['mcpTool'] === 'query' && String(r['statement']).startsWith('SELECT count')),
  ).toBe(true);
}

/**
 * The proxy from the same config file in this process, as `gatehouse mcp --config` runs it: its
 * in-process channel lets the test send what the MCP server never would under a reading tool.
 */
async function inThisProcess(proxy: ProxyProcess): Promise<RunningProxy> {
  const config = loadProxyConfig(join(proxy.dir, 'gatehouse.yaml'), {
    listen: '127.0.0.1:0',
    auditFile: join(proxy.dir, 'in-process-audit.jsonl'),
  });
  const { admin: _admin, mcp: _mcp, ...rest } = config;
  return startProxy(rest, { logger: pino({ level: 'silent' }) });
}

/** Writes the proxy refuses in a session it knows is a `query` call, though the grants allow writes. */
const WRITES_UNDER_QUERY = [
  'DELETE FROM customers WHERE id = 1',
  'UPDATE customers SET email = NULL',
  'INSERT INTO customers VALUES (11, NULL)',
  'DROP TABLE customers',
];

/**
 * The same declared application, `gatehouse-mcp/query`, from the MCP server (which the proxy marks)
 * and from a wire client (which it does not): the label is the client's, the field the proxy's.
 */
function expectClaimedApartFromTrusted(file: string): void {
  const labelled = records(file).filter(
    (r) => r['type'] === 'statement' && r['application'] === 'gatehouse-mcp/query',
  );
  expect(labelled.filter((r) => r['mcpTool'] === 'query').length).toBeGreaterThan(0);
  expect(labelled.filter((r) => r['mcpTool'] === undefined).length).toBeGreaterThan(0);
}

describe('PostgreSQL: an agent granted query and list_tables', () => {
  let proxy: ProxyProcess;
  let admin: pg.Client;
  beforeAll(async () => {
    admin = await freshDatabase(pgInfo, 'mcp_tool_grants');
    await admin.query(`CREATE TABLE customers(id int PRIMARY KEY, email text);
      INSERT INTO customers VALUES (1, 'a@example.com'), (2, 'b@example.com');`);
    const config = localProxyConfig(pgInfo, {
      identity: LOCAL_AGENT,
      mcp: { listen: '127.0.0.1:0', user: 'agent', password: { value: 'agent-secret' } },
    });
    (config['upstream'] as Record<string, unknown>)['database'] = 'mcp_tool_grants';
    proxy = await startProxyProcess(config, { extraDocuments: [AGENT_ACCESS] });
    proxies.push(proxy);
  }, 60_000);
  afterAll(async () => {
    await admin?.end();
  });

  it.each([
    [
      'the proxy’s mcp option (Streamable HTTP)',
      (p: ProxyProcess) => httpClient(p),
      (p: ProxyProcess) => p.auditFile!,
    ],
    [
      'gatehouse mcp --config (stdio)',
      (p: ProxyProcess) => stdioClient(p, join(p.dir, 'stdio-audit.jsonl')),
      (p: ProxyProcess) => join(p.dir, 'stdio-audit.jsonl'),
    ],
  ])(
    'through %s, lists and runs only those, and the audit names the tool',
    async (_name, connect, audit) => {
      const client = await connect(proxy);
      await expectToolGrantsHold(client, PG_WRITES_THROUGH_QUERY);
      await client.close();
      expect((await admin.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(2);
      expectTrustedToolField(audit(proxy));
    },
    60_000,
  );

  it('a session handed in as a query call runs reads only, at the proxy, though the grants allow writes', async () => {
    const running = await inThisProcess(proxy);
    try {
      for (const sql of [
        ...WRITES_UNDER_QUERY,
        'SELECT 1; DELETE FROM customers',
        'WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d',
      ]) {
        const client = new pg.Client({
          stream: () => running.inProcess.connect('query'),
          user: 'agent',
          password: 'agent-secret',
          database: 'app',
        });
        await client.connect();
        const error = await client.query(sql).then(
          () => undefined,
          (e: { code?: string; message: string }) => e,
        );
        await client.end();
        expect(error?.code, sql).toBe('42501');
        expect(error?.message).toMatch(/the MCP tool query runs read only/);
      }
      const plan = new pg.Client({
        stream: () => running.inProcess.connect('query'),
        user: 'agent',
        password: 'agent-secret',
        database: 'app',
      });
      await plan.connect();
      expect((await plan.query('EXPLAIN DELETE FROM customers WHERE id = 1')).rows.length).toBeGreaterThan(0);
      await plan.end();
    } finally {
      await running.close(0);
    }
    expect((await admin.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(2);
  });

  it('a wire client naming a tool as its application gains, loses and is recorded as nothing more', async () => {
    for (const name of ['gatehouse-mcp/execute', 'gatehouse-mcp/query', 'execute']) {
      const wire = new pg.Client({
        host: '127.0.0.1',
        port: proxy.port,
        user: 'agent',
        password: 'agent-secret',
        database: 'app',
        application_name: name,
      });
      await wire.connect();
      // Its grants allow writes over the wire, with or without the label: the tool list is not theirs.
      await wire.query('INSERT INTO customers VALUES (10, $1)', [name]);
      await wire.query('DELETE FROM customers WHERE id = 10');
      await wire.end();
    }
    const wireRecords = await wireStatements(proxy.auditFile!, 6);
    expect(wireRecords).toHaveLength(6);
    for (const r of wireRecords) {
      expect(r['outcome']).toBe('ok');
      expect(r).not.toHaveProperty('mcpTool');
    }
    expect(wireRecords.map((r) => r['application'])).toContain('gatehouse-mcp/execute');
    expectClaimedApartFromTrusted(proxy.auditFile!);
  });
});

describe('MariaDB: an agent granted query and list_tables', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    const direct = await directMysql(mariadb);
    await direct.query(`DROP DATABASE IF EXISTS mcp_tool_grants; CREATE DATABASE mcp_tool_grants; USE mcp_tool_grants;
      CREATE TABLE customers(id int PRIMARY KEY, email text);
      INSERT INTO customers VALUES (1, 'a@example.com'), (2, 'b@example.com');`);
    await direct.query(`GRANT ALL PRIVILEGES ON mcp_tool_grants.* TO '${mariadb.users.native.user}'@'%'`);
    await direct.end();
    const config = mysqlProxyConfig(mariadb, {
      identity: LOCAL_AGENT,
      mcp: { listen: '127.0.0.1:0', user: 'agent', password: { value: 'agent-secret' } },
    });
    (config['upstream'] as Record<string, unknown>)['database'] = 'mcp_tool_grants';
    proxy = await startProxyProcess(config, { extraDocuments: [AGENT_ACCESS] });
    proxies.push(proxy);
  }, 60_000);

  async function count(): Promise<number> {
    const direct = await directMysql(mariadb, 'mcp_tool_grants');
    const [rows] = await direct.query('SELECT count(*) AS n FROM customers');
    await direct.end();
    return Number((rows as { n: number }[])[0]!.n);
  }

  it('through the proxy’s mcp option, lists and runs only those, and the audit names the tool', async () => {
    const client = await httpClient(proxy);
    await expectToolGrantsHold(client, MYSQL_WRITES_THROUGH_QUERY);
    await client.close();
    expect(await count()).toBe(2);
    expectTrustedToolField(proxy.auditFile!);
  }, 60_000);

  it('a session handed in as a query call runs reads only, at the proxy, though the grants allow writes', async () => {
    const running = await inThisProcess(proxy);
    try {
      for (const sql of WRITES_UNDER_QUERY) {
        const connection = await mysql.createConnection({
          stream: () => running.inProcess.connect('query'),
          user: 'agent',
          password: 'agent-secret',
          enableCleartextPlugin: true,
        } as mysql.ConnectionOptions);
        connection.on('error', () => {});
        const error = await connection.query(sql).then(
          () => undefined,
          (e: { errno?: number; message: string }) => e,
        );
        await connection.end();
        expect([1142, 1227], sql).toContain(error?.errno);
        expect(error?.message).toMatch(/the MCP tool query runs read only/);
      }
    } finally {
      await running.close(0);
    }
    expect(await count()).toBe(2);
  });

  it('a wire client naming a tool as its program gains, loses and is recorded as nothing more', async () => {
    for (const name of ['gatehouse-mcp/execute', 'gatehouse-mcp/query']) {
      const wire = await mysqlClient(proxy.port, {
        user: 'agent',
        password: 'agent-secret',
        database: 'mcp_tool_grants',
        connectAttributes: { program_name: name, mcpTool: 'execute' },
      });
      await wire.query('INSERT INTO customers VALUES (10, ?)', [name]);
      await wire.query('DELETE FROM customers WHERE id = 10');
      await wire.end();
    }
    const wireRecords = await wireStatements(proxy.auditFile!, 4);
    expect(wireRecords).toHaveLength(4);
    for (const r of wireRecords) {
      expect(r['outcome']).toBe('ok');
      expect(r).not.toHaveProperty('mcpTool');
    }
    expect(wireRecords.map((r) => r['application'])).toContain('gatehouse-mcp/execute');
    expectClaimedApartFromTrusted(proxy.auditFile!);
    expect(await count()).toBe(2);
  });
});
