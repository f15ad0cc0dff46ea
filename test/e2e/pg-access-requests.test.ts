import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runRequestAccessCommand } from '../../sidecar/src/cli/request-access-command.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A request for clear access to a masked column, through the real proxy and PostgreSQL: opened with
 * `gatehouse request-access`, decided by another user through the approvals API, in force at the next
 * statement of the same session for unchanged pass-throughs only, and ended by its expiry.
 */

const pgInfo = inject('postgres');
const DATABASE = 'access_requests_e2e';
const EMAIL = 'ann@example.com';
const SSN = '123-45-6789';
let proxy: ProxyProcess;
let admin: pg.Client;
const { api } = approvalsClient(() => proxy.adminPort);

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE customers(id int, name text, email text, ssn text, notes text);
    INSERT INTO customers VALUES (1, 'Ann Smith', '${EMAIL}', '${SSN}', 'likes tea');`);
  const users = ['demo', 'lead', 'other', 'solo', 'closed', 'agent'].map((name) => ({
    name,
    password: `${name}-secret`,
    ...((name === 'lead' || name === 'solo') && { groups: ['approvers'] }),
  }));
  const config = localProxyConfig(pgInfo, {
    identity: { mode: 'local', local: { users } },
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  const approvers = [{ kind: 'Group', name: 'approvers' }];
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'pii', {
        autoDetect: true,
        accessRequests: { approvers, maxDurationSeconds: 1800 },
      }),
      policyDocument('MaskingPolicy', 'pii-self', {
        autoDetect: true,
        accessRequests: { approvers, allowSelfApproval: true },
      }),
      policyDocument('MaskingPolicy', 'pii-closed', { autoDetect: true }),
      policyDocument('MaskingPolicy', 'pii-auto', {
        autoDetect: true,
        accessRequests: { approvers, openOnRefusalSeconds: 600 },
      }),
      policyDocument('DatabaseAccess', 'agents', {
        subjects: [localUser('agent')],
        allow: ['read'],
        maskingPolicies: ['pii-auto'],
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo'), localUser('lead'), localUser('other')],
        allow: ['read', 'write'],
        maskingPolicies: ['pii'],
      }),
      policyDocument('DatabaseAccess', 'solo', {
        subjects: [localUser('solo')],
        allow: ['read'],
        maskingPolicies: ['pii-self'],
      }),
      policyDocument('DatabaseAccess', 'closed', {
        subjects: [localUser('closed')],
        allow: ['read'],
        maskingPolicies: ['pii-closed'],
      }),
    ],
  });
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await admin?.end();
});

async function client(user = 'demo'): Promise<pg.Client> {
  const c = await pgClient(proxy.port, user, `${user}-secret`, DATABASE);
  c.on('error', () => {});
  return c;
}

/** `gatehouse request-access` as `user` runs it: its exit code and output. */
async function requestAccess(user: string, ...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io = {
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (out += text) },
    env: { GATEHOUSE_PASSWORD: `${user}-secret` },
  };
  const code = await runRequestAccessCommand(
    ['--server', `http://127.0.0.1:${proxy.adminPort}`, '--user', user, '--database', DATABASE, ...args],
    io,
  );
  return { code, out };
}

async function opened(user: string, columns: string, duration = '10m'): Promise<string> {
  const { code, out } = await requestAccess(
    user,
    '--columns',
    columns,
    '--for',
    duration,
    '--reason',
    'ticket 42',
  );
  expect(code, out).toBe(0);
  return /^(ar-[0-9a-f]+) pending/.exec(out)![1]!;
}

async function row(c: pg.Client, sql: string): Promise<unknown[]> {
  const result = await c.query({ text: sql, rowMode: 'array' });
  return result.rows[0] as unknown[];
}

function auditRecords(): Record<string, unknown>[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('PostgreSQL: requests for clear access to masked columns', () => {
  it('clears an approved column at the next statement of the same session, for pass-throughs only', async () => {
    const c = await client('demo');
    const others = await client('other');
    try {
      expect(await row(c, 'SELECT email, ssn FROM customers')).toEqual(['****', '****']);
      const id = await opened('demo', 'customers.email');
      // Pending changes nothing.
      expect(await row(c, 'SELECT email FROM customers')).toEqual(['****']);
      const approving = performance.now();
      const approved = await api(`/approvals/${id}/approve`, 'lead', { reason: 'support case' });
      expect(approved.status).toBe(200);
      expect(approved.body.access).toEqual({ columns: ['customers.email'], forSeconds: 600 });

      expect(await row(c, 'SELECT email, ssn, id FROM customers')).toEqual([EMAIL, '****', 1]);
      console.log(
        `approval sent to clear values in the open session: ${(performance.now() - approving).toFixed(1)} ms`,
      );
      // Found by value elsewhere, an email stays redacted: only the exempt column skips the scan.
      expect(await row(c, 'SELECT notes || $$ ann@example.com$$ FROM customers')).not.toContain(EMAIL);
      expect(await row(c, 'SELECT lower(email), email || name FROM customers')).toEqual(['****', '****']);
      // Predicates over the exempt column are this identity's to use now.
      expect(await row(c, `SELECT id FROM customers WHERE email = '${EMAIL}'`)).toEqual([1]);
      // The extended protocol, in a new session of the same identity.
      const again = await client('demo');
      expect((await again.query('SELECT email FROM customers WHERE id = $1', [1])).rows).toEqual([
        { email: EMAIL },
      ]);
      await again.end();
      // Another identity still sees it masked.
      expect(await row(others, 'SELECT email FROM customers')).toEqual(['****']);

      const records = auditRecords();
      const steps = records.filter((r) => r['type'] === 'approval' && r['request'] === id);
      expect(steps.map((r) => r['event'])).toEqual(['requested', 'approved']);
      expect(steps[0]).toMatchObject({
        subject: 'local:demo',
        columns: ['customers.email'],
        forSeconds: 600,
      });
      expect(steps[1]).toMatchObject({ by: 'local:lead', reason: 'support case' });
      const cleared = records.filter(
        (r) => r['type'] === 'statement' && (r['exemptions'] as string[] | undefined)?.includes(id),
      );
      // Only statements that returned clear values name it: not `lower(email)`, not `SELECT id ...`.
      expect(cleared.map((r) => r['via'])).toEqual(['simple', 'extended']);
      expect(JSON.stringify(records)).not.toContain(SSN);
    } finally {
      await c.end();
      await others.end();
    }
  });

  it('never clears a non-exempt column through the exempt one', async () => {
    const c = await client('demo');
    try {
      const attacks = [
        'SELECT coalesce(ssn, email) FROM customers',
        'SELECT email FROM customers UNION ALL SELECT ssn FROM customers',
        'SELECT ssn AS email FROM customers',
        'SELECT x.email FROM (SELECT ssn AS email FROM customers) x',
        'WITH x AS (SELECT ssn AS email FROM customers) SELECT email FROM x',
        'SELECT ssn::text AS email FROM customers',
        'SELECT CAST(ssn AS varchar) AS email FROM customers',
        'SELECT (SELECT ssn FROM customers LIMIT 1) AS email FROM customers',
        'SELECT CASE WHEN id > 0 THEN ssn ELSE email END FROM customers',
        'SELECT e FROM customers, LATERAL (VALUES (ssn)) v(e)',
        'SELECT a.email FROM customers a JOIN customers b ON a.email = b.ssn',
        "SELECT email FROM customers WHERE ssn LIKE '1%'",
        'SELECT email FROM customers UNION SELECT ssn FROM customers',
        'SELECT row_to_json(c)::text FROM customers c',
        'SELECT email || ssn FROM customers',
        'SELECT concat_ws($$,$$, email, ssn) FROM customers',
      ];
      for (const sql of attacks) {
        const result = await c.query({ text: sql, rowMode: 'array' }).catch((e: Error) => e);
        const text = result instanceof Error ? result.message : JSON.stringify(result.rows);
        expect(text, sql).not.toContain(SSN);
        expect(text, sql).not.toContain('6789');
      }
    } finally {
      await c.end();
    }
  });

  it('ends at expiry in a long session, and a denied request changes nothing', async () => {
    const c = await client('other');
    try {
      const denied = await opened('other', 'customers.ssn');
      expect((await api(`/approvals/${denied}/deny`, 'lead', { reason: 'no' })).body.phase).toBe('Denied');
      expect(await row(c, 'SELECT ssn FROM customers')).toEqual(['****']);

      const id = await opened('other', 'customers.ssn', '2s');
      await api(`/approvals/${id}/approve`, 'lead', { reason: 'two seconds' });
      expect(await row(c, 'SELECT ssn FROM customers')).toEqual([SSN]);
      // Prepared while in force, executed after: the exemption ends for it too.
      const prepared = { name: 'ssn_by_id', text: 'SELECT ssn FROM customers WHERE id = $1', values: [1] };
      expect((await c.query(prepared)).rows).toEqual([{ ssn: SSN }]);
      await new Promise((resolve) => setTimeout(resolve, 2100));
      expect(await row(c, 'SELECT ssn FROM customers')).toEqual(['****']);
      expect((await c.query(prepared)).rows).toEqual([{ ssn: '****' }]);
      expect((await api(`/approvals/${id}`, 'lead')).body.phase).toBe('Expired');
    } finally {
      await c.end();
    }
  });

  it('refuses self-approval unless the policy allows it', async () => {
    const own = await opened('lead', 'customers.ssn');
    const refused = await api(`/approvals/${own}/approve`, 'lead', { reason: 'me' });
    expect(refused.status).toBe(403);
    expect(refused.body.problem).toBe('self-approval');
    const notApprover = await api(`/approvals/${own}/approve`, 'demo', { reason: 'me' });
    expect(notApprover.status).toBe(404);

    const c = await client('solo');
    try {
      const mine = await opened('solo', 'customers.ssn');
      expect((await api(`/approvals/${mine}/approve`, 'solo', { reason: 'allowed' })).status).toBe(200);
      expect(await row(c, 'SELECT ssn FROM customers')).toEqual([SSN]);
    } finally {
      await c.end();
    }
  });

  it('refuses requests no MaskingPolicy takes, or longer than it allows', async () => {
    const closed = await requestAccess(
      'closed',
      '--columns',
      'customers.email',
      '--for',
      '5m',
      '--reason',
      'x',
    );
    expect(closed.code).toBe(1);
    expect(closed.out).toMatch(/MaskingPolicy pii-closed .* takes no access requests/);
    const long = await requestAccess('demo', '--columns', 'customers.email', '--for', '1h', '--reason', 'x');
    expect(long.code).toBe(1);
    expect(long.out).toMatch(/3600 s is longer than the 1800 s/);
    const pattern = await requestAccess('demo', '--columns', 'customers.*', '--for', '5m', '--reason', 'x');
    expect(pattern.code).toBe(1);
    expect(pattern.out).toMatch(/exact names, no wildcards/);
  });

  it('opens a request by itself when a statement is refused for masked columns, if the policy asks', async () => {
    const c = await client('agent');
    const demo = await client('demo');
    try {
      const sql = `SELECT id FROM customers WHERE ssn = '${SSN}'`;
      const refused = (await c.query(sql).catch((e: Error) => e)) as Error;
      const id = /access request (ar-[0-9a-f]+)/.exec(refused.message)?.[1];
      expect(refused.message).toMatch(/refuses this statement: it filters/);
      expect(id).toBeDefined();
      // A retry joins the request; a policy without openOnRefusalSeconds opens none.
      expect(((await c.query(sql).catch((e: Error) => e)) as Error).message).toContain(id);
      expect(((await demo.query(sql).catch((e: Error) => e)) as Error).message).not.toMatch(/access request/);
      const shown = await api(`/approvals/${id}`, 'lead');
      expect(shown.body).toMatchObject({
        phase: 'Pending',
        requester: { subject: 'local:agent' },
        access: { columns: ['public.customers.ssn'], forSeconds: 600 },
      });
      await api(`/approvals/${id}/approve`, 'lead', { reason: 'agent may match SSNs' });
      expect((await c.query(sql)).rows).toEqual([{ id: 1 }]);
      expect(await row(c, 'SELECT ssn FROM customers')).toEqual([SSN]);
    } finally {
      await c.end();
      await demo.end();
    }
  });
});
