import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient, proxyDsn } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A statement a requireApproval rule holds waits in its own session, through the real proxy, real
 * PostgreSQL and real clients (psql, node-postgres), and is released or refused by a person deciding
 * through the approvals API as a different user.
 */

const pgInfo = inject('postgres');
const DATABASE = 'approvals_e2e';
const WAIT_SECONDS = 4;
let proxy: ProxyProcess;
let admin: pg.Client;
const notifications: Record<string, unknown>[] = [];
const receiver = createServer((request, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  request.on('end', () => {
    notifications.push(JSON.parse(text) as Record<string, unknown>);
    response.writeHead(200).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/approvals`;
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE SCHEMA staging;
    CREATE TABLE staging.batches(id int);
    CREATE TABLE orders(id int, note text);`);
  const config = localProxyConfig(pgInfo, approvalUsers('demo', 'viewer'));
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('Guardrail', 'holds', {
        rules: [
          {
            name: 'sweeping',
            kinds: ['drop', 'truncate', 'delete-without-where', 'update-without-where'],
            action: 'requireApproval',
            approval: {
              approvers: [{ kind: 'Group', name: 'approvers' }],
              waitSeconds: WAIT_SECONDS,
              ttlSeconds: 120,
              notify: [{ type: 'webhook', url: hook }],
              autoApprove: [{ name: 'staging', tables: ['staging.*'] }],
            },
          },
        ],
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo'), localUser('lead')],
        allow: ['read', 'write', 'ddl'],
        guardrails: ['holds'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
  await new Promise((resolve) => receiver.close(resolve));
});

async function seed(): Promise<void> {
  await admin.query(
    "TRUNCATE orders, staging.batches; INSERT INTO orders SELECT g, 'x' FROM generate_series(1, 5) g",
  );
}

const { api, pendingFor } = approvalsClient(() => proxy.adminPort);

async function client(user = 'demo'): Promise<pg.Client> {
  const c = await pgClient(proxy.port, user, `${user}-secret`, DATABASE);
  c.on('error', () => {});
  return c;
}

async function auditRecordsUntil(
  done: (records: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  let records: Record<string, unknown>[] = [];
  for (let i = 0; i < 100; i++) {
    records = readFileSync(proxy.auditFile!, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    if (done(records)) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return records;
}

const count = async () => Number((await admin.query('SELECT count(*) FROM orders')).rows[0].count);

describe('PostgreSQL: a statement held for approval', () => {
  it('psql waits, prints the request, and runs the statement once another user approves it', async () => {
    await seed();
    const dsn = proxyDsn(proxy.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
    const run = new Promise<{ stdout: string; stderr: string; code: number; doneAt: number }>((resolve) => {
      const child = spawn('/usr/bin/psql', [dsn, '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'DELETE FROM orders'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1, doneAt: performance.now() }));
    });
    const request = await pendingFor('DELETE FROM orders');
    // Another session of the same proxy is not held meanwhile.
    const other = await client();
    expect((await other.query('SELECT count(*) FROM orders')).rows[0].count).toBe('5');
    await other.end();
    expect(await count()).toBe(5);
    // The requester cannot see it decided by someone who is not an approver, nor decide it themselves.
    expect((await api(`/approvals/${request.id}/approve`, 'viewer', { reason: 'x' })).status).toBe(404);
    expect((await api(`/approvals/${request.id}/approve`, 'demo', { reason: 'mine' })).status).toBe(403);
    const approvedAt = performance.now();
    const decided = await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'backup taken' });
    expect(decided.status).toBe(200);
    const result = await run;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('DELETE 5');
    expect(result.stderr).toContain(`statement held for approval: request ${request.id}`);
    expect(await count()).toBe(0);
    // From the approval to the statement's end, well under a second.
    expect(result.doneAt - approvedAt).toBeLessThan(1000);
    console.log(`approval to completion: ${(result.doneAt - approvedAt).toFixed(0)} ms`);

    // The outcome record follows the statement's answer, written at the end of the proxy's turn.
    const records = await auditRecordsUntil((all) => all.some((r) => r['approval'] === request.id));
    const steps = records.filter((r) => r['type'] === 'approval' && r['request'] === request.id);
    expect(steps.map((r) => r['event'])).toEqual(['requested', 'approved', 'executed']);
    expect(steps[1]).toMatchObject({ by: 'local:lead', reason: 'backup taken', subject: 'local:demo' });
    const statement = records.find((r) => r['type'] === 'statement' && r['approval'] === request.id);
    expect(statement).toMatchObject({ outcome: 'ok', command: 'DELETE', rows: 5, subject: 'local:demo' });
    expect(String(statement?.['reason'])).toContain('approved: holds/sweeping');
    // The webhook heard of it, with the shape only.
    expect(notifications).toContainEqual(
      expect.objectContaining({
        type: 'gatehouse.approval.requested',
        request: expect.objectContaining({ id: request.id, shape: 'DELETE FROM orders' }),
      }),
    );
  });

  it('answers a denial with 42501, the approver and the reason; nothing runs', async () => {
    await seed();
    const c = await client();
    const running = c.query('TRUNCATE orders').then(
      () => undefined,
      (error: unknown) => error as pg.DatabaseError,
    );
    const request = await pendingFor('TRUNCATE orders');
    expect(
      (await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'not during the sale' })).status,
    ).toBe(200);
    const error = await running;
    expect(error?.code).toBe('42501');
    expect(error?.message).toContain(`request ${request.id} was denied by local:lead: not during the sale`);
    expect(await count()).toBe(5);
    // The session goes on.
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
  });

  it('stops waiting after waitSeconds; approved later, the identical text runs once, and no other text does', async () => {
    await seed();
    const c = await client();
    const started = performance.now();
    const first = await c.query('DELETE FROM orders').catch((e: unknown) => e as pg.DatabaseError);
    const waited = performance.now() - started;
    expect(first).toBeInstanceOf(Error);
    expect((first as pg.DatabaseError).code).toBe('42501');
    expect((first as pg.DatabaseError).message).toMatch(/is still pending after 4 s/);
    expect(waited).toBeGreaterThanOrEqual(WAIT_SECONDS * 1000 - 100);
    const id = /request (ar-[0-9a-f]+)/.exec((first as Error).message)![1]!;
    expect((await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok, later' })).status).toBe(200);
    // Another spelling is another statement: held anew (and refused here by its own short wait).
    const spelled = c.query('DELETE  FROM orders').catch((e: unknown) => e as Error);
    const other = await pendingFor('DELETE  FROM orders');
    expect(other.id).not.toBe(id);
    await api(`/approvals/${other.id}/deny`, 'lead', { reason: 'not that one' });
    expect(String(await spelled)).toContain('was denied');
    expect(await count()).toBe(5);
    // The identical text runs at once, once.
    const again = await c.query('DELETE FROM orders');
    expect(again.rowCount).toBe(5);
    await seed();
    const third = c.query('DELETE FROM orders').catch((e: unknown) => e as Error);
    const renewed = await pendingFor('DELETE FROM orders');
    expect(renewed.id).not.toBe(id);
    await api(`/approvals/${renewed.id}/deny`, 'lead', { reason: 'once is enough' });
    expect(String(await third)).toContain('was denied');
    await c.end();
  }, 30_000);

  it("withdraws the request when the client cancels (psql's Ctrl-C)", async () => {
    await seed();
    const dsn = proxyDsn(proxy.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
    const child = spawn('/usr/bin/psql', [dsn, '-X', '-c', 'DROP TABLE orders'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    const request = await pendingFor('DROP TABLE orders');
    child.kill('SIGINT');
    expect(await closed).not.toBe(0);
    expect(stderr).toContain('was withdrawn');
    const { body } = await api(`/approvals/${request.id}`, 'lead');
    expect(body.phase).toBe('Withdrawn');
    expect(await count()).toBe(5);
  });

  it('an approver may not approve their own request', async () => {
    await seed();
    const c = await client('lead');
    const running = c.query('TRUNCATE orders').catch((e: unknown) => e as Error);
    const request = await pendingFor('TRUNCATE orders');
    const own = await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'mine' });
    expect(own.status).toBe(403);
    expect(own.body.problem).toBe('self-approval');
    expect(String(await running)).toContain('is still pending');
    expect(await count()).toBe(5);
    await c.end();
  }, 15_000);

  it('extended protocol: an approval releases the statement with the parameters it was asked for, and no others', async () => {
    await seed();
    const c = await client();
    const update = (note: string) =>
      c
        .query({ text: 'UPDATE orders SET note = $1', values: [note] })
        .catch((e: unknown) => e as pg.DatabaseError);
    const notes = async () =>
      (await admin.query('SELECT DISTINCT note FROM orders')).rows.map((r: { note: string }) => r.note);

    const first = update('approved');
    const request = await pendingFor('UPDATE orders SET note = $1');
    expect((await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'ok' })).status).toBe(200);
    const done = await first;
    expect(done).not.toBeInstanceOf(Error);
    expect(await notes()).toEqual(['approved']);

    // The same text with other parameters is another statement: held anew.
    const other = update('sneaky');
    const second = await pendingFor('UPDATE orders SET note = $1');
    expect(second.id).not.toBe(request.id);
    const shown = await api(`/approvals/${second.id}`, 'lead');
    expect(shown.body.parametersHash).not.toBe('');
    await api(`/approvals/${second.id}/deny`, 'lead', { reason: 'no' });
    const refused = (await other) as pg.DatabaseError;
    expect(refused.code).toBe('42501');
    expect(refused.message).toContain('was denied by local:lead');
    expect(await notes()).toEqual(['approved']);
    // The session and its prepared statements go on.
    expect((await c.query({ text: 'SELECT $1::int AS n', values: [7] })).rows).toEqual([{ n: 7 }]);
    await c.end();
  });

  it('a condition of the rule approves at once, and the records name it', async () => {
    await admin.query('INSERT INTO staging.batches SELECT generate_series(1, 3)');
    const c = await client();
    const result = await c.query('DELETE FROM staging.batches');
    expect(result.rowCount).toBe(3);
    await c.end();
    const records = await auditRecordsUntil((all) => all.some((r) => r['condition'] === 'staging'));
    expect(records).toContainEqual(
      expect.objectContaining({
        type: 'approval',
        event: 'approved',
        by: 'gatehouse:auto-approve',
        condition: 'staging',
      }),
    );
  });
});
