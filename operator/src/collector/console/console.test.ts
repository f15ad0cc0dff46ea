import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuditEvent } from '../../../../sidecar/src/audit/events.ts';
import { sessionContext, statementEvent, writeSignedLog } from '../../../../sidecar/src/audit/testing.ts';
import { createLocalAuthenticator } from '../../../../sidecar/src/identity/local-authenticator.ts';
import { collectorApi } from '../collector-api.ts';
import { collectorAuthenticator } from '../collector-auth.ts';
import { DEFAULT_CONSOLE } from '../collector-config.ts';
import { startCollector } from '../start-collector.ts';
import { CollectorStore } from '../store.ts';
import { openDriver } from '../store-driver.ts';
import { freshStoreUrl } from '../test-store.ts';
import { consoleApp } from './console-app.ts';
import { ConsoleSessions } from './console-sessions.ts';

/**
 * The console over a real PostgreSQL store, through its HTTP interface (Hono's request, no server):
 * sign-in and roles, escaping of what the records hold, headers, and the same answers as the API.
 */

const logger = pino({ level: 'silent' });
/** What an attacker can put in a record: the statement text, and (through a token) the subject. */
const HOSTILE_SQL = `SELECT '<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', 'x'' onmouseover=''alert(3)' FROM t`;
const HOSTILE_SUBJECT = `evil"><script>alert(4)</script>`;
const hostile = { ...sessionContext, identity: { ...sessionContext.identity, subject: HOSTILE_SUBJECT } };
const EVENTS: AuditEvent[] = [
  { type: 'connection.start', context: sessionContext, tls: true },
  {
    ...statementEvent(3),
    touched: {
      tablesRead: ['public.customers'],
      columns: { 'public.customers.plan': 'clear', 'public.customers.ssn': 'redact' },
    },
  },
  {
    ...statementEvent(0),
    context: hostile,
    statement: HOSTILE_SQL,
    outcome: 'refused',
    reason: 'guardrail "g" rule "r": no',
  },
  {
    type: 'approval',
    event: 'requested',
    request: 'ar-0123456789abcdef',
    subject: 'local:admin',
    database: 'shop',
    statement: 'DROP TABLE "<b>customers</b>"',
    fingerprint: null,
    parametersHash: '',
    rules: ['admin-approvals/drop'],
  },
];

let dir: string;
let store: CollectorStore;
let app: ReturnType<typeof collectorApi>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-console-'));
  const lines = (await readFile((await writeSignedLog(dir, EVENTS)).file, 'utf8')).trimEnd().split('\n');
  store = await CollectorStore.open(await openDriver(await freshStoreUrl('console_unit_test')));
  const logKeyId = String(JSON.parse(lines[0]!).keyId);
  await store.ingest({ cluster: 'c', namespace: 'shop', pod: 'orders-0', database: 'shop', logKeyId }, lines);
  const localUsers = createLocalAuthenticator(
    {
      users: [
        { name: 'lead', password: 'lead-secret', groups: ['approvers'] },
        { name: 'demo', password: 'demo-secret' },
      ],
    },
    { logger },
  );
  app = collectorApi({
    store,
    logger,
    authenticate: collectorAuthenticator({ shipperTokens: [], readers: [], localUsers }),
    console: consoleApp({
      store,
      logger,
      approvals: { url: 'http://127.0.0.1:1', cluster: 'c' },
      sessions: new ConsoleSessions(store.db, { ttlMs: 60_000 }),
      access: { viewers: [], approvers: [{ group: 'approvers' }], readers: [] },
      localUsers,
      tokenReviewer: undefined,
    }),
  });
});
afterAll(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

async function signIn(user: string, password: string): Promise<string> {
  const answer = await app.request('/console/sign-in', {
    method: 'POST',
    body: new URLSearchParams({ method: 'local', user, password, next: '/console/sessions' }),
  });
  expect(answer.status).toBe(303);
  return answer.headers.get('set-cookie')!.split(';')[0]!;
}

async function get(
  path: string,
  cookie: string,
): Promise<{ status: number; text: string; headers: Headers }> {
  const answer = await app.request(path, { headers: { cookie } });
  return { status: answer.status, text: await answer.text(), headers: answer.headers };
}

/** The CSRF token a page's forms carry. */
function csrfOf(page: string): string {
  return /name="csrf" value="([^"]+)"/.exec(page)![1]!;
}

describe('the console', () => {
  it('sends an unauthenticated request to sign in, and refuses a wrong password', async () => {
    for (const path of [
      '/console/sessions',
      '/console/statements?subject=x',
      '/console/approvals',
      '/console/',
    ]) {
      const answer = await app.request(path);
      expect(answer.status).toBe(303);
      expect(answer.headers.get('location')).toMatch(/^\/console(\/sign-in\?next=|$)/);
    }
    expect((await app.request('/')).headers.get('location')).toBe('/console');
    const refused = await app.request('/console/sign-in', {
      method: 'POST',
      body: new URLSearchParams({ method: 'local', user: 'lead', password: 'wrong' }),
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(await refused.text()).toContain('wrong user name or password');
  });

  it('signs in with a cookie only the server can read, and signs out', async () => {
    const answer = await app.request('/console/sign-in', {
      method: 'POST',
      body: new URLSearchParams({
        method: 'local',
        user: 'lead',
        password: 'lead-secret',
        next: '//evil.example/',
      }),
    });
    expect(answer.headers.get('location')).toBe('/console/');
    const cookie = answer.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^gatehouse_console=[\w-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\/console/);
    const session = cookie.split(';')[0]!;
    const sessions = await get('/console/sessions', session);
    expect(sessions.status).toBe(200);
    const out = await app.request('/console/sign-out', {
      method: 'POST',
      headers: { cookie: session },
      body: new URLSearchParams({ csrf: csrfOf(sessions.text) }),
    });
    expect(out.status).toBe(303);
    expect((await get('/console/sessions', session)).status).toBe(303);
  });

  it('renders statement texts and subjects inert, under a policy that runs no script', async () => {
    const cookie = await signIn('lead', 'lead-secret');
    for (const path of ['/console/statements', '/console/statements?outcome=refused', '/console/approvals']) {
      const page = await get(path, cookie);
      expect(page.status).toBe(200);
      expect(page.text).not.toMatch(/<script|<img|<b>|onmouseover=''/i);
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/unsafe-inline|script-src/);
      expect(page.headers.get('x-frame-options')).toBe('DENY');
    }
    const statements = (await get('/console/statements', cookie)).text;
    expect(statements).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(statements).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(statements).toContain('x&#39;&#39; onmouseover=&#39;&#39;alert(3)');
    expect(statements).toContain('evil&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;');
    // A value put back into a form field stays inside its attribute.
    const search = (await get(`/console/statements?subject=${encodeURIComponent(HOSTILE_SUBJECT)}`, cookie))
      .text;
    expect(search).toContain('value="evil&quot;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"');
    expect(search).toContain('guardrail &quot;g&quot; rule &quot;r&quot;: no');
  });

  it('answers the data-touched question as the API does', async () => {
    const cookie = await signIn('demo', 'demo-secret');
    const basic = `Basic ${Buffer.from('demo:demo-secret').toString('base64')}`;
    for (const query of [
      '',
      '?column=customers.ssn',
      '?column=customers.ssn&seen=clear',
      '?subject=nobody',
    ]) {
      const api = (await (
        await app.request(`/v1/touched${query}`, { headers: { authorization: basic } })
      ).json()) as {
        columns: { subject: string; column: string; clear: number; masked: number }[];
      };
      const page = (await get(`/console/touched${query}`, cookie)).text;
      const rows = [
        ...page.matchAll(
          /<tr>\s*<td>([^<]*)<\/td><td><code>([^<]*)<\/code><\/td>\s*<td class="num">(?:<span[^>]*>)?(\d+)(?:<\/span>)?<\/td>\s*<td class="num">(?:<span[^>]*>)?(\d+)/g,
        ),
      ].map((m) => ({ subject: m[1], column: m[2], clear: Number(m[3]), masked: Number(m[4]) }));
      expect(rows).toEqual(
        api.columns.map(({ subject, column, clear, masked }) => ({ subject, column, clear, masked })),
      );
    }
    const ssn = (await (
      await app.request('/v1/touched?column=customers.ssn', { headers: { authorization: basic } })
    ).json()) as {
      columns: unknown[];
    };
    expect(ssn.columns).toEqual([
      expect.objectContaining({
        subject: 'system:serviceaccount:shop:orders',
        column: 'public.customers.ssn',
        clear: 0,
        masked: 1,
      }),
    ]);
  });

  it('lets an approver, not a viewer, decide; and only with the session CSRF token', async () => {
    const viewer = await signIn('demo', 'demo-secret');
    const viewerPage = (await get('/console/approvals', viewer)).text;
    expect(viewerPage).toContain('ar-0123456789abcdef');
    expect(viewerPage).not.toContain('value="approve"');
    const post = (cookie: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      app.request('/console/approvals/ar-0123456789abcdef/decide', {
        method: 'POST',
        headers: { cookie, ...headers },
        body: new URLSearchParams(body),
      });
    const viewerTry = await post(viewer, { csrf: csrfOf(viewerPage), verdict: 'approve', reason: 'why not' });
    expect(viewerTry.status).toBe(403);

    const approver = await signIn('lead', 'lead-secret');
    const approverPage = (await get('/console/approvals', approver)).text;
    expect(approverPage).toContain('value="approve"');
    const csrf = csrfOf(approverPage);
    expect((await post(approver, { verdict: 'approve', reason: 'ok' })).status).toBe(403);
    expect(
      (await post(approver, { csrf: csrfOf(viewerPage), verdict: 'approve', reason: 'ok' })).status,
    ).toBe(403);
    expect(
      (await post(approver, { csrf, verdict: 'approve', reason: 'ok' }, { origin: 'http://evil.example' }))
        .status,
    ).toBe(403);
    // Past every check, the decision goes to the proxy, which is not there in this test.
    const forwarded = await post(approver, { csrf, verdict: 'approve', reason: 'ok' });
    expect(forwarded.status).toBe(303);
    expect((await get('/console/approvals', approver)).text).toContain('did not answer');
  });

  it('shows each source chain status and a session with its statements', async () => {
    const cookie = await signIn('demo', 'demo-secret');
    const integrity = (await get('/console/integrity', cookie)).text;
    expect(integrity).toMatch(/All 1 sources verify/);
    expect(integrity).toMatch(/<span class="badge ok">ok<\/span>/);
    const sessions = (await get('/console/sessions', cookie)).text;
    expect(sessions).toContain(`/console/sessions/${sessionContext.session}`);
    const detail = (await get(`/console/sessions/${sessionContext.session}`, cookie)).text;
    expect(detail).toContain('10.1.2.3');
    expect(detail).toContain('SELECT abalance FROM pgbench_accounts WHERE aid = $1');
    expect((await get('/console/sessions/nope', cookie)).status).toBe(404);
  });

  it('answers the approvals and a text search through the API as on the pages', async () => {
    const basic = { authorization: `Basic ${Buffer.from('demo:demo-secret').toString('base64')}` };
    const approvals = (await (
      await app.request('/v1/approvals?phase=Pending', { headers: basic })
    ).json()) as {
      items: { request: string; requester: string; statement: string }[];
    };
    expect(approvals.items).toEqual([
      expect.objectContaining({
        request: 'ar-0123456789abcdef',
        requester: 'local:admin',
        statement: 'DROP TABLE "<b>customers</b>"',
      }),
    ]);
    expect(
      (
        (await (await app.request('/v1/approvals?phase=Denied', { headers: basic })).json()) as {
          items: unknown[];
        }
      ).items,
    ).toEqual([]);
    expect((await app.request('/v1/approvals?phase=pending', { headers: basic })).status).toBe(400);
    const text = async (query: string) =>
      (
        (await (
          await app.request(`/v1/statements?text=${encodeURIComponent(query)}`, { headers: basic })
        ).json()) as {
          items: { statement: string }[];
        }
      ).items.map((s) => s.statement);
    expect(await text('PGBENCH_accounts')).toEqual(['SELECT abalance FROM pgbench_accounts WHERE aid = $1']);
    // A substring, not a LIKE pattern.
    expect(await text('pgbench%accounts')).toEqual([]);
    expect(await text('_')).toEqual(['SELECT abalance FROM pgbench_accounts WHERE aid = $1']);
    expect((await app.request('/v1/touched?outcome=ok', { headers: basic })).status).toBe(400);
  });

  it('is not served when turned off', async () => {
    const off = collectorApi({
      store,
      logger,
      authenticate: collectorAuthenticator({ shipperTokens: [], readers: [] }),
    });
    expect((await off.request('/console/sessions')).status).toBe(404);
    expect((await off.request('/')).status).toBe(404);
  });

  it('marks the session cookie Secure when the collector serves HTTPS', async () => {
    const tls = inject('tls');
    const running = await startCollector(
      {
        listen: { host: '127.0.0.1', port: 0 },
        storeUrl: 'pglite:memory',
        poolSize: 1,
        retentionDays: 1,
        shipperTokens: [],
        tokenReview: undefined,
        readers: [],
        localUsers: [{ name: 'lead', password: 'lead-secret' }],
        tls: { certFile: tls.certFile, keyFile: tls.keyFile },
        console: DEFAULT_CONSOLE,
      },
      { logger },
    );
    try {
      expect(running.consoleUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/console$/);
      const cookie = await new Promise<string>((resolve, reject) => {
        const body = new URLSearchParams({
          method: 'local',
          user: 'lead',
          password: 'lead-secret',
        }).toString();
        const request = httpsRequest(
          `${running.consoleUrl}/sign-in`,
          {
            method: 'POST',
            ca: readFileSync(tls.caFile),
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          },
          (response) => {
            response.resume();
            resolve(String(response.headers['set-cookie']?.[0]));
          },
        );
        request.on('error', reject);
        request.end(body);
      });
      expect(cookie).toMatch(/^gatehouse_console=.*; Secure/);
    } finally {
      await running.close();
    }
  });
});
