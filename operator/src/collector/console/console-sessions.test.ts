import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApprovalBook } from '../../../../sidecar/src/approvals/approval-book.ts';
import { parametersHash } from '../../../../sidecar/src/approvals/approval-request.ts';
import { approvalsApi } from '../../../../sidecar/src/approvals/approvals-api.ts';
import type { AuditEvent } from '../../../../sidecar/src/audit/events.ts';
import { writeSignedLog } from '../../../../sidecar/src/audit/testing.ts';
import { createLocalAuthenticator } from '../../../../sidecar/src/identity/local-authenticator.ts';
import { type RunningOidcProvider, startOidcProvider } from '../../../../test/harness/oidc-provider.ts';
import { collectorApi } from '../collector-api.ts';
import { collectorAuthenticator } from '../collector-auth.ts';
import { CollectorStore } from '../store.ts';
import { openDriver } from '../store-driver.ts';
import { freshStoreUrl } from '../test-store.ts';
import { consoleApp } from './console-app.ts';
import { type OidcSettings, OidcSignIn } from './console-oidc.ts';
import { ConsoleSessions } from './console-sessions.ts';
import { PendingSignIns } from './oidc-pending.ts';

/**
 * Console sessions in the store, as several replicas and restarts see them: two collector apps over
 * one store (two pools on PostgreSQL; one embedded database on PGlite, as the quickstart runs it),
 * real sign-ins (local users, a real OpenID provider), a real proxy approvals API to decide on.
 */

const run = promisify(execFile);
const logger = pino({ level: 'silent' });
const LEAD = { name: 'lead', password: 'lead-Secret-7f3a9c2e', groups: ['approvers'] };
const DEMO = { name: 'demo', password: 'demo-Secret-41be0d77' };
const USERS = [LEAD, DEMO];
const ACCESS = { viewers: [{ group: 'auditors' }], approvers: [{ group: 'approvers' }], readers: [] };
const CLUSTER = 'c';
const OIDC_CLIENT = { clientId: 'gatehouse-console', clientSecret: 'console-client-secret-5d1e9a0b77' };

let dir: string;
let idp: RunningOidcProvider;
/** Where the provider sends the browser back: records the URL, as a browser's address bar would. */
let callbackListener: Server;
const callbacks: string[] = [];
let oidcSettings: OidcSettings;
let book: ApprovalBook;
let proxyApi: ReturnType<typeof serve>;
let proxyUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-console-sessions-'));
  book = new ApprovalBook();
  // The proxy's own approvals API, which authenticates whoever the console forwards.
  const proxyUsers = createLocalAuthenticator({ users: USERS }, { logger });
  proxyApi = await new Promise((listening) => {
    const s = serve(
      {
        fetch: approvalsApi({ book, authenticator: proxyUsers, logger }).fetch,
        hostname: '127.0.0.1',
        port: 0,
      },
      () => listening(s),
    );
  });
  proxyUrl = `http://127.0.0.1:${(proxyApi.address() as AddressInfo).port}`;
  callbackListener = createServer((request, response) => {
    callbacks.push(request.url ?? '');
    response.writeHead(200, { 'content-type': 'text/plain' }).end('back at the console');
  });
  await new Promise<void>((listening) => callbackListener.listen(0, '127.0.0.1', listening));
  const redirectUrl = `http://127.0.0.1:${(callbackListener.address() as AddressInfo).port}/console/oidc/callback`;
  idp = await startOidcProvider({
    users: [{ id: 'carol', password: 'carol-pw', groups: ['auditors'] }],
    clients: [{ ...OIDC_CLIENT, redirectUris: [redirectUrl] }],
  });
  oidcSettings = {
    issuer: idp.issuer,
    ...OIDC_CLIENT,
    redirectUrl,
    scopes: ['openid', 'groups'],
    subjectClaim: 'sub',
    groupsClaim: 'groups',
  };
});
afterAll(async () => {
  await idp?.stop();
  callbackListener?.close();
  proxyApi?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Replica {
  readonly store: CollectorStore;
  readonly sessions: ConsoleSessions;
  readonly app: ReturnType<typeof collectorApi>;
}

function replica(store: CollectorStore, options: { maxPerSubject?: number } = {}): Replica {
  const localUsers = createLocalAuthenticator({ users: USERS }, { logger });
  const sessions = new ConsoleSessions(store.db, { ttlMs: 60_000, ...options });
  const app = collectorApi({
    store,
    logger,
    authenticate: collectorAuthenticator({ shipperTokens: [], readers: [], localUsers }),
    console: consoleApp({
      store,
      logger,
      approvals: { url: proxyUrl, cluster: CLUSTER },
      sessions,
      access: ACCESS,
      localUsers,
      tokenReviewer: undefined,
      oidc: new OidcSignIn(oidcSettings, ACCESS, new PendingSignIns(store.db)),
    }),
  });
  return { store, sessions, app };
}

async function signIn(at: Replica, user: { name: string; password: string }): Promise<string> {
  const answer = await at.app.request('/console/sign-in', {
    method: 'POST',
    body: new URLSearchParams({
      method: 'local',
      user: user.name,
      password: user.password,
      next: '/console/sessions',
    }),
  });
  expect(answer.status).toBe(303);
  return sessionCookie(answer);
}

async function page(at: Replica, path: string, cookie: string): Promise<{ status: number; text: string }> {
  const answer = await at.app.request(path, { headers: { cookie } });
  return { status: answer.status, text: await answer.text() };
}

async function post(
  at: Replica,
  path: string,
  cookie: string,
  body: Record<string, string>,
): Promise<Response> {
  return await at.app.request(path, { method: 'POST', headers: { cookie }, body: new URLSearchParams(body) });
}

function csrfOf(html: string): string {
  return /name="csrf" value="([^"]+)"/.exec(html)![1]!;
}

/** A request held by the proxy (its book), and the log that tells the collector of it. */
async function heldRequest(): Promise<{ id: string; lines: string[] }> {
  const id = book.open({
    binding: {
      subject: 'local:admin',
      database: 'shop',
      statement: 'DROP TABLE t',
      parametersHash: parametersHash([]),
    },
    fingerprint: 'fp',
    shape: 'DROP TABLE t',
    requester: { subject: 'local:admin', groups: [], method: 'local' },
    rules: [
      {
        guardrail: 'g',
        rule: 'drop',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 600,
        ttlSeconds: 900,
      },
    ],
    impact: { tables: ['t'] },
  }).request.id;
  const requested: AuditEvent = {
    type: 'approval',
    event: 'requested',
    request: id,
    subject: 'local:admin',
    database: 'shop',
    statement: 'DROP TABLE t',
    fingerprint: null,
    parametersHash: '',
    rules: ['g/drop'],
  };
  const { file } = await writeSignedLog(await mkdtemp(join(dir, 'log-')), [requested]);
  return { id, lines: (await readFile(file, 'utf8')).trimEnd().split('\n') };
}

/** The session cookie an answer sets (it may also clear the OpenID state's). */
function sessionCookie(answer: Response): string {
  const set = answer.headers.getSetCookie().find((c) => c.startsWith('gatehouse_console='));
  expect(set).toBeDefined();
  return set!.split(';')[0]!;
}

/** An OpenID sign-in started at `from`, through the provider's pages: the callback's query and the state cookie. */
async function throughProvider(from: Replica): Promise<{ query: string; stateCookie: string }> {
  const started = await from.app.request('/console/oidc/start?next=/console/integrity');
  expect(started.status).toBe(303);
  const stateCookie = started.headers.get('set-cookie')!.split(';')[0]!;
  const outcome = await idp.completeCodeFlow(started.headers.get('location')!, {
    user: 'carol',
    password: 'carol-pw',
  });
  expect(outcome.body).toBe('back at the console');
  return { query: new URL(outcome.url).search, stateCookie };
}

const stores: {
  name: string;
  /** The store's location, fresh for each test. */
  url: () => Promise<string>;
  /** Whether two replicas may each open the store (PGlite is one process's own database). */
  shared: boolean;
}[] = [
  { name: 'PostgreSQL', url: () => freshStoreUrl('console_sessions_test'), shared: true },
  { name: 'PGlite', url: async () => `pglite:${await mkdtemp(join(dir, 'pglite-'))}`, shared: false },
];

describe.each(stores)('console sessions on $name', ({ url, shared }) => {
  let at: string;
  let a: Replica;
  let b: Replica;
  let requestId: string;
  const open = async () => CollectorStore.open(await openDriver(at));
  /** Two replicas over one store: each with its own pool, or (PGlite) on the one database. */
  const start = async (options: { maxPerSubject?: number } = {}) => {
    const first = await open();
    a = replica(first, options);
    b = replica(shared ? await open() : first, options);
  };
  const stop = async () => {
    await a?.store.close();
    if (b && b.store !== a.store) await b.store.close();
  };
  beforeAll(async () => {
    at = await url();
    await start();
    const held = await heldRequest();
    requestId = held.id;
    const logKeyId = String(JSON.parse(held.lines[0]!).keyId);
    await a.store.ingest(
      { cluster: CLUSTER, namespace: 'shop', pod: 'proxy-0', database: 'shop', logKeyId },
      held.lines,
    );
  });
  afterAll(stop);

  it('signs in on one replica and is known to the other; signing out on either ends it on both', async () => {
    const cookie = await signIn(a, LEAD);
    const onA = await page(a, '/console/sessions', cookie);
    const onB = await page(b, '/console/sessions', cookie);
    expect(onB.status).toBe(200);
    expect(onB.text).toContain('lead (viewer, approver)');
    // The CSRF token is the session's, whichever replica renders the form.
    expect(csrfOf(onB.text)).toBe(csrfOf(onA.text));
    const out = await post(b, '/console/sign-out', cookie, { csrf: csrfOf(onA.text) });
    expect(out.status).toBe(303);
    for (const replica of [a, b]) expect((await page(replica, '/console/sessions', cookie)).status).toBe(303);
  });

  it('decides on the other replica as the person signed in, and shows the outcome once, anywhere', async () => {
    const cookie = await signIn(a, LEAD);
    const queue = await page(a, '/console/approvals', cookie);
    expect(queue.text).toContain(requestId);
    const decided = await post(b, `/console/approvals/${requestId}/decide`, cookie, {
      csrf: csrfOf(queue.text),
      verdict: 'approve',
      reason: 'checked the backup',
    });
    expect(decided.status).toBe(303);
    // The proxy's own API authenticated lead with the credentials replica b unsealed.
    expect(book.get(requestId)).toMatchObject({ phase: 'Approved', decision: { by: 'local:lead' } });
    const first = await page(a, '/console/approvals', cookie);
    expect(first.text).toMatch(new RegExp(`role="status">${requestId} is Approved`));
    expect((await page(b, '/console/approvals', cookie)).text).not.toContain('role="status"');
    // A problem from the first replica reaches the second.
    await post(a, '/console/approvals/ar-nope/decide', cookie, {
      csrf: csrfOf(queue.text),
      verdict: 'deny',
      reason: 'x',
    });
    expect((await page(b, '/console/approvals', cookie)).text).toContain('ar-nope is not a pending request');
  });

  it('finishes an OpenID sign-in started on one replica on the other, once', async () => {
    const { query, stateCookie } = await throughProvider(a);
    const back = await b.app.request(`/console/oidc/callback${query}`, { headers: { cookie: stateCookie } });
    expect(back.status).toBe(303);
    expect(back.headers.get('location')).toBe('/console/integrity');
    const cookie = sessionCookie(back);
    expect((await page(a, '/console/integrity', cookie)).text).toContain('carol (viewer)');
    // The same callback again, on either replica, signs no one in.
    for (const replica of [a, b]) {
      const replay = await replica.app.request(`/console/oidc/callback${query}`, {
        headers: { cookie: stateCookie },
      });
      expect(replay.status).toBe(401);
      expect(await replay.text()).toContain('expired or was not started here');
    }
    // Two replicas handed the same callback at once: one state, one sign-in.
    const again = await throughProvider(b);
    const raced = await Promise.all(
      [a, b, a, b].map((replica) =>
        replica.app.request(`/console/oidc/callback${again.query}`, {
          headers: { cookie: again.stateCookie },
        }),
      ),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([303, 401, 401, 401]);
    // A callback whose state this browser did not start is refused, and spends that state.
    const other = await throughProvider(a);
    const foreign = await b.app.request(`/console/oidc/callback${other.query}`, {
      headers: { cookie: again.stateCookie },
    });
    expect(foreign.status).toBe(401);
  });

  it('gives a sign-in under way to one taker only, however many replicas ask at once', async () => {
    const pending = [new PendingSignIns(a.store.db), new PendingSignIns(b.store.db)];
    for (let round = 0; round < 5; round++) {
      const state = `state-${round}-${'x'.repeat(40)}`;
      await pending[0]!.put(state, { verifier: `v${round}`, nonce: 'n', next: '/console/' });
      const taken = await Promise.all(Array.from({ length: 8 }, (_, i) => pending[i % 2]!.take(state)));
      expect(taken.filter((t) => t !== undefined)).toEqual([
        { verifier: `v${round}`, nonce: 'n', next: '/console/' },
      ]);
    }
  });

  it('survives a restart of every replica: same cookie, same form token', async () => {
    const cookie = await signIn(a, DEMO);
    const before = await page(a, '/console/sessions', cookie);
    await stop();
    await start();
    const after = await page(b, '/console/sessions', cookie);
    expect(after.status).toBe(200);
    expect(after.text).toContain('demo (viewer)');
    expect((await post(a, '/console/sign-out', cookie, { csrf: csrfOf(before.text) })).status).toBe(303);
    expect((await page(b, '/console/sessions', cookie)).status).toBe(303);
  });

  it('refuses a cookie it did not issue, however it is spelled', async () => {
    const cookie = await signIn(a, DEMO);
    const id = cookie.slice('gatehouse_console='.length);
    const [row] = await a.store.db.query<{ lookup: string; sealed: string }>(
      'SELECT lookup, sealed FROM console_sessions ORDER BY created_at DESC LIMIT 1',
    );
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    const forged = [
      '',
      'x',
      flip(id, 0),
      flip(id, 21),
      flip(id, 42),
      id.slice(0, 42),
      `${id}A`,
      id.toLowerCase() === id ? id.toUpperCase() : id.toLowerCase(),
      encodeURIComponent(`${id};`),
      // What a reader of the store holds: the lookup hash, and the sealed contents.
      row!.lookup,
      row!.sealed,
      Buffer.from(id, 'base64url').toString('hex'),
      Buffer.from(id, 'base64url').toString('base64'),
    ];
    for (const value of forged) {
      const headers = { cookie: `gatehouse_console=${value}` };
      for (const replica of [a, b]) {
        expect((await replica.app.request('/console/sessions', { headers })).status, value).toBe(303);
        const posted = await replica.app.request('/console/sign-out', {
          method: 'POST',
          headers,
          body: new URLSearchParams({ csrf: 'x' }),
        });
        expect(posted.status, value).toBe(401);
      }
    }
    // The real one still works: none of that touched it.
    expect((await page(b, '/console/sessions', cookie)).status).toBe(200);
    // A row given another row's sealed contents (a writer of the store moving a session) opens for no one.
    const other = await signIn(a, LEAD);
    await a.store.db.query(
      `UPDATE console_sessions SET sealed = $1 WHERE lookup <> $2 AND subject = 'local:lead'`,
      [row!.sealed, row!.lookup],
    );
    expect((await page(b, '/console/sessions', other)).status).toBe(303);
    expect((await page(b, '/console/sessions', cookie)).status).toBe(200);
  });

  it('ends a session at its sealed expiry, and sweeps expired rows at the next sign-in', async () => {
    const count = async () =>
      Number((await a.store.db.query<{ n: unknown }>('SELECT count(*) AS n FROM console_sessions'))[0]!.n);
    const user = { subject: 'local:demo', groups: [], roles: ['viewer'] as const, method: 'local' as const };
    const live = await a.sessions.create(user);
    const lapsed = await a.sessions.create(user, Date.now() - 60_001);
    // Moving the readable expiry does not keep a lapsed session alive: the sealed one counts.
    await a.store.db.query(`UPDATE console_sessions SET expires_at = '3000-01-01'`);
    expect((await page(b, '/console/sessions', `gatehouse_console=${lapsed.id}`)).status).toBe(303);
    expect(await b.sessions.get(lapsed.id)).toBeUndefined();
    expect((await page(b, '/console/sessions', `gatehouse_console=${live.id}`)).status).toBe(200);
    expect(await b.sessions.get(live.id, Date.now() + 60_001)).toBeUndefined();
    // Rows expired by the readable column go at the next sign-in, wherever it happens.
    await a.store.db.query(`UPDATE console_sessions SET expires_at = '2000-01-01'`);
    expect(await count()).toBeGreaterThan(0);
    await signIn(b, DEMO);
    expect(await count()).toBe(1);
    // A sign-in under way lapses too, and the next one sweeps it.
    await a.store.db.query('DELETE FROM console_oidc_pending');
    const pending = new PendingSignIns(a.store.db);
    await pending.put(
      'state-long-ago-0123456789',
      { verifier: 'v', nonce: 'n', next: '/console/' },
      Date.now() - 600_001,
    );
    expect(await pending.take('state-long-ago-0123456789')).toBeUndefined();
    await pending.put(
      'state-long-ago-abcdefghij',
      { verifier: 'v', nonce: 'n', next: '/console/' },
      Date.now() - 600_001,
    );
    await pending.put('state-now-0123456789abcdef', { verifier: 'v', nonce: 'n', next: '/console/' });
    const [left] = await a.store.db.query<{ n: unknown }>('SELECT count(*) AS n FROM console_oidc_pending');
    expect(Number(left!.n)).toBe(1);
  });

  it('keeps a bounded number of sessions per person, evicting only their own', async () => {
    await stop();
    await start({ maxPerSubject: 3 });
    const lead = await signIn(a, LEAD);
    const demos = [];
    for (let i = 0; i < 4; i++) demos.push(await signIn(i % 2 === 0 ? a : b, DEMO));
    const status = async (cookie: string) => (await page(b, '/console/sessions', cookie)).status;
    expect(await status(demos[0]!)).toBe(303);
    for (const cookie of demos.slice(1)) expect(await status(cookie)).toBe(200);
    expect(await status(lead)).toBe(200);
  });

  it('keeps no password, token, cookie or state where a reader of the store could find it', async () => {
    const local = await signIn(a, LEAD);
    const { query, stateCookie } = await throughProvider(a);
    const oidc = sessionCookie(
      await b.app.request(`/console/oidc/callback${query}`, { headers: { cookie: stateCookie } }),
    );
    // A sign-in left under way, so its row is there to read.
    const underWay = await a.app.request('/console/oidc/start?next=/console/');
    const state = underWay.headers.get('set-cookie')!.split(';')[0]!.split('=')[1]!;
    const localPage = await page(a, '/console/approvals', local);
    const oidcId = oidc.split('=')[1]!;
    const carol = (await a.sessions.get(oidcId))!.user;
    expect(carol.forward).toMatch(/^Bearer \S{20,}/);
    expect(carol.apiToken).toMatch(/^\S{20,}/);
    const secrets = {
      password: LEAD.password,
      basic: Buffer.from(`${LEAD.name}:${LEAD.password}`).toString('base64'),
      'access token': carol.forward!.slice('Bearer '.length),
      'ID token': carol.apiToken!,
      // The JWTs' signatures, should a store keep them apart from their header.
      'access token signature': carol.forward!.split('.').at(-1)!,
      'ID token signature': carol.apiToken!.split('.').at(-1)!,
      'local cookie': local.split('=')[1]!,
      'OIDC cookie': oidcId,
      csrf: csrfOf(localPage.text),
      state: decodeURIComponent(state),
      'client secret': OIDC_CLIENT.clientSecret,
    };
    const dump = shared ? await pgDump(at) : await consoleRows(a.store);
    expect(dump).toContain('local:lead');
    // Nor merely encoded: every run of base64 or hex in the dump is decoded and searched too.
    const decoded = [...dump.matchAll(/[\w+/=-]{16,}/g)].flatMap(([run]) => [
      Buffer.from(run, 'base64url').toString('latin1'),
      Buffer.from(run, 'base64').toString('latin1'),
      ...(/^[\da-f]+$/i.test(run) ? [Buffer.from(run, 'hex').toString('latin1')] : []),
    ]);
    // The embedded database's files, as a copy of its directory would hold them.
    const files = shared ? [] : await filesOf(at.slice('pglite:'.length));
    for (const [what, secret] of Object.entries(secrets))
      for (const text of [dump, ...decoded, ...files]) expect(text.includes(secret), what).toBe(false);
  });
});

/** The whole store as `pg_dump` writes it. */
async function pgDump(url: string): Promise<string> {
  const { stdout } = await run(join(inject('postgres').binDir, 'pg_dump'), ['--data-only', url], {
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout;
}

/** The console's tables as text. */
async function consoleRows(store: CollectorStore): Promise<string> {
  const rows = await store.db.query<{ t: string }>(
    `SELECT t::text AS t FROM console_sessions t UNION ALL SELECT p::text FROM console_oidc_pending p`,
  );
  return rows.map((r) => r.t).join('\n');
}

/** Every file under `dir`, as bytes read as text. */
async function filesOf(dir: string): Promise<string[]> {
  const files = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(
    files.filter((f) => f.isFile()).map((f) => readFile(join(f.parentPath, f.name), 'latin1')),
  );
}
