import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { verifyAuditLogFile } from '../../sidecar/src/audit/verify.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A standalone proxy restarted keeps what people approved that still stands (a statement's shape for
 * a period, an access request), rebuilt from its signed audit log; what was denied or has ended does
 * not come back, and a statement held across the restart asks anew.
 */

const pgInfo = inject('postgres');
const DATABASE = 'approvals_restart_e2e';
const WAIT_SECONDS = 2;
const EMAIL = 'ann@example.com';
let proxy: ProxyProcess;
let admin: pg.Client;
let config: Record<string, unknown>;
let documents: unknown[];
const { api, pendingFor } = approvalsClient(() => proxy.adminPort);

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE orders(id int); CREATE TABLE drafts(id int); CREATE TABLE scratch(id int);
    CREATE TABLE customers(id int, email text, ssn text);
    INSERT INTO customers VALUES (1, '${EMAIL}', '123-45-6789');`);
  // The log and its key outlive each run, as the quickstart keeps them beside its data.
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-restart-'));
  const keyFile = join(dir, 'signing.pem');
  writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  config = localProxyConfig(pgInfo, {
    identity: {
      mode: 'local',
      local: {
        users: [
          { name: 'demo', password: 'demo-secret' },
          { name: 'lead', password: 'lead-secret', groups: ['approvers'] },
        ],
      },
    },
    audit: { file: join(dir, 'audit.jsonl'), stdout: false, signingKeyFile: keyFile },
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  const approvers = [{ kind: 'Group', name: 'approvers' }];
  documents = [
    policyDocument('Guardrail', 'holds', {
      rules: [
        {
          name: 'sweeping',
          kinds: ['delete-without-where'],
          action: 'requireApproval',
          approval: { approvers, waitSeconds: WAIT_SECONDS, ttlSeconds: 120 },
        },
      ],
    }),
    policyDocument('MaskingPolicy', 'pii', { autoDetect: true, accessRequests: { approvers } }),
    policyDocument('DatabaseAccess', 'people', {
      subjects: [localUser('demo'), localUser('lead')],
      allow: ['read', 'write'],
      guardrails: ['holds'],
      maskingPolicies: ['pii'],
    }),
  ];
  proxy = await startProxyProcess(config, { extraDocuments: documents });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

async function client(): Promise<pg.Client> {
  const c = await pgClient(proxy.port, 'demo', 'demo-secret', DATABASE);
  c.on('error', () => {});
  return c;
}

/** Runs `sql` as demo; held, `decide` decides it as lead. The statement's outcome. */
async function held(sql: string, decide: (id: string) => Promise<unknown>): Promise<unknown> {
  const c = await client();
  try {
    const running = c.query(sql).catch((e: unknown) => e);
    await decide((await pendingFor(sql)).id);
    return await running;
  } finally {
    await c.end();
  }
}

/** What `sql` does now, as demo: its rows, or the error, and how long it took. */
async function attempt(sql: string): Promise<{ result: unknown; ms: number }> {
  const c = await client();
  const started = performance.now();
  try {
    const result = await c.query({ text: sql, rowMode: 'array' }).then(
      (r) => r.rows,
      (e: unknown) => e,
    );
    return { result, ms: performance.now() - started };
  } finally {
    await c.end();
  }
}

async function requestAccess(columns: string[]): Promise<string> {
  const opened = await api('/approvals/access-requests', 'demo', {
    database: DATABASE,
    columns,
    forSeconds: 600,
    reason: 'ticket 9',
  });
  expect(opened.status).toBe(201);
  return opened.body.id as string;
}

describe('PostgreSQL: approvals across a restart of a standalone proxy', () => {
  it('keeps a standing shape approval and access request, and nothing denied or ended', async () => {
    const approve = (body: Record<string, unknown>) => (id: string) =>
      api(`/approvals/${id}/approve`, 'lead', { reason: 'nightly job', ...body });
    expect(await held('DELETE FROM orders', approve({ shapeForSeconds: 3600 }))).toMatchObject({
      command: 'DELETE',
    });
    expect(await held('DELETE FROM scratch', approve({ shapeForSeconds: 1 }))).toMatchObject({
      command: 'DELETE',
    });
    const denied = await held('DELETE FROM drafts', (id) =>
      api(`/approvals/${id}/deny`, 'lead', { reason: 'no' }),
    );
    expect(denied).toMatchObject({ code: '42501' });
    const email = await requestAccess(['customers.email']);
    expect((await api(`/approvals/${email}/approve`, 'lead', { reason: 'support case' })).status).toBe(200);
    const ssn = await requestAccess(['customers.ssn']);
    expect((await api(`/approvals/${ssn}/deny`, 'lead', { reason: 'not needed' })).status).toBe(200);
    expect((await attempt('SELECT email, ssn FROM customers')).result).toEqual([[EMAIL, '****']]);
    // A request still Pending when the proxy stops: its session ends with it.
    const pending = await requestAccess(['customers.id']);

    expect(await proxy.stop()).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the 1 s shape approval ends meanwhile
    proxy = await startProxyProcess(config, { extraDocuments: documents });

    // The approved shape runs at once, for as long as the approver said.
    const shape = await attempt('delete from orders');
    expect(shape.result).toEqual([]);
    expect(shape.ms).toBeLessThan(WAIT_SECONDS * 1000);
    // The access request is still in force; the denied one still is not.
    expect((await attempt('SELECT email, ssn FROM customers')).result).toEqual([[EMAIL, '****']]);
    // Denied, and a shape approval that ended: held again, and still pending when the wait ends.
    for (const sql of ['DELETE FROM drafts', 'DELETE FROM scratch']) {
      const again = await attempt(sql);
      expect(again.result, sql).toMatchObject({ code: '42501' });
      expect((again.result as Error).message).toContain(`is still pending after ${WAIT_SECONDS} s`);
    }
    const restored = proxy.lines.find((l) => l.includes('approvals restored from the audit log'));
    expect(restored, proxy.lines.join('\n')).toBeDefined();
    // The request left Pending is ended as Withdrawn, in the chain of the new run.
    expect((await api(`/approvals/${pending}`, 'demo')).body.phase).toBe('Withdrawn');
    expect((await api(`/approvals/${pending}/approve`, 'lead', { reason: 'late' })).status).not.toBe(200);

    expect(await proxy.stop()).toBe(0);
    const verified = await verifyAuditLogFile((config['audit'] as { file: string }).file);
    expect(verified.ok, JSON.stringify(verified.firstBad)).toBe(true);
    proxy = await startProxyProcess(config, { extraDocuments: documents });
  }, 60_000);
});
