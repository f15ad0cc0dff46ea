import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { approvalsClient } from './support/approvals.ts';
import { freshDatabase, localProxyConfig, pgClient, proxyDsn } from './support/clients.ts';
import { MAIN, type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * Through the real proxy, PostgreSQL, psql and node-postgres: notifications reach a local receiver
 * (Slack-shaped and generic JSON, one URL read from a Secret file); `unknown-shape` rules hold or
 * refuse statements whose shape nobody approved, and run them once it is; `mode: dryRun` rules record
 * and learn, and what they learned is approved in one go through the CLI.
 */

const pgInfo = inject('postgres');
const DATABASE = 'closed_world_e2e';
const WAIT_SECONDS = 2;
const SLACK_PATH = '/services/T000/B000/slack-secret-path';
let proxy: ProxyProcess;
let admin: pg.Client;
const received: { path: string; body: Record<string, unknown> }[] = [];
const receiver = createServer((request, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  request.on('end', () => {
    received.push({ path: request.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
    response.writeHead(200).end();
  });
});

const users = ['bot', 'rover', 'trainee', 'lead'];
const approvers = [{ kind: 'Group', name: 'approvers' }];

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const secrets = mkdtempSync(join(tmpdir(), 'gatehouse-notify-'));
  mkdirSync(join(secrets, 'approvals-hook'));
  writeFileSync(join(secrets, 'approvals-hook', 'url'), `${base}/generic/hook-secret-path\n`);
  admin = await freshDatabase(pgInfo, DATABASE);
  await admin.query(`
    CREATE SCHEMA secret;
    CREATE TABLE orders(id int, note text, secret text);
    CREATE TABLE orders2(id int, note text);
    CREATE TABLE customers(id int, note text);
    CREATE TABLE secret.orders(id int, note text);
    CREATE TABLE scratch(id int);
    INSERT INTO orders VALUES (1, 'one', 's1'), (2, 'two', 's2');
    INSERT INTO customers VALUES (1, 'c1');
    INSERT INTO secret.orders VALUES (1, 'hidden');`);
  const config = localProxyConfig(pgInfo, {
    identity: {
      mode: 'local',
      local: {
        users: users.map((name) => ({
          name,
          password: `${name}-secret`,
          ...(name === 'lead' && { groups: ['approvers'] }),
        })),
      },
    },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  proxy = await startProxyProcess(config, {
    env: { GATEHOUSE_NOTIFY_SECRETS_DIR: secrets },
    extraDocuments: [
      policyDocument('Guardrail', 'closed-world', {
        rules: [
          {
            name: 'held',
            kinds: ['unknown-shape'],
            action: 'requireApproval',
            subjects: [localUser('bot')],
            approval: {
              approvers,
              waitSeconds: WAIT_SECONDS,
              ttlSeconds: 120,
              notify: [
                { type: 'slack', url: `${base}${SLACK_PATH}` },
                { type: 'webhook', urlSecretRef: { name: 'approvals-hook', key: 'url' } },
              ],
            },
          },
          {
            name: 'refused',
            kinds: ['unknown-shape'],
            action: 'block',
            subjects: [localUser('rover')],
            approval: { approvers },
          },
        ],
      }),
      policyDocument('Guardrail', 'learning', {
        rules: [
          {
            name: 'learn',
            kinds: ['unknown-shape'],
            action: 'requireApproval',
            mode: 'dryRun',
            subjects: [localUser('trainee')],
            approval: { approvers },
          },
          {
            name: 'drops',
            kinds: ['drop'],
            action: 'requireApproval',
            mode: 'dryRun',
            subjects: [localUser('trainee')],
            approval: { approvers },
          },
        ],
      }),
      policyDocument('DatabaseAccess', 'people', {
        subjects: users.map(localUser),
        allow: ['read', 'write', 'ddl'],
        guardrails: ['closed-world', 'learning'],
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

async function client(user: string): Promise<pg.Client> {
  const c = await pgClient(proxy.port, user, `${user}-secret`, DATABASE);
  c.on('error', () => {});
  return c;
}

async function until<T>(find: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never happened: ${what}`);
}

function auditRecords(): Record<string, unknown>[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function cli(user: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, 'approvals', ...args, '--server', `http://127.0.0.1:${proxy.adminPort}`, '--user', user],
      { env: { ...process.env, GATEHOUSE_PASSWORD: `${user}-secret` } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe('unknown-shape, held for approval, with notifications', () => {
  it('psql waits; the receiver gets the Slack and JSON messages; the approved shape runs later without a hold; another shape still holds', async () => {
    const statement = 'SELECT id, note FROM orders WHERE id = 1';
    const dsn = proxyDsn(proxy.port, 'bot', 'bot-secret').replace('dbname=app', `dbname=${DATABASE}`);
    const run = new Promise<{ stdout: string; stderr: string; code: number }>((resolve) => {
      const child = spawn('/usr/bin/psql', [dsn, '-X', '-v', 'ON_ERROR_STOP=1', '-c', statement], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    });
    const request = (await pendingFor(statement)) as { id: string; rules: unknown };
    const slack = await until(
      () => received.find((r) => r.path === SLACK_PATH && JSON.stringify(r.body).includes(request.id)),
      'the Slack message',
    );
    expect(slack.body['text']).toContain(`local:bot wants to run a statement on ${DATABASE}`);
    expect(JSON.stringify(slack.body)).toContain('SELECT id, note FROM orders WHERE id = $1');
    const generic = await until(
      () => received.find((r) => r.path === '/generic/hook-secret-path'),
      'the generic webhook message, sent to the URL read from the Secret file',
    );
    expect(generic.body).toMatchObject({
      type: 'gatehouse.approval.requested',
      request: {
        id: request.id,
        shape: 'SELECT id, note FROM orders WHERE id = $1',
        requester: { subject: 'local:bot' },
        database: DATABASE,
        rules: [{ guardrail: 'closed-world', name: 'held' }],
      },
    });

    const decided = await api(`/approvals/${request.id}/approve`, 'lead', {
      reason: 'the agent reads orders by id',
      shapeForSeconds: 3600,
    });
    expect(decided.status).toBe(200);
    const result = await run;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('one');
    expect(result.stderr).toContain(`statement held for approval: request ${request.id}`);

    // The same shape, spelled otherwise and with another id, runs at once, without a notice.
    const bot = await client('bot');
    const notices: string[] = [];
    bot.on('notice', (n) => notices.push(n.message ?? ''));
    const started = performance.now();
    const rows = await bot.query('select id,note from orders  where id=2 -- again');
    expect(performance.now() - started).toBeLessThan(WAIT_SECONDS * 1000);
    expect(rows.rows).toEqual([{ id: 2, note: 'two' }]);
    // Through the extended protocol too: the parameter stands where the literal stood.
    const bound = await bot.query('SELECT id, note FROM orders WHERE id = $1', [1]);
    expect(bound.rows).toEqual([{ id: 1, note: 'one' }]);
    expect(performance.now() - started).toBeLessThan(WAIT_SECONDS * 1000);
    expect(notices).toEqual([]);
    // Another shape is held again, and still pending after waitSeconds.
    const other = await bot.query('SELECT id, note FROM customers WHERE id = 1').catch((e: unknown) => e);
    expect(other).toMatchObject({ code: '42501' });
    expect((other as Error).message).toContain('is still pending after 2 s');
    expect(notices.join('\n')).toContain('statement held for approval');
    // The approved shape followed by another statement is a shape of its own: held, nothing deleted.
    const stacked = await bot
      .query('SELECT id, note FROM orders WHERE id = 1; DELETE FROM orders WHERE id = 1')
      .catch((e: unknown) => e);
    expect(stacked).toMatchObject({ code: '42501' });
    expect((await admin.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 2 }]);
    await bot.end();

    const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_approval_notifications_total\{type="slack",outcome="sent"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_approval_notifications_total\{type="webhook",outcome="sent"\} [1-9]/);
    // The URLs' secret paths are in no log line.
    const log = proxy.lines.join('\n');
    expect(log).not.toContain('slack-secret-path');
    expect(log).not.toContain('hook-secret-path');
  });
});

describe('unknown-shape with action block: the attack of many spellings', () => {
  const base = 'SELECT id, note FROM orders WHERE id = 1';
  const spell = {
    plain: (s: string) => s,
    lower: (s: string) => s.toLowerCase(),
    // Keywords and unquoted names in capitals; quoted names and string literals as they are.
    upper: (s: string) => s.replace(/("[^"]*"|'[^']*')|[a-z]+/g, (m, quoted) => quoted ?? m.toUpperCase()),
    spaced: (s: string) => s.replace(/ /g, '  \n\t '),
    commented: (s: string) => `/* look away */ ${s.replace(' FROM', ' -- note\n FROM')}`,
  };
  /** Texts of the approved shape: other literals, quotes, blanks, comments and case. */
  const same = [
    base,
    'SELECT id, note FROM orders WHERE id = 2',
    'SELECT id, note FROM orders WHERE id = 987654',
    `SELECT "id", note FROM "orders" WHERE id = 1`,
    "SELECT id, note FROM orders WHERE id = '1'",
  ];
  /** Texts of other shapes: what an approval of the base must never let through. */
  const different = [
    'SELECT id, note FROM customers WHERE id = 1',
    'SELECT id, note FROM secret.orders WHERE id = 1',
    'SELECT id, note FROM orders2 WHERE id = 1',
    'SELECT id, secret FROM orders WHERE id = 1',
    'SELECT id, note FROM orders WHERE id = 1 OR true',
    'SELECT id, note FROM orders WHERE id = 1 OR 1 = 1',
    'SELECT id, note FROM orders WHERE id = 1 UNION SELECT id, note FROM customers',
    'SELECT id, note FROM orders WHERE id = 1; DELETE FROM orders WHERE id = 1',
    'SELECT id, note FROM orders WHERE id IN (1, 2)',
    'SELECT id AS note, note AS id FROM orders WHERE id = 1',
    'SELECT id, note FROM orders WHERE id = (SELECT id FROM customers LIMIT 1)',
    'SELECT id, note FROM orders WHERE id = 1 AND note = (SELECT note FROM secret.orders)',
  ];

  it('refuses at once, learns the shape, and once it is approved runs exactly the texts of that shape', async () => {
    const rover = await client('rover');
    const first = await rover.query(base).catch((e: unknown) => e);
    expect(first).toMatchObject({ code: '42501' });
    expect((first as Error).message).toContain('no person approved its shape for local:rover');
    const learned = await api('/approvals/learned?identity=local:rover', 'lead');
    expect(learned.status).toBe(200);
    expect(learned.body).toMatchObject([{ shape: 'SELECT id, note FROM orders WHERE id = $1', count: 1 }]);
    // Not visible to, nor approvable by, someone who approves nothing; rover cannot approve its own.
    expect((await api('/approvals/learned?identity=local:rover', 'trainee')).body).toEqual([]);
    expect(
      (
        await api('/approvals/learned/approve', 'rover', {
          identity: 'local:rover',
          forSeconds: 60,
          reason: 'me',
        })
      ).status,
    ).toBe(403);
    const approved = await api('/approvals/learned/approve', 'lead', {
      identity: 'local:rover',
      forSeconds: 3600,
      reason: 'reviewed',
    });
    expect(approved.status).toBe(200);

    const outcomes: string[] = [];
    for (const [name, transform] of Object.entries(spell)) {
      for (const text of same) {
        const sql = transform(text);
        const result = await rover.query(sql).then(
          () => 'ran',
          (e: Error) => `refused: ${e.message}`,
        );
        if (result !== 'ran') outcomes.push(`${name}: ${JSON.stringify(sql)} should run, ${result}`);
      }
      for (const text of different) {
        const sql = transform(text);
        const result = await rover.query(sql).then(
          () => 'ran',
          (e: pg.DatabaseError) => e.code,
        );
        if (result !== '42501') outcomes.push(`${name}: ${JSON.stringify(sql)} should be refused, ${result}`);
      }
    }
    expect(outcomes).toEqual([]);
    // Nothing was deleted by the stacked statement.
    expect((await admin.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 2 }]);
    await rover.end();
  });
});

describe('dryRun: recorded, learned, and approved in one go', () => {
  it('lets every statement of the learning identity run, records what would have been held, and the CLI approves the learned shapes', async () => {
    const trainee = await client('trainee');
    await trainee.query('SELECT id, note FROM orders WHERE id = 1');
    await trainee.query('SELECT id, note FROM orders WHERE id = 2');
    await trainee.query("UPDATE orders SET note = 'x' WHERE id = 2");
    await trainee.query('DROP TABLE scratch');
    await trainee.end();
    expect((await admin.query("SELECT to_regclass('scratch') AS t")).rows).toEqual([{ t: null }]);

    const records = await until(() => {
      const all = auditRecords();
      return all.some((r) => r['command'] === 'DROP TABLE') ? all : undefined;
    }, 'the DROP TABLE record');
    const drop = records.find((r) => r['type'] === 'statement' && r['command'] === 'DROP TABLE');
    expect(drop).toMatchObject({ outcome: 'ok', subject: 'local:trainee' });
    expect(String(drop?.['reason'])).toContain('dry run: learning/drops would requireApproval');
    expect(String(drop?.['reason'])).toContain('dry run: learning/learn would requireApproval');
    await until(
      () =>
        proxy.lines.find((l) => l.includes('dry run:') && l.includes('learning/drops would requireApproval')),
      'the dry-run log line',
    );

    const listed = await cli('lead', 'learned', '--identity', 'local:trainee', '--json');
    expect(listed.code).toBe(0);
    const shapes = JSON.parse(listed.stdout) as { shape: string; count: number; approvedUntil?: string }[];
    expect(shapes.map((s) => [s.shape, s.count]).sort()).toEqual(
      [
        ['SELECT id, note FROM orders WHERE id = $1', 2],
        ['UPDATE orders SET note = $1 WHERE id = $2', 1],
      ].sort(),
    );
    // DROP TABLE is DDL: its shape cannot stand for it, so it is not learned.
    expect(shapes.some((s) => s.shape.startsWith('DROP'))).toBe(false);
    expect(
      (await cli('trainee', 'approve-shapes', '--identity', 'local:trainee', '--for', '7d', '--reason', 'me'))
        .code,
    ).toBe(1);
    const approved = await cli(
      'lead',
      'approve-shapes',
      '--identity',
      'local:trainee',
      '--for',
      '7d',
      '--reason',
      'seen in staging',
    );
    expect(approved).toMatchObject({ code: 0 });
    expect(approved.stdout).toContain('2 shapes of local:trainee approved until');
    const after = JSON.parse(
      (await cli('lead', 'learned', '--identity', 'local:trainee', '--json')).stdout,
    ) as {
      approvedUntil?: string;
    }[];
    expect(after.every((s) => s.approvedUntil !== undefined)).toBe(true);
    const grants = await until(() => {
      const found = auditRecords().filter(
        (r) =>
          r['type'] === 'approval' &&
          String(r['request']).startsWith('sa-') &&
          r['subject'] === 'local:trainee',
      );
      return found.length === 2 ? found : undefined;
    }, 'the grants audit records');
    expect(grants[0]).toMatchObject({ event: 'approved', by: 'local:lead', reason: 'seen in staging' });
  });
});
