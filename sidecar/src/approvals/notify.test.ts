import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/harness/free-port.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { ApprovalBook } from './approval-book.ts';
import { type ApprovalRule, parametersHash } from './approval-request.ts';
import { announceRequests } from './notify-delivery.ts';

// A real HTTP receiver on loopback, standing for Slack and for a generic webhook endpoint.
const received: { path: string; body: Record<string, unknown>; type: string | undefined }[] = [];
const attempts = new Map<string, number>();
let base: string;
let closedPort: number;
const server = createServer((request: IncomingMessage, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  request.on('end', () => {
    const path = request.url ?? '';
    const attempt = (attempts.get(path) ?? 0) + 1;
    attempts.set(path, attempt);
    // /flaky fails its first attempt; /refuses always fails; /bad-request is a 4xx, not retried.
    const status =
      path === '/refuses'
        ? 500
        : path === '/bad-request'
          ? 400
          : path === '/flaky' && attempt === 1
            ? 503
            : 200;
    if (status === 200)
      received.push({ path, body: JSON.parse(text), type: request.headers['content-type'] });
    response.writeHead(status).end('ok');
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closedPort = await freePort();
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

/** Waits for `condition`; generous, since a loaded machine delays the retries' timers and sockets. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

const lead = { subject: 'local:lead', groups: ['approvers'], method: 'local' } as const;

function openRequest(book: ApprovalBook, rule: ApprovalRule) {
  return book.open({
    binding: {
      subject: 'local:admin',
      database: 'shop',
      statement: "DELETE FROM customers WHERE email = 'jane@example.com'",
      parametersHash: parametersHash([]),
    },
    fingerprint: 'abc',
    shape: 'DELETE FROM customers WHERE email = $1',
    requester: { subject: 'local:admin', groups: [], method: 'local' },
    rules: [rule],
    impact: { affectedRows: 1, tables: ['customers'] },
  }).request;
}

const rule = (notify: ApprovalRule['notify']): ApprovalRule => ({
  guardrail: 'prod',
  rule: 'deletes',
  approvers: [{ kind: 'Group', name: 'approvers' }],
  allowSelfApproval: false,
  waitSeconds: 120,
  ttlSeconds: 900,
  ...(notify && { notify }),
});

describe('announceRequests', () => {
  it('posts a Slack message and a webhook JSON with the shape, never the values; retries, counts, and logs failures without the URL', async () => {
    const logs = captureLogs();
    const book = new ApprovalBook();
    const counted: string[] = [];
    const secrets = mkdtempSync(join(tmpdir(), 'notify-secrets-'));
    mkdirSync(join(secrets, 'hook'));
    writeFileSync(join(secrets, 'hook', 'url'), `${base}/from-secret/secret-in-file\n`);
    book.onChange(
      announceRequests(logs.logger, {
        count: (type, outcome) => counted.push(`${type}:${outcome}`),
        secretsDir: secrets,
        backoffMs: [20, 40],
      }),
    );
    const request = openRequest(
      book,
      rule([
        { type: 'slack', url: `${base}/services/T0/B0/secret-slack-path` },
        { type: 'webhook', url: `${base}/hooks/approvals` },
        { type: 'webhook', url: `${base}/flaky` },
        { type: 'webhook', url: `${base}/refuses` },
        { type: 'webhook', url: `${base}/bad-request` },
        { type: 'webhook', url: `http://127.0.0.1:${closedPort}/secret-path` },
        { type: 'webhook', urlSecretRef: { name: 'hook', key: 'url' } },
        { type: 'webhook', urlSecretRef: { name: 'missing', key: 'url' } },
        { type: 'webhook', urlSecretRef: { name: 'hook', key: '..' } },
      ]),
    );
    await until(() => counted.length >= 9);
    expect(counted.sort()).toEqual(
      [
        'slack:sent',
        'webhook:sent',
        'webhook:sent',
        'webhook:sent',
        'webhook:failed',
        'webhook:failed',
        'webhook:failed',
        'webhook:skipped',
        'webhook:skipped',
      ].sort(),
    );
    // Retried: a 5xx three times, a 4xx once, a flaky endpoint until it answers.
    expect(attempts.get('/refuses')).toBe(3);
    expect(attempts.get('/bad-request')).toBe(1);
    expect(attempts.get('/flaky')).toBe(2);
    const slack = received.find((r) => r.path.startsWith('/services/'))!;
    expect(slack.type).toBe('application/json');
    expect(slack.body['text']).toContain(`request ${request.id}`);
    expect(JSON.stringify(slack.body)).toContain('DELETE FROM customers WHERE email = $1');
    expect(JSON.stringify(slack.body)).toContain('1 rows measured');
    for (const path of ['/hooks/approvals', '/from-secret/secret-in-file'])
      expect(received.find((r) => r.path === path)?.body).toMatchObject({
        type: 'gatehouse.approval.requested',
        request: {
          id: request.id,
          shape: 'DELETE FROM customers WHERE email = $1',
          database: 'shop',
          requester: { subject: 'local:admin' },
        },
      });
    for (const r of received) expect(JSON.stringify(r.body)).not.toContain('jane@example.com');
    const log = logs.lines.join('\n');
    expect(log).toContain('approval notification failed');
    expect(log).toContain('answered 500');
    expect(log).toContain('unreachable');
    expect(log).toContain('urlSecretRef missing/url cannot be read (ENOENT)');
    expect(log).toContain('is not a Secret name and key');
    for (const secret of ['secret-path', 'secret-slack-path', 'secret-in-file', 'jane@example.com'])
      expect(log).not.toContain(secret);

    // Decisions are announced only to targets that ask for them.
    received.length = 0;
    book.decide(request.id, lead, 'approve', 'ok');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(received).toEqual([]);
  });

  it('announces the decision to targets with onDecision', async () => {
    received.length = 0;
    const book = new ApprovalBook();
    book.onChange(announceRequests(captureLogs().logger, { backoffMs: [] }));
    const request = openRequest(
      book,
      rule([
        { type: 'slack', url: `${base}/decisions/slack`, onDecision: true },
        { type: 'webhook', url: `${base}/decisions/hook`, onDecision: true },
      ]),
    );
    await until(() => received.length >= 2);
    book.decide(request.id, lead, 'deny', 'not during the sale');
    await until(() => received.length >= 4);
    const decided = received.filter((r) => JSON.stringify(r.body).includes('not during the sale'));
    expect(decided.map((r) => r.path).sort()).toEqual(['/decisions/hook', '/decisions/slack']);
    expect(decided.find((r) => r.path === '/decisions/hook')!.body).toMatchObject({
      type: 'gatehouse.approval.decided',
      request: { id: request.id, phase: 'Denied', decision: { by: 'local:lead' } },
    });
    expect(decided.find((r) => r.path === '/decisions/slack')!.body['text']).toContain(
      `Request ${request.id} of local:admin on shop was denied by local:lead: not during the sale`,
    );
  });

  it('serves only its share of the targets: a sidecar in a cluster the URLs, the operator the secret ones', async () => {
    received.length = 0;
    const targets = [
      { type: 'webhook' as const, url: `${base}/share/plain` },
      { type: 'webhook' as const, urlSecretRef: { name: 'hook', key: 'url' } },
    ];
    const asked: string[] = [];
    const sidecar = new ApprovalBook();
    const sidecarCounts: string[] = [];
    sidecar.onChange(
      announceRequests(captureLogs().logger, {
        targets: 'url',
        count: (type, outcome) => sidecarCounts.push(`${type}:${outcome}`),
      }),
    );
    const operator = new ApprovalBook();
    operator.onChange(
      announceRequests(captureLogs().logger, {
        targets: 'urlSecretRef',
        secretUrl: async (ref, r) => {
          asked.push(`${r.guardrail}:${ref.name}/${ref.key}`);
          return { url: `${base}/share/from-secret` };
        },
      }),
    );
    openRequest(sidecar, rule(targets));
    openRequest(operator, rule(targets));
    await until(() => received.length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received.map((r) => r.path).sort()).toEqual(['/share/from-secret', '/share/plain']);
    expect(sidecarCounts).toEqual(['webhook:sent']);
    expect(asked).toEqual(['prod:hook/url']);
  });
});
