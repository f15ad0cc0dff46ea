// biome-ignore-all lint/performance/useDomNodeTextContent: these are Playwright locators, whose innerText is the rendered text the tests read, not DOM nodes
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { freePort } from '../harness/free-port.ts';
import { type RunningOidcProvider, startOidcProvider } from '../harness/oidc-provider.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig, pgClient, proxyDsn, psql } from './support/clients.ts';
import { type CollectorProcess, startCollectorProcess } from './support/collector-process.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The collector's console in a real browser (Debian's Chromium): a real proxy with a masking policy,
 * a guardrail that refuses and one that holds for approval ships to a real `gatehouse collector` on
 * PostgreSQL; people sign in and click through every view. Screenshots go to .cache/screenshots.
 */

const run = promisify(execFile);
const pgInfo = inject('postgres');
const DATABASE = 'console_e2e';
const SHIPPER_TOKEN = 'e2e-console-shipper-0123456789';
const LEAD = { name: 'lead', password: 'lead-secret', groups: ['approvers'] };
const AUDITOR = { name: 'auditor', password: 'auditor-secret' };
/**
 * A statement text that would run a script, or break out of an attribute, if the console did not
 * escape it. In quoted identifiers: the records keep a statement's text with its literals replaced.
 */
const HOSTILE = `SELECT 1 AS "<script>document.title='pwned'</script>", 2 AS """><img src=x onerror=""document.title=1"">"`;
const HOSTILE_SHOWN = `"<script>document.title='pwned'</script>", $2 AS """><img src=x onerror=""document.title=1"">"`;

let admin: pg.Client;
let collector: CollectorProcess | undefined;
let proxy: ProxyProcess | undefined;
let browser: Browser;
let base: string;
let held: Promise<unknown> | undefined;
let heldClient: pg.Client | undefined;
let idp: RunningOidcProvider;
const OIDC_CLIENT = { clientId: 'gatehouse-console', clientSecret: 'console-client-secret-0123456789' };

beforeAll(async () => {
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE customers(id int, plan text, ssn text);
    INSERT INTO customers VALUES (1, 'gold', '123-45-6789'), (2, 'free', '987-65-4321');
    CREATE TABLE scratch(id int);`);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-console-e2e-'));
  const collectorPort = await freePort();
  const adminPort = await freePort();
  base = `http://127.0.0.1:${collectorPort}`;
  idp = await startOidcProvider({
    users: [
      { id: 'carol', password: 'carol-pw', groups: ['auditors'] },
      { id: 'mallory', password: 'mallory-pw', groups: ['interns'] },
    ],
    clients: [{ ...OIDC_CLIENT, redirectUris: [`${base}/console/oidc/callback`] }],
  });
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl('collector_console_e2e') },
      auth: { shipperTokens: [{ value: SHIPPER_TOKEN }], localUsers: [LEAD, AUDITOR] },
      console: {
        viewers: [{ group: 'auditors' }],
        approvers: [{ group: 'approvers' }],
        oidc: { issuer: idp.issuer, ...OIDC_CLIENT, redirectUrl: `${base}/console/oidc/callback` },
        approvals: { url: `http://127.0.0.1:${adminPort}`, cluster: 'e2e' },
      },
    }),
  );
  collector = await startCollectorProcess(join(dir, 'collector.yaml'), collectorPort);
  const config = localProxyConfig(pgInfo, {
    admin: { listen: `127.0.0.1:${adminPort}` },
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    audit: {
      file: 'audit.jsonl',
      stdout: false,
      checkpointEveryRecords: 10,
      ship: { url: base, token: SHIPPER_TOKEN, cluster: 'e2e', pod: 'proxy-0' },
    },
  });
  (config['identity'] as { local: { users: unknown[] } }).local.users.push(LEAD);
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'ssn', { rules: [{ columns: ['customers.ssn'], method: 'redact' }] }),
      policyDocument('Guardrail', 'care', {
        rules: [
          { name: 'no-sweeping-delete', kinds: ['delete-without-where'], action: 'block' },
          {
            name: 'truncate',
            kinds: ['truncate'],
            action: 'requireApproval',
            approval: { approvers: [{ kind: 'Group', name: 'approvers' }], waitSeconds: 90 },
          },
        ],
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: [localUser('demo')],
        allow: ['read', 'write', 'ddl'],
        maskingPolicies: ['ssn'],
        guardrails: ['care'],
      }),
    ],
  });
  const dsn = proxyDsn(proxy.port, 'demo', 'demo-secret').replace('dbname=app', `dbname=${DATABASE}`);
  const masked = await psql(dsn, ['-Atc', 'SELECT plan, ssn FROM customers ORDER BY id']);
  expect(masked.stdout).toContain('gold');
  expect(masked.stdout).not.toContain('123-45-6789');
  const refused = await psql(dsn, ['-c', 'DELETE FROM customers']);
  expect(refused.code).not.toBe(0);
  expect((await psql(dsn, ['-Atc', HOSTILE])).code).toBe(0);
  // Held until someone approves it from the console.
  heldClient = await pgClient(proxy.port, 'demo', 'demo-secret', DATABASE);
  heldClient.on('error', () => {});
  held = heldClient.query('TRUNCATE scratch').then(
    () => 'ran',
    (error: Error) => error.message,
  );
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await heldClient?.end().catch(() => {});
  await proxy?.stop();
  await collector?.stop();
  await admin?.end();
  await idp?.stop();
});

async function signIn(user: { name: string; password: string }): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('dialog', () => {
    throw new Error('a script opened a dialog');
  });
  await page.goto(`${base}/console/sessions`);
  expect(page.url()).toContain('/console/sign-in?next=');
  await page.getByLabel('User').fill(user.name);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/console\/sessions$/);
  return page;
}

/** Reloads until `text` is on the page: records reach the collector within a second or so. */
async function reloadUntil(page: Page, text: string | RegExp): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const body = await page.locator('main').innerText();
    if (typeof text === 'string' ? body.includes(text) : text.test(body)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await page.reload();
  }
  throw new Error(`never saw ${String(text)} on ${page.url()}`);
}

describe('the console in a browser', () => {
  it('sends a visitor who is not signed in to the sign-in page', async () => {
    const page = await browser.newPage();
    const answer = await page.goto(`${base}/console/statements?outcome=refused`);
    expect(answer?.status()).toBe(200);
    expect(page.url()).toBe(
      `${base}/console/sign-in?next=${encodeURIComponent('/console/statements?outcome=refused')}`,
    );
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await screenshot(page, 'console-sign-in');
    await page.getByLabel('User').fill(LEAD.name);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').innerText()).resolves.toContain('wrong user name or password');
    await page.close();
  });

  it('shows sessions, a session with its statements, and the statement search', async () => {
    const page = await signIn(LEAD);
    await reloadUntil(page, 'local:demo');
    await screenshot(page, 'console-sessions');
    await page.locator('table.sessions tbody tr').last().getByRole('link').click();
    await page.waitForURL(/\/console\/sessions\/[^/]+$/);
    const detail = await page.locator('main').innerText();
    expect(detail).toContain('local:demo');
    expect(detail).toContain(DATABASE);
    expect(detail).toContain('SELECT plan, ssn FROM customers ORDER BY id');
    await screenshot(page, 'console-session-detail');

    await page.getByRole('link', { name: 'Statements' }).click();
    await page.getByLabel('Outcome').selectOption('refused');
    await page.getByLabel('Text').fill('delete');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/outcome=refused/);
    const rows = page.locator('table.statements tbody tr');
    await expect(rows.count()).resolves.toBe(1);
    const refused = await rows.first().innerText();
    expect(refused).toContain('DELETE FROM customers');
    expect(refused).toMatch(/no-sweeping-delete/);
    await screenshot(page, 'console-statements-refused');
    await page.close();
  });

  it('renders an attacker-chosen statement as text: no script runs, no attribute breaks', async () => {
    const page = await signIn(AUDITOR);
    await page.goto(`${base}/console/statements?text=${encodeURIComponent('document.title')}`);
    await reloadUntil(page, 'pwned');
    // The text is shown as written, and nothing it holds became an element.
    await expect(page.locator('table.statements code').first().innerText()).resolves.toContain(HOSTILE_SHOWN);
    await expect(page.locator('main script, main img').count()).resolves.toBe(0);
    expect(await page.title()).toBe('Statements · Gatehouse');
    await screenshot(page, 'console-hostile-statement');
    await page.close();
  });

  it('shows what each identity read in clear and masked, and who read a column', async () => {
    const page = await signIn(LEAD);
    await page.getByRole('link', { name: 'Data touched' }).click();
    await reloadUntil(page, 'public.customers.ssn');
    const columns = await page.locator('table.touched-columns tbody').innerText();
    expect(columns).toMatch(/local:demo\s+public\.customers\.plan\s+1\s+0/);
    expect(columns).toMatch(/local:demo\s+public\.customers\.ssn\s+0\s+1/);
    await screenshot(page, 'console-data-touched');
    await page.getByLabel('Column').fill('customers.ssn');
    await page.getByLabel('Seen').selectOption('clear');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe(
      'Who read customers.ssn (clear)',
    );
    await expect(page.locator('table.touched-columns').count()).resolves.toBe(0);
    await page.getByLabel('Seen').selectOption('masked');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page.locator('table.touched-columns tbody tr').count()).resolves.toBe(1);
    await screenshot(page, 'console-who-read-ssn');
    await page.close();
  });

  it('the statement search, the API and gatehouse audit query return the same statements', async () => {
    const page = await signIn(AUDITOR);
    await page.goto(`${base}/console/statements?subject=local:demo&limit=50`);
    const shown = await page.locator('table.statements tbody tr td.sql code').allInnerTexts();
    const basic = `Basic ${Buffer.from(`${AUDITOR.name}:${AUDITOR.password}`).toString('base64')}`;
    const api = (await (
      await fetch(`${base}/v1/statements?subject=local:demo&limit=50`, { headers: { authorization: basic } })
    ).json()) as { items: { statement: string }[] };
    const { stdout } = await run(
      process.execPath,
      [
        '--liftoff-only',
        MAIN,
        'audit',
        'query',
        '--server',
        base,
        '--user',
        AUDITOR.name,
        '--subject',
        'local:demo',
        '--limit',
        '50',
        '--format',
        'json',
      ],
      { env: { ...process.env, GATEHOUSE_PASSWORD: AUDITOR.password } },
    );
    // The API's `follow` is its way in for --follow; the CLI's one-shot answer leaves it out.
    const { follow: _, ...answer } = api as typeof api & { follow?: string };
    expect(JSON.parse(stdout)).toEqual(answer);
    expect(shown.length).toBeGreaterThanOrEqual(3);
    expect(shown).toEqual(api.items.map((s) => s.statement));

    // Who read customers.ssn: the CLI's answer is the API's, and the console's rows are its rows.
    const cli = async (...args: string[]) =>
      (
        await run(
          process.execPath,
          ['--liftoff-only', MAIN, 'audit', 'query', ...args, '--server', base, '--user', AUDITOR.name],
          { env: { ...process.env, GATEHOUSE_PASSWORD: AUDITOR.password } },
        )
      ).stdout;
    const touchedApi = await (
      await fetch(`${base}/v1/touched?column=customers.ssn`, { headers: { authorization: basic } })
    ).json();
    expect(JSON.parse(await cli('touched', '--column', 'customers.ssn', '--format', 'json'))).toEqual(
      touchedApi,
    );
    expect(await cli('touched', '--column', 'customers.ssn')).toMatch(
      /^subject +column +clear +masked +lastTime\nlocal:demo +public\.customers\.ssn +0 +1 /,
    );
    await page.goto(`${base}/console/touched?column=customers.ssn`);
    const rows = await page.locator('table.touched-columns tbody tr').allInnerTexts();
    expect(rows.map((r) => r.split('\t').slice(0, 4))).toEqual(
      (
        touchedApi as { columns: { subject: string; column: string; clear: number; masked: number }[] }
      ).columns.map((c) => [c.subject, c.column, String(c.clear), String(c.masked)]),
    );
    await page.close();
  });

  it('lets a viewer see the approvals queue but not decide', async () => {
    const page = await signIn(AUDITOR);
    await page.getByRole('link', { name: 'Approvals' }).click();
    await reloadUntil(page, 'TRUNCATE scratch');
    await expect(page.getByRole('button', { name: 'Approve' }).count()).resolves.toBe(0);
    expect(await page.locator('main').innerText()).toContain('Waiting for an approver');
    await screenshot(page, 'console-approvals-viewer');
    // Posting the decision by hand, with the viewer's own valid CSRF token, is refused.
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    const id = await page.locator('section.approval h2 code').first().innerText();
    const answer = await page.request.post(`${base}/console/approvals/${id}/decide`, {
      form: { csrf: csrf!, verdict: 'approve', reason: 'I am no approver' },
      headers: { origin: base },
    });
    expect(answer.status()).toBe(403);
    await page.close();
  });

  it('lets an approver approve a held statement from the console, and the statement runs', async () => {
    const page = await signIn(LEAD);
    await page.getByRole('link', { name: 'Approvals' }).click();
    await reloadUntil(page, 'TRUNCATE scratch');
    await screenshot(page, 'console-approvals-pending');
    const request = page.locator('section.approval').filter({ hasText: 'TRUNCATE scratch' });
    await request.getByLabel('Reason').fill('cleaning the scratch table');
    await request.getByRole('button', { name: 'Approve' }).click();
    await expect(page.getByRole('status').first().innerText()).resolves.toMatch(/is Approved/);
    await expect(held).resolves.toBe('ran');
    await page.getByLabel('Phase').selectOption('');
    await page.getByRole('button', { name: 'Search' }).click();
    await reloadUntil(page, /local:lead: cleaning the scratch table/);
    expect(
      await page.locator('section.approval').filter({ hasText: 'TRUNCATE scratch' }).innerText(),
    ).toMatch(/Executed|Approved/);
    await screenshot(page, 'console-approvals-decided');
    await page.close();
  });

  it("shows each source's chain status and last verified checkpoint", async () => {
    const page = await signIn(AUDITOR);
    await page.getByRole('link', { name: 'Integrity' }).click();
    const row = page.locator('table.sources tbody tr').first();
    const text = await row.innerText();
    expect(text).toMatch(/e2e\s+standalone\s+proxy-0\s+console_e2e\s+ok/);
    expect(text).toMatch(/seq \d+/);
    expect(await page.locator('main').innerText()).toContain('All 1 sources verify');
    await screenshot(page, 'console-integrity');
    await page.close();
  });

  it('signs in with the OpenID provider (authorization code with PKCE), once per callback', async () => {
    const page = await browser.newPage();
    const callbacks: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${base}/console/oidc/callback`)) callbacks.push(request.url());
    });
    await page.goto(`${base}/console/integrity`);
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).click();
    // The provider's own pages: its login form, then consent.
    expect(page.url().startsWith(idp.issuer)).toBe(true);
    await page.locator('input[name="login"]').fill('carol');
    await page.locator('input[name="password"]').fill('carol-pw');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${base}/console/integrity`);
    expect(await page.locator('header .who span').innerText()).toBe('carol (viewer)');
    await screenshot(page, 'console-oidc-signed-in');
    // The code and state of that callback cannot sign anyone in again.
    expect(callbacks).toHaveLength(1);
    const replay = await browser.newPage();
    const answer = await replay.goto(callbacks[0]!);
    expect(answer?.status()).toBe(401);
    expect(await replay.getByRole('alert').innerText()).toContain('expired or was not started here');
    await replay.close();
    await page.close();

    const intern = await browser.newPage();
    await intern.goto(`${base}/console/sign-in`);
    await intern.getByRole('link', { name: 'Sign in with your identity provider' }).click();
    await intern.locator('input[name="login"]').fill('mallory');
    await intern.locator('input[name="password"]').fill('mallory-pw');
    await intern.getByRole('button', { name: 'Sign in' }).click();
    await intern.getByRole('button', { name: 'Allow' }).click();
    await intern.waitForURL(/\/console\/oidc\/callback/);
    expect(await intern.getByRole('alert').innerText()).toContain('mallory may not read the audit');
    await intern.close();
  });
});
