import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type pg from 'pg';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  createTestIssuer,
  serviceAccountClaims,
  type TestIssuer,
} from '../../sidecar/src/identity/test-issuer.ts';
import { policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * `gatehouse mcp --token-file` against a proxy in token mode: the agent is who its token says, the
 * file is read at each call (a rotated token is used at once), and a bad token gets no session.
 */

const pgInfo = inject('postgres');
const ISSUER = 'https://issuer.mcp.test';
const AUDIENCE = 'gatehouse.dev';
let proxy: ProxyProcess;
let admin: pg.Client;
let issuer: TestIssuer;
let client: Client;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mcp-token-'));
const tokenFile = join(dir, 'token');

const tokenFor = (name: string) =>
  issuer.sign(serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'ai', name }));

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, 'mcp_token_e2e');
  await admin.query("CREATE TABLE notes(id int, body text); INSERT INTO notes VALUES (1, 'hello')");
  issuer = await createTestIssuer('ES256', 'k1');
  const keyFile = join(dir, 'issuer.pem');
  writeFileSync(keyFile, issuer.publicPem);
  const config = localProxyConfig(pgInfo, {
    identity: { mode: 'token', token: { issuer: ISSUER, audience: AUDIENCE, publicKeyFile: keyFile } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = 'mcp_token_e2e';
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('DatabaseAccess', 'agents', {
        subjects: [
          { kind: 'ServiceAccount', namespace: 'ai', name: 'support-agent' },
          { kind: 'ServiceAccount', namespace: 'ai', name: 'rotated-agent' },
        ],
        allow: ['read'],
      }),
    ],
  });
  writeFileSync(tokenFile, `${await tokenFor('support-agent')}\n`);
  client = new Client({ name: 'e2e-agent', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: ['--liftoff-only', MAIN, 'mcp', '--proxy', `127.0.0.1:${proxy.port}`, '--token-file', tokenFile],
      stderr: 'pipe',
    }),
  );
}, 60_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await admin?.end();
});

type ToolResult = { isError?: boolean; content: { text: string }[] };
const query = async (sql: string) =>
  (await client.callTool({ name: 'query', arguments: { sql } })) as ToolResult;

function statementSubjects(): string[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((r) => r['type'] === 'statement' && r['application'] === 'gatehouse-mcp/query')
    .map((r) => r['subject'] as string);
}

it('acts as the token says, and reads a rotated token at the next call', async () => {
  const first = await query('SELECT body FROM notes');
  expect(first.isError).toBeFalsy();
  expect(first.content[0]!.text).toContain('"hello"');
  writeFileSync(tokenFile, await tokenFor('rotated-agent'));
  expect((await query('SELECT 1')).isError).toBeFalsy();
  const subjects = new Set(statementSubjects());
  expect(subjects).toEqual(
    new Set(['system:serviceaccount:ai:support-agent', 'system:serviceaccount:ai:rotated-agent']),
  );
});

it('gets no session with a token the proxy does not accept, or one no grant names', async () => {
  const stranger = await createTestIssuer('ES256', 'k1');
  writeFileSync(
    tokenFile,
    await stranger.sign(
      serviceAccountClaims({ issuer: ISSUER, audience: AUDIENCE, namespace: 'ai', name: 'support-agent' }),
    ),
  );
  const forged = await query('SELECT 1');
  expect(forged.isError).toBe(true);
  expect(forged.content[0]!.text).toMatch(/the proxy refused the agent's login.*28P01/s);
  writeFileSync(tokenFile, await tokenFor('someone-else'));
  const ungranted = await query('SELECT 1');
  expect(ungranted.isError).toBe(true);
  expect(ungranted.content[0]!.text).toMatch(
    /no DatabaseAccess grants system:serviceaccount:ai:someone-else/,
  );
});
