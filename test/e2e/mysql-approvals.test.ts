import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient } from './support/approvals.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * MySQL has no asynchronous notices: a held statement's session waits, then runs it once approved or
 * answers with an error naming the request. Real MariaDB, mysql2, the approvals API as another user.
 */

const server = inject('mariadb');
const DATABASE = 'approvals_e2e';
let proxy: ProxyProcess;
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  await admin.query(`CREATE TABLE ${DATABASE}.orders(id int primary key, note text) ENGINE=InnoDB`);
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  const config = mysqlProxyConfig(server, {
    identity: {
      mode: 'local',
      local: {
        users: [
          { name: 'demo', password: 'demo-secret' },
          { name: 'lead', password: 'lead-secret', groups: ['approvers'] },
        ],
      },
    },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('Guardrail', 'holds', {
        rules: [
          {
            name: 'sweeping',
            kinds: ['truncate', 'delete-without-where'],
            action: 'requireApproval',
            approval: { approvers: [{ kind: 'Group', name: 'approvers' }], waitSeconds: 3, ttlSeconds: 60 },
          },
        ],
      }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
        allow: ['read', 'write', 'ddl'],
        guardrails: ['holds'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

const seed = async () => {
  await admin.query(`DELETE FROM ${DATABASE}.orders`);
  await admin.query(`INSERT INTO ${DATABASE}.orders VALUES (1,'a'),(2,'b'),(3,'c')`);
};
const count = async () => {
  const [rows] = await admin.query(`SELECT count(*) AS n FROM ${DATABASE}.orders`);
  return Number((rows as { n: number }[])[0]!.n);
};

const { api, pendingFor } = approvalsClient(() => proxy.adminPort);

describe('MySQL: a statement held for approval', () => {
  it('waits, and runs once another user approves it', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c.query('DELETE FROM orders');
    const { id } = await pendingFor('DELETE FROM orders');
    expect(await count()).toBe(3);
    // The requester sees the request, and may not decide it.
    expect(await api(`/approvals/${id}/approve`, 'demo', { reason: 'mine' })).toMatchObject({
      status: 403,
      body: { problem: 'not-an-approver' },
    });
    expect((await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok' })).status).toBe(200);
    const [result] = await running;
    expect((result as mysql.ResultSetHeader).affectedRows).toBe(3);
    expect(await count()).toBe(0);
    await c.end();
  });

  it('answers a denial with an error naming the request, and the session goes on', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c
      .query('TRUNCATE TABLE orders')
      .catch((e: unknown) => e as { errno: number; message: string });
    const { id } = await pendingFor('TRUNCATE TABLE orders');
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'keep them' });
    const error = (await running) as { errno: number; message: string };
    expect(error.errno).toBe(1142);
    expect(error.message).toContain(`request ${id} was denied by local:lead: keep them`);
    expect(await count()).toBe(3);
    const [rows] = await c.query('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
    await c.end();
  });

  it('says the request is still pending after waitSeconds; approved later, the identical text runs once', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const first = (await c.query('DELETE FROM orders').catch((e: unknown) => e)) as { message: string };
    expect(first.message).toMatch(/is still pending after 3 s/);
    const id = /request (ar-[0-9a-f]+)/.exec(first.message)![1]!;
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'later' });
    const [again] = await c.query('DELETE FROM orders');
    expect((again as mysql.ResultSetHeader).affectedRows).toBe(3);
    await c.end();
  }, 20_000);
});
