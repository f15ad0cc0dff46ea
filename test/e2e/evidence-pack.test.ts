import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEvidenceCommand } from '../../sidecar/src/cli/evidence-command.ts';
import { runRequestAccessCommand } from '../../sidecar/src/cli/request-access-command.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient, approvalUsers } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * An evidence pack for a period built from a real run: the real proxy (its audit log signed with a
 * key of its own) in front of the real PostgreSQL, one session that reads, reads masked columns, is
 * refused, runs DDL, runs a statement an approver released, and reads a column in clear under an
 * access request; a login refused. The pack must name every one of them, verify, and read in a real
 * browser with the attacker-chosen identifier shown as text.
 */

const pgInfo = inject('postgres');
const DATABASE = 'evidence_e2e';
const SSN = '123-45-6789';
const HOSTILE = `<script>window.pwned=1</script>"'`;
let proxy: ProxyProcess;
let admin: pg.Client;
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-evidence-e2e-'));
const auditKey = join(dir, 'audit-key.pem');
const { api, pendingFor } = approvalsClient(() => proxy.adminPort);
let started: Date;

beforeAll(async () => {
  started = new Date(Date.now() - 1000);
  writeFileSync(auditKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE TABLE customers(id int, name text, email text, ssn text);
    INSERT INTO customers VALUES (1, 'Ann Smith', 'ann@example.com', '${SSN}');`);
  const config = localProxyConfig(pgInfo, {
    ...approvalUsers('demo'),
    masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    audit: { file: 'audit.jsonl', stdout: false, signingKeyFile: auditKey },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  const approvers = [{ kind: 'Group', name: 'approvers' }];
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      policyDocument('MaskingPolicy', 'pii', { autoDetect: true, accessRequests: { approvers } }),
      policyDocument('Guardrail', 'holds', {
        rules: [
          {
            name: 'sweeping',
            kinds: ['truncate'],
            action: 'requireApproval',
            approval: { approvers, waitSeconds: 20, ttlSeconds: 120 },
          },
          { name: 'no-delete-all', kinds: ['delete-without-where'], action: 'block' },
        ],
      }),
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
});

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const write = (text: string) => (out += text);
  const code = await runEvidenceCommand(argv, { stdout: { write }, stderr: { write }, env: {} });
  return { code, out };
}

describe('an evidence pack from a real run', () => {
  it('names every statement it should, verifies, and reads in a browser', { timeout: 120_000 }, async () => {
    const c = await pgClient(proxy.port, 'demo', 'demo-secret', DATABASE);
    c.on('error', () => {});
    const rows = async (sql: string) => (await c.query({ text: sql, rowMode: 'array' })).rows;
    expect(await rows('SELECT id FROM customers')).toEqual([[1]]);
    expect(await rows('SELECT email, ssn FROM customers')).toEqual([['****', '****']]);
    await expect(c.query('DELETE FROM customers')).rejects.toThrow(/no-delete-all/);
    await c.query('CREATE TABLE audit_notes(id int)');
    // DDL whose name the client chose: the pack shows it, as text.
    await c.query(`CREATE TABLE "${HOSTILE.replaceAll('"', '""')}"(id int)`);
    // Held until the approver releases it.
    const held = c.query('TRUNCATE audit_notes');
    const { id: heldId } = await pendingFor('TRUNCATE audit_notes');
    expect((await api(`/approvals/${heldId}/approve`, 'lead', { reason: 'cleanup ticket 7' })).status).toBe(
      200,
    );
    await held;
    // Clear values of one column under an access request.
    let out = '';
    const io = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (out += t) },
      env: { GATEHOUSE_PASSWORD: 'demo-secret' },
    };
    const args = [
      '--server',
      `http://127.0.0.1:${proxy.adminPort}`,
      '--user',
      'demo',
      '--database',
      DATABASE,
    ];
    expect(
      await runRequestAccessCommand(
        [...args, '--columns', 'customers.email', '--for', '10m', '--reason', 'case 9'],
        io,
      ),
      out,
    ).toBe(0);
    const accessId = /^(ar-[0-9a-f]+) pending/.exec(out)![1]!;
    expect((await api(`/approvals/${accessId}/approve`, 'lead', { reason: 'support case' })).status).toBe(
      200,
    );
    expect(await rows('SELECT email FROM customers')).toEqual([['ann@example.com']]);
    await c.end();
    await expect(pgClient(proxy.port, 'demo', 'wrong-password', DATABASE)).rejects.toThrow();
    // Sealed: the log ends in a signed checkpoint.
    expect(await proxy.stop()).toBe(0);

    const pack = join(dir, 'pack');
    const built = await run([
      'build',
      '--from',
      started.toISOString(),
      '--to',
      new Date(Date.now() + 1000).toISOString(),
      '--out',
      pack,
      '--audit',
      proxy.auditFile!,
      '--public-key',
      auditKey,
      '--policy',
      join(proxy.dir, 'gatehouse.yaml'),
      '--signing-key',
      auditKey,
    ]);
    expect(built.code, built.out).toBe(0);
    const read = (name: string) => JSON.parse(readFileSync(join(pack, name), 'utf8'));

    const privileged = read('privileged.json');
    expect(privileged.rows.map((r: { statement: string }) => r.statement)).toEqual([
      'CREATE TABLE audit_notes(id int)',
      `CREATE TABLE "${HOSTILE.replaceAll('"', '""')}"(id int)`,
      'TRUNCATE audit_notes',
    ]);
    expect(privileged.rows[2]).toMatchObject({
      subject: 'local:demo',
      outcome: 'ok',
      approved: true,
      approval: {
        request: heldId,
        decision: 'approved',
        by: 'local:lead',
        reason: 'cleanup ticket 7',
        rules: ['holds/sweeping'],
      },
    });

    const refusals = read('refusals.json');
    expect(
      refusals.rows.map((r: { kind: string; statement: string | null }) => [r.kind, r.statement]),
    ).toEqual([
      ['statement', 'DELETE FROM customers'],
      ['login', null],
    ]);
    expect(refusals.rows[0].reason).toContain('no-delete-all');
    expect(refusals.rows[1].subject).toBe('demo');

    const exemptions = read('exemptions.json');
    expect(exemptions.rows).toHaveLength(1);
    expect(exemptions.rows[0]).toMatchObject({
      request: accessId,
      requestedBy: 'local:demo',
      columns: ['customers.email'],
      decision: 'approved',
      decidedBy: 'local:lead',
      reason: 'support case',
      sawClear: ['local:demo'],
    });
    expect(exemptions.rows[0].uses.map((u: { statement: string }) => u.statement)).toEqual([
      'SELECT email FROM customers',
    ]);

    const masking = read('masking.json');
    const ssn = masking.rows.find((r: { column: string }) => r.column.endsWith('customers.ssn'));
    expect(ssn.identities).toEqual([{ subject: 'local:demo', masked: 1, clear: 0, methods: ssn.methods }]);
    const email = masking.rows.find((r: { column: string }) => r.column.endsWith('customers.email'));
    expect(email).toMatchObject({ statementsMasked: 1, statementsClear: 1 });

    const access = read('access.json');
    expect(access.bundle.inForceAt).toEqual([proxy.auditFile]);
    expect(access.bundle.grants[0]).toMatchObject({
      access: 'people',
      subjects: ['User local:demo', 'User local:lead'],
      classes: ['read', 'write', 'ddl'],
    });
    expect(access.inForce[0].event).toBe('loaded');

    const chains = read('chains.json');
    expect(chains.rows[0]).toMatchObject({ ok: true, sealed: true });
    expect(chains.rows[0].keys.map((k: { trust: string }) => k.trust)).toEqual(['pinned']);

    expect(chains.counts).toMatchObject({ ok: 1, broken: 0, lost: 0 });
    const controls = read('controls.json');
    expect(controls.rows.flatMap((r: { exceptions: string[] }) => r.exceptions)).toEqual([]);
    const evidenced = controls.rows
      .filter((r: { evidenced: boolean }) => r.evidenced)
      .map((r: { id: string }) => r.id);
    expect(evidenced).toEqual([
      'CC6.1',
      'CC6.2',
      'CC6.3',
      'CC6.6',
      'CC7.2',
      'CC7.3',
      'CC8.1',
      'AC-2',
      'AC-3',
      'AC-6',
      'AU-2',
      'AU-3',
      'AU-6',
      'AU-9',
      'AU-12',
      'CM-3',
    ]);
    // Nothing was denied: the count is cited as zero, not claimed.
    const au6 = controls.rows.find((r: { id: string }) => r.id === 'AU-6');
    expect(au6.evidence.find((e: { count: string }) => e.count === 'approvalDenied').claim).toMatch(
      /^no rows: /,
    );

    expect((await run(['verify', pack, '--key', auditKey])).code).toBe(0);
    const html = readFileSync(join(pack, 'index.html'), 'utf8');
    expect(html).not.toContain('<script>');
    expect(html).not.toMatch(/<link|<img|src=|href=/);

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      await page.goto(pathToFileURL(join(pack, 'index.html')).href);
      expect(await page.locator('h1').textContent()).toBe('Gatehouse evidence pack');
      for (const [section, count] of [
        ['chains', 1],
        ['privileged', 3],
        ['refusals', 2],
        ['exemptions', 1],
        ['controls', 16],
      ] as const) {
        expect(await page.locator(`#${section} .count`).getAttribute('data-count'), section).toBe(
          String(count),
        );
        expect(await page.locator(`#${section} .count`).textContent()).toBe(
          `${count} ${count === 1 ? 'row' : 'rows'}`,
        );
      }
      expect(await page.locator('#privileged tbody tr').count()).toBe(3);
      expect(await page.locator('#privileged').textContent()).toContain('cleanup ticket 7');
      expect(await page.locator('#refusals').textContent()).toContain('DELETE FROM customers');
      // The identifier a client chose is on the page as text, and ran as nothing.
      expect(await page.locator('#privileged tbody tr').nth(1).locator('td').nth(3).textContent()).toBe(
        `CREATE TABLE "${HOSTILE.replaceAll('"', '""')}"(id int)`,
      );
      expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBeUndefined();
      expect(await page.locator('script').count()).toBe(0);
      expect(requests).toEqual([pathToFileURL(join(pack, 'index.html')).href]);
      console.log(`screenshot: ${await screenshot(page, 'evidence-pack')}`);
    } finally {
      await browser.close();
    }
  });
});
