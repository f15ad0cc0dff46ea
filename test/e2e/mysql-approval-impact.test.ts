import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * What the approver of a held MySQL statement is shown, measured on the requester's own connection
 * to real MariaDB: the rows a DELETE or UPDATE would change (nothing changes while it waits), the
 * planner's estimate, what depends on a table a DROP would remove, and auto-approval by the count;
 * for prepared statements (mysql2's execute()), each execution with the parameters it binds.
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

describe('MySQL: the impact of a held prepared statement', () => {
  // `? = 1` may make the WHERE always true (delete-without-where): every execution is held.
  const DELETE = 'DELETE FROM orders WHERE id > ? OR ? = 1';
  /** The Pending requests of `statement`, once there are `n`. */
  const pendingAll = async (statement: string, n: number) => {
    for (let i = 0; i < 200; i++) {
      const { body } = await api('/approvals?phase=Pending', 'lead');
      // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field
      const found = (body as any[]).filter((r) => r.statement === statement);
      if (found.length >= n) return found;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`not ${n} Pending requests for ${statement}`);
  };
  const errno = (e: unknown) => (e as { errno: number }).errno;

  it('measures each execution with the parameters it binds, and changes nothing', async () => {
    await seed();
    const clients = await Promise.all([0, 1, 2].map(() => mysqlClient(proxy.port, { database: DATABASE })));
    // Prepared before the held ones: its statement id still runs after they were measured.
    const counting = 'SELECT count(*) AS n FROM orders WHERE id > ?';
    await clients[0]!.execute(counting, [0]);
    const values = [
      [0, 0],
      [1, 0],
      [4, 1],
    ];
    const running = values.map((v, i) =>
      clients[i]!.execute(DELETE, v).then(
        () => 'ran',
        (e: unknown) => errno(e),
      ),
    );
    const requests = await pendingAll(DELETE, 3);
    expect(new Set(requests.map((r) => r.parametersHash)).size).toBe(3);
    expect(requests.map((r) => r.impact.affectedRows).sort()).toEqual([4, 5, 5]);
    for (const r of requests) {
      expect(typeof r.impact.estimatedRows).toBe('number');
      expect(r.impact.notMeasured).toBeUndefined();
    }
    expect(await count()).toBe(5);
    for (const r of requests) await api(`/approvals/${r.id}/deny`, 'lead', { reason: 'no' });
    expect(await Promise.all(running)).toEqual([1142, 1142, 1142]);
    expect(await count()).toBe(5);
    const [rows] = await clients[0]!.execute(counting, [0]);
    expect(Number((rows as { n: number }[])[0]!.n)).toBe(5);
    await Promise.all(clients.map((c) => c.end()));
  });

  it('auto-approves by the count measured with its parameters, both ways', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    // Four rows: over the condition's 3, so a person decides.
    const over = c.execute(DELETE, [1, 0]).catch((e: unknown) => errno(e));
    const [held] = await pendingAll(DELETE, 1);
    expect(held.impact.affectedRows).toBe(4);
    await api(`/approvals/${held.id}/deny`, 'lead', { reason: 'no' });
    expect(await over).toBe(1142);
    expect(await count()).toBe(5);
    // The same prepared statement with values that reach three rows runs at once.
    const [small] = (await c.execute(DELETE, [2, 0])) as [mysql.ResultSetHeader, unknown];
    expect(small.affectedRows).toBe(3);
    expect(await count()).toBe(2);
    await c.end();
  });

  it('does not measure what a rollback may not undo, and never auto-approves it', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    for (const [statement, fn] of [
      ['DELETE FROM orders WHERE id > ? AND rand() < 2 OR ? = 1', 'rand'],
      ['DELETE FROM orders WHERE id > ? AND sleep(0) = 0 OR ? = 1', 'sleep'],
      ['UPDATE orders SET note = uuid() WHERE id > ? OR ? = 1', 'uuid'],
      ['DELETE FROM orders WHERE id > ? AND get_lock(note, 0) = 1 OR ? = 1', 'get_lock'],
    ] as const) {
      // Two rows: under the condition's limit, were they measured.
      const running = c.execute(statement, [3, 0]).catch((e: unknown) => errno(e));
      const [held] = await pendingAll(statement, 1);
      expect(held.impact.affectedRows, statement).toBeUndefined();
      expect(held.impact.notMeasured, statement).toContain(`it calls ${fn}`);
      await api(`/approvals/${held.id}/deny`, 'lead', { reason: 'no' });
      expect(await running, statement).toBe(1142);
    }
    expect(await count()).toBe(5);
    await c.end();
  });

  it('measures inside the client transaction under a savepoint, and keeps the transaction', async () => {
    await seed();
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    await c.query('START TRANSACTION');
    await c.execute('INSERT INTO orders VALUES (?, ?)', [6, 'f']);
    const running = c.execute(DELETE, [0, 0]);
    const [held] = await pendingAll(DELETE, 1);
    expect(held.impact.affectedRows).toBe(6);
    await api(`/approvals/${held.id}/approve`, 'lead', { reason: 'ok' });
    const [result] = (await running) as [mysql.ResultSetHeader, unknown];
    expect(result.affectedRows).toBe(6);
    await c.query('ROLLBACK');
    expect(await count()).toBe(5);
    await c.end();
  });
});
