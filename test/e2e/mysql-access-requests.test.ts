import { readFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient } from './support/approvals.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The MySQL side of a request for clear access: approved by another user, it clears the column at
 * the next statement of a session already open (text and prepared), for pass-throughs only, and ends
 * at its expiry.
 */

const server = inject('mariadb');
const DATABASE = 'rt_access';
const EMAIL = 'ann@example.com';
const SSN = '123-45-6789';
let proxy: ProxyProcess;
const { api } = approvalsClient(() => proxy.adminPort);

beforeAll(async () => {
  const admin = await directMysql(server);
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE};
    CREATE TABLE ${DATABASE}.customers(id int, name text, email text, ssn text);
    INSERT INTO ${DATABASE}.customers VALUES (1, 'Ann Smith', '${EMAIL}', '${SSN}');
    GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${server.users.native.user}'@'%'`);
  await admin.end();
  const config = mysqlProxyConfig(server);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  const users = (config['identity'] as { local: { users: Record<string, unknown>[] } }).local.users;
  users.push({ name: 'lead', password: 'lead-secret', groups: ['approvers'] });
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'pii', {
        autoDetect: true,
        accessRequests: { approvers: [{ kind: 'Group', name: 'approvers' }], openOnRefusalSeconds: 60 },
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo'), localUser('lead')],
        allow: ['read'],
        maskingPolicies: ['pii'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
});

async function first(c: mysql.Connection, sql: string, prepared = false): Promise<unknown[]> {
  const [rows] = prepared
    ? await c.execute({ sql, rowsAsArray: true })
    : await c.query({ sql, rowsAsArray: true });
  return (rows as unknown[][])[0]!;
}

describe('MySQL: requests for clear access to masked columns', () => {
  it('clears an approved column at the next statement, for pass-throughs only, until it ends', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    const lead = await mysqlClient(proxy.port, { database: DATABASE, user: 'lead', password: 'lead-secret' });
    try {
      expect(await first(c, 'SELECT email, ssn FROM customers')).toEqual(['****', '****']);
      const opened = await api('/approvals/access-requests', 'demo', {
        database: DATABASE,
        columns: ['customers.email'],
        forSeconds: 3,
        reason: 'ticket 7',
      });
      expect(opened.status).toBe(201);
      expect((await api(`/approvals/${opened.body.id}/approve`, 'lead', { reason: 'ok' })).status).toBe(200);

      expect(await first(c, 'SELECT email, ssn FROM customers')).toEqual([EMAIL, '****']);
      expect(await first(c, 'SELECT email FROM customers WHERE id = 1', true)).toEqual([EMAIL]);
      for (const sql of [
        'SELECT lower(email) FROM customers',
        'SELECT concat(email, name) FROM customers',
        'SELECT coalesce(ssn, email) FROM customers',
        'SELECT ssn AS email FROM customers',
        'SELECT email FROM customers UNION ALL SELECT ssn FROM customers',
        'SELECT x.email FROM (SELECT ssn AS email FROM customers) x',
      ]) {
        const rows = await c.query({ sql, rowsAsArray: true }).then(
          ([r]) => JSON.stringify(r),
          (e: Error) => e.message,
        );
        expect(rows, sql).not.toContain(EMAIL);
        expect(rows, sql).not.toContain(SSN);
      }
      expect(await first(lead, 'SELECT email FROM customers')).toEqual(['****']);
      const records = readFileSync(proxy.auditFile!, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const cleared = records.filter(
        (r) =>
          r['type'] === 'statement' && (r['exemptions'] as string[] | undefined)?.includes(opened.body.id),
      );
      expect(cleared.map((r) => [r['via'], r['subject']])).toEqual([
        ['text', 'local:demo'],
        ['prepared', 'local:demo'],
      ]);

      await new Promise((resolve) => setTimeout(resolve, 3100));
      expect(await first(c, 'SELECT email FROM customers')).toEqual(['****']);
      // mysql2 reuses the statement it prepared while the exemption was in force: masked now.
      expect(await first(c, 'SELECT email FROM customers WHERE id = 1', true)).toEqual(['****']);
    } finally {
      await c.end();
      await lead.end();
    }
  });

  it('opens a request by itself when a statement is refused for a masked column', async () => {
    const c = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      const sql = `SELECT id FROM customers WHERE ssn = '${SSN}'`;
      const refused = (await c.query(sql).catch((e: Error) => e)) as Error;
      const id = /access request (ar-[0-9a-f]+)/.exec(refused.message)?.[1];
      expect(id, refused.message).toBeDefined();
      const shown = await api(`/approvals/${id}`, 'lead');
      expect(shown.body.access).toEqual({ columns: [`${DATABASE}.customers.ssn`], forSeconds: 60 });
      await api(`/approvals/${id}/approve`, 'lead', { reason: 'ok' });
      expect(await first(c, sql)).toEqual([1]);
    } finally {
      await c.end();
    }
  });
});
