import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runApprovalsCommand } from '../../sidecar/src/cli/approvals-command.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient, proxyDsn } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * What the approver of a held PostgreSQL statement is shown, measured through the real proxy on the
 * requester's own connection to a real server: the rows a DELETE or UPDATE would change (and nothing
 * changes while it waits), the planner's estimate, the objects a DROP would take with it, and the
 * auto-approval condition that reads the measured count.
 */

const pgInfo = inject('postgres');
const DATABASE = 'approval_impact_e2e';
let proxy: ProxyProcess;
let admin: pg.Client;
const notifications: { request: { id: string; impact: Record<string, unknown> } }[] = [];
const receiver = createServer((request, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  request.on('end', () => {
    notifications.push(JSON.parse(text));
    response.writeHead(200).end();
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE orders(id int PRIMARY KEY, note text);
    CREATE TABLE archive(id int, note text);
    CREATE VIEW open_orders AS SELECT id FROM orders WHERE note = 'x';
    CREATE TABLE lines(order_id int REFERENCES orders(id));
    CREATE TABLE customers(id int, email text);
    ANALYZE orders;`);
  const config = localProxyConfig(pgInfo, approvalUsers('demo'));
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('Guardrail', 'holds', {
        rules: [
          {
            name: 'sweeping',
            kinds: ['drop', 'delete-without-where', 'update-without-where'],
            action: 'requireApproval',
            approval: {
              approvers: [{ kind: 'Group', name: 'approvers' }],
              waitSeconds: 30,
              ttlSeconds: 120,
              notify: [
                { type: 'webhook', url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/` },
              ],
              autoApprove: [{ name: 'small', maxAffectedRows: 3, sensitiveColumns: 'none' }],
            },
          },
          // The database's count of a transaction keeps the rows a measurement rolled back: row
          // limits must not count them against the client's own statements.
          { name: 'cap', maxAffectedRows: 6, action: 'block' },
        ],
      }),
      policyDocument('MaskingPolicy', 'pii', { rules: [{ columns: ['customers.email'], method: 'redact' }] }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo'), localUser('lead')],
        allow: ['read', 'write', 'ddl'],
        guardrails: ['holds'],
        maskingPolicies: ['pii'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
  await new Promise((resolve) => receiver.close(resolve));
});

const { api, pendingFor } = approvalsClient(() => proxy.adminPort);

async function seed(rows: number): Promise<void> {
  await admin.query('TRUNCATE lines, archive, customers; DELETE FROM orders');
  await admin.query("INSERT INTO customers VALUES (1, 'ann@example.com')");
  await admin.query(`INSERT INTO orders SELECT g, 'x' FROM generate_series(1, ${rows}) g`);
  await admin.query(`INSERT INTO archive SELECT g, 'x' FROM generate_series(1, 2) g`);
}

async function client(): Promise<pg.Client> {
  const c = await pgClient(proxy.port, 'demo', 'demo-secret', DATABASE);
  c.on('error', () => {});
  return c;
}

const count = async (table = 'orders') =>
  Number((await admin.query(`SELECT count(*) FROM ${table}`)).rows[0].count);

/** `gatehouse approvals show ID` as the approver runs it, with its output. */
async function show(id: string, json = false): Promise<string> {
  let out = '';
  const io = {
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (out += text) },
    env: { GATEHOUSE_PASSWORD: 'lead-secret' },
  };
  const args = ['show', id, '--server', `http://127.0.0.1:${proxy.adminPort}`, '--user', 'lead'];
  expect(await runApprovalsCommand(json ? [...args, '--json'] : args, io)).toBe(0);
  return out;
}

describe('PostgreSQL: the impact of a held statement', () => {
  it('shows the rows a DELETE would change and the estimate, while nothing changes', async () => {
    await seed(5);
    const c = await client();
    const sent = Date.now();
    const running = c.query('DELETE FROM orders').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DELETE FROM orders');
    const seen = (await api(`/approvals/${request.id}`, 'lead')).body;
    // The measurement (five round trips on loopback) is done before the request opens.
    console.log(`statement sent to request opened, measured: ${Date.parse(seen.requestedAt) - sent} ms`);
    expect(seen.impact).toMatchObject({ affectedRows: 5, tables: ['orders'] });
    expect(typeof seen.impact.estimatedRows).toBe('number');
    // Measured under a rollback: the rows are all there while it waits.
    expect(await count()).toBe(5);
    const text = await show(request.id);
    expect(text).toMatch(/affected rows:\s+5/);
    expect(JSON.parse(await show(request.id, true)).impact.affectedRows).toBe(5);
    expect(notifications.find((n) => n.request.id === request.id)?.request.impact).toMatchObject({
      affectedRows: 5,
    });
    await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'checked' });
    const result = await running;
    expect((result as pg.QueryResult).rowCount).toBe(5);
    expect(await count()).toBe(0);
    await c.end();
  });

  it('auto-approves by the measured count, and holds what is over it', async () => {
    await seed(5);
    const c = await client();
    // Two rows: the condition maxAffectedRows 3 holds, and the statement runs without a person.
    const small = await c.query('DELETE FROM archive');
    expect(small.rowCount).toBe(2);
    expect(await count('archive')).toBe(0);
    const requests = (await api('/approvals', 'lead')).body as {
      statement: string;
      phase: string;
      decision?: { condition?: string };
    }[];
    expect(requests.find((r) => r.statement === 'DELETE FROM archive')).toMatchObject({
      phase: 'Executed',
      decision: { condition: 'small' },
    });
    // Five rows: over the condition, it waits for a person.
    const running = c.query('UPDATE orders SET note = NULL').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('UPDATE orders SET note = NULL');
    expect((await api(`/approvals/${request.id}`, 'lead')).body.impact.affectedRows).toBe(5);
    expect(Number((await admin.query("SELECT count(*) FROM orders WHERE note = 'x'")).rows[0].count)).toBe(5);
    await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
    expect(((await running) as pg.DatabaseError).code).toBe('42501');
    await c.end();
  });

  it('names the masked columns a statement touches, which a sensitiveColumns: none condition does not approve', async () => {
    await seed(1);
    const c = await client();
    const running = c.query('DELETE FROM customers').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DELETE FROM customers');
    // One row, within maxAffectedRows, but the row holds a masked column: a person decides.
    const impact = (await api(`/approvals/${request.id}`, 'lead')).body.impact;
    expect(impact).toMatchObject({ affectedRows: 1, sensitiveColumns: ['public.customers.email'] });
    expect(await show(request.id)).toContain('public.customers.email');
    await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
    await running;
    // One row that touches no masked column: the condition approves it by itself.
    expect((await c.query('UPDATE orders SET note = NULL')).rowCount).toBe(1);
    const list = (await api('/approvals', 'lead')).body as {
      statement: string;
      impact: { sensitiveColumns?: string[] };
      decision?: { condition?: string };
    }[];
    expect(list.find((r) => r.statement === 'UPDATE orders SET note = NULL')).toMatchObject({
      impact: { sensitiveColumns: [] },
      decision: { condition: 'small' },
    });
    await c.end();
  });

  it('measures inside the client transaction under a savepoint, and keeps the transaction as it was', async () => {
    await seed(5);
    const c = await client();
    await c.query('BEGIN');
    await c.query("INSERT INTO orders VALUES (6, 'x')");
    const running = c.query('DELETE FROM orders').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DELETE FROM orders');
    expect((await api(`/approvals/${request.id}`, 'lead')).body.impact.affectedRows).toBe(6);
    await api(`/approvals/${request.id}/approve`, 'lead', { reason: 'ok' });
    // The client's own insert survived the measurement's rollback: the DELETE removes it too.
    expect(((await running) as pg.QueryResult).rowCount).toBe(6);
    await c.query('ROLLBACK');
    expect(await count()).toBe(5);
    await c.end();
  });

  it('says why it did not measure in a failed transaction', async () => {
    await seed(5);
    const c = await client();
    await c.query('BEGIN');
    await c.query('SELECT 1/0').catch(() => undefined);
    const running = c.query('DELETE FROM orders').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DELETE FROM orders');
    const impact = (await api(`/approvals/${request.id}`, 'lead')).body.impact;
    expect(impact.affectedRows).toBeUndefined();
    expect(impact.notMeasured).toContain('transaction has failed');
    expect(await show(request.id)).toMatch(/not measured:\s+the session's transaction has failed/);
    await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
    await running;
    await c.query('ROLLBACK');
    expect((await c.query('SELECT count(*) FROM orders')).rows[0].count).toBe('5');
    await c.end();
  });

  it('bounds the measurement in time: a statement that waits for a lock is not measured, and says so', async () => {
    await seed(5);
    await admin.query('BEGIN');
    await admin.query('SELECT * FROM orders FOR UPDATE');
    try {
      const c = await client();
      const started = performance.now();
      const running = c.query('DELETE FROM orders').catch((e: unknown) => e as pg.DatabaseError);
      const request = await pendingFor('DELETE FROM orders');
      expect(performance.now() - started).toBeLessThan(8_000);
      const impact = (await api(`/approvals/${request.id}`, 'lead')).body.impact;
      expect(impact.affectedRows).toBeUndefined();
      expect(impact.notMeasured).toMatch(/waited for a lock past the measurement's 2000 ms limit/);
      await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
      await running;
      await c.end();
    } finally {
      await admin.query('ROLLBACK');
    }
    expect(await count()).toBe(5);
  }, 20_000);

  it("a cancel while the statement is measured ends it, and opens no request (psql's Ctrl-C)", async () => {
    await seed(5);
    await admin.query('BEGIN');
    await admin.query('SELECT * FROM orders FOR UPDATE');
    try {
      const dsn = proxyDsn(proxy.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
      const child = spawn('/usr/bin/psql', [dsn, '-X', '-c', 'DELETE FROM orders'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const closed = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      child.kill('SIGINT');
      expect(await closed).not.toBe(0);
      expect(stderr).toContain('Gatehouse was measuring it for its approver');
      const list = (await api('/approvals', 'lead')).body as { statement: string; phase: string }[];
      expect(list.filter((r) => r.statement === 'DELETE FROM orders' && r.phase === 'Pending')).toEqual([]);
    } finally {
      await admin.query('ROLLBACK');
    }
    expect(await count()).toBe(5);
  }, 20_000);

  it('says that a statement sent with the extended protocol is not measured', async () => {
    await seed(5);
    const c = await client();
    const running = c
      .query({ name: 'sweep', text: 'DELETE FROM orders' })
      .catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DELETE FROM orders');
    const impact = (await api(`/approvals/${request.id}`, 'lead')).body.impact;
    expect(impact.affectedRows).toBeUndefined();
    expect(impact.notMeasured).toMatch(/extended protocol/);
    await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
    await running;
    await c.end();
  });

  it('lists what depends on a table a DROP would remove', async () => {
    await seed(1);
    const c = await client();
    const running = c.query('DROP TABLE orders CASCADE').catch((e: unknown) => e as pg.DatabaseError);
    const request = await pendingFor('DROP TABLE orders CASCADE');
    const impact = (await api(`/approvals/${request.id}`, 'lead')).body.impact;
    expect(impact.dependents).toEqual(
      expect.arrayContaining(['view open_orders', 'foreign key lines_order_id_fkey on lines']),
    );
    expect(await show(request.id)).toContain('view open_orders');
    await api(`/approvals/${request.id}/deny`, 'lead', { reason: 'no' });
    expect(((await running) as pg.DatabaseError).code).toBe('42501');
    expect(await count()).toBe(1);
    await c.end();
  });
});
