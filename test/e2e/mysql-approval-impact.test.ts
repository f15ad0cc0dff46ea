import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * What the approver of a held MySQL statement is shown, measured on the requester's own connection
 * to real MariaDB: the rows a DELETE or UPDATE would change (nothing changes while it waits), the
 * planner's estimate, what depends on a table a DROP would remove, and auto-approval by the count.
 */

const server = inject('mariadb');
const DATABASE = 'approval_impact_e2e';
let proxy: ProxyProcess;
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  await admin.query(`CREATE TABLE ${DATABASE}.orders(id int primary key, note text) ENGINE=InnoDB`);
  await admin.query(`CREATE TABLE ${DATABASE}.archive(id int, note text) ENGINE=InnoDB`);
  await admin.query(`CREATE TABLE ${DATABASE}.customers(id int primary key) ENGINE=InnoDB`);
  await admin.query(`CREATE TABLE ${DATABASE}.people(id int, email text) ENGINE=InnoDB`);
  await admin.query(`CREATE VIEW ${DATABASE}.customer_ids AS SELECT id FROM ${DATABASE}.customers`);
  await admin.query(
    `CREATE TABLE ${DATABASE}.invoices(customer int, CONSTRAINT invoice_customer FOREIGN KEY (customer) REFERENCES ${DATABASE}.customers(id)) ENGINE=InnoDB`,
  );
  await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  const config = mysqlProxyConfig(server, approvalUsers('demo'));
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
              ttlSeconds: 60,
              autoApprove: [{ name: 'small', maxAffectedRows: 3, sensitiveColumns: 'none' }],
            },
          },
        ],
      }),
      policyDocument('MaskingPolicy', 'pii', { rules: [{ columns: ['people.email'], method: 'redact' }] }),
      policyDocument('DatabaseAccess', 'demo', {
        subjects: [localUser('demo')],
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
});

const seed = async () => {
  await admin.query(`DELETE FROM ${DATABASE}.orders`);
  await admin.query(`DELETE FROM ${DATABASE}.archive`);
  await admin.query(`INSERT INTO ${DATABASE}.orders VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')`);
  await admin.query(`INSERT INTO ${DATABASE}.archive VALUES (1,'a'),(2,'b')`);
  await admin.query(`DELETE FROM ${DATABASE}.people`);
  await admin.query(`INSERT INTO ${DATABASE}.people VALUES (1,'ann@example.com')`);
};
const count = async (table = 'orders') => {
  const [rows] = await admin.query(`SELECT count(*) AS n FROM ${DATABASE}.${table}`);
  return Number((rows as { n: number }[])[0]!.n);
};

const { api, pendingFor } = approvalsClient(() => proxy.adminPort);

describe('MySQL: the impact of a held statement', () => {
  it('shows the rows a DELETE would change and the estimate, while nothing changes', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c.query('DELETE FROM orders');
    const { id } = await pendingFor('DELETE FROM orders');
    const impact = (await api(`/approvals/${id}`, 'lead')).body.impact;
    expect(impact).toMatchObject({ affectedRows: 5 });
    expect(typeof impact.estimatedRows).toBe('number');
    expect(await count()).toBe(5);
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'checked' });
    const [result] = (await running) as [mysql.ResultSetHeader, unknown];
    expect(result.affectedRows).toBe(5);
    expect(await count()).toBe(0);
    await c.end();
  });

  it('auto-approves by the measured count, and holds what is over it', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const [small] = (await c.query('DELETE FROM archive')) as [mysql.ResultSetHeader, unknown];
    expect(small.affectedRows).toBe(2);
    const running = c.query('UPDATE orders SET note = NULL').catch((e: unknown) => e as { errno: number });
    const { id } = await pendingFor('UPDATE orders SET note = NULL');
    expect((await api(`/approvals/${id}`, 'lead')).body.impact.affectedRows).toBe(5);
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'no' });
    expect(((await running) as { errno: number }).errno).toBe(1142);
    const [rows] = await admin.query(`SELECT count(*) AS n FROM ${DATABASE}.orders WHERE note IS NULL`);
    expect(Number((rows as { n: number }[])[0]!.n)).toBe(0);
    await c.end();
  });

  it('names the masked columns a statement touches, which a sensitiveColumns: none condition does not approve', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c.query('DELETE FROM people').catch((e: unknown) => e as { errno: number });
    const { id } = await pendingFor('DELETE FROM people');
    expect((await api(`/approvals/${id}`, 'lead')).body.impact).toMatchObject({
      affectedRows: 1,
      sensitiveColumns: [`${DATABASE}.people.email`],
    });
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'no' });
    expect(((await running) as { errno: number }).errno).toBe(1142);
    expect(await count('people')).toBe(1);
    await c.end();
  });

  it('measures inside the client transaction under a savepoint, and keeps the transaction', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    await c.query('START TRANSACTION');
    await c.query("INSERT INTO orders VALUES (6, 'f')");
    const running = c.query('DELETE FROM orders');
    const { id } = await pendingFor('DELETE FROM orders');
    expect((await api(`/approvals/${id}`, 'lead')).body.impact.affectedRows).toBe(6);
    await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok' });
    const [result] = (await running) as [mysql.ResultSetHeader, unknown];
    expect(result.affectedRows).toBe(6);
    await c.query('ROLLBACK');
    expect(await count()).toBe(5);
    await c.end();
  });

  it('lists what depends on a table a DROP would remove', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const running = c.query('DROP TABLE customers').catch((e: unknown) => e as { errno: number });
    const { id } = await pendingFor('DROP TABLE customers');
    const impact = (await api(`/approvals/${id}`, 'lead')).body.impact;
    expect(impact.dependents).toEqual(
      expect.arrayContaining([
        `view ${DATABASE}.customer_ids`,
        `foreign key invoice_customer on ${DATABASE}.invoices`,
      ]),
    );
    await api(`/approvals/${id}/deny`, 'lead', { reason: 'no' });
    expect(((await running) as { errno: number }).errno).toBe(1142);
    await c.end();
  });
});
