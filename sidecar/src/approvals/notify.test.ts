import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/harness/free-port.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { ApprovalBook } from './approval-book.ts';
import { type ApprovalRule, parametersHash } from './approval-request.ts';
import { announceRequests } from './notify.ts';

// A real HTTP receiver on loopback, standing for Slack and for a generic webhook endpoint.
const received: { path: string; body: Record<string, unknown>; type: string | undefined }[] = [];
let base: string;
let closedPort: number;
const server = createServer((request: IncomingMessage, response) => {
  let text = '';
  request.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  request.on('end', () => {
    received.push({ path: request.url ?? '', body: JSON.parse(text), type: request.headers['content-type'] });
    response.writeHead(request.url === '/refuses' ? 500 : 200).end('ok');
  });
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closedPort = await freePort();
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('announceRequests', () => {
  it('posts a Slack message and a webhook JSON with the shape, never the values, and logs failures without the URL', async () => {
    const logs = captureLogs();
    const book = new ApprovalBook();
    book.onChange(announceRequests(logs.logger));
    const rule: ApprovalRule = {
      guardrail: 'prod',
      rule: 'deletes',
      approvers: [{ kind: 'Group', name: 'approvers' }],
      allowSelfApproval: false,
      waitSeconds: 120,
      ttlSeconds: 900,
      notify: [
        { type: 'slack', url: `${base}/services/T0/B0/secret-slack-path` },
        { type: 'webhook', url: `${base}/hooks/approvals` },
        { type: 'webhook', url: `${base}/refuses` },
        { type: 'webhook', url: `http://127.0.0.1:${closedPort}/secret-path` },
        { type: 'webhook', urlSecretRef: { name: 'hook', key: 'url' } },
      ],
    };
    const { request } = book.open({
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
    });
    await until(() => received.length >= 3 && logs.lines.some((l) => l.includes('notification failed')));
    const slack = received.find((r) => r.path.startsWith('/services/'))!;
    expect(slack.type).toBe('application/json');
    expect(slack.body['text']).toContain(`request ${request.id}`);
    expect(JSON.stringify(slack.body)).toContain('DELETE FROM customers WHERE email = $1');
    expect(JSON.stringify(slack.body)).toContain('1 rows measured');
    const hook = received.find((r) => r.path === '/hooks/approvals')!;
    expect(hook.body).toMatchObject({
      type: 'gatehouse.approval.requested',
      request: { id: request.id, shape: 'DELETE FROM customers WHERE email = $1', database: 'shop' },
    });
    for (const r of received) expect(JSON.stringify(r.body)).not.toContain('jane@example.com');
    const log = logs.lines.join('\n');
    expect(log).toContain('approval notification refused');
    expect(log).toContain('approval notification failed');
    expect(log).toContain('urlSecretRef is sent by the operator');
    expect(log).not.toContain('secret-path');
    expect(log).not.toContain('secret-slack-path');
    // Decisions are not announced again.
    const before = received.length;
    book.decide(
      request.id,
      { subject: 'local:lead', groups: ['approvers'], method: 'local' },
      'approve',
      'ok',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received.length).toBe(before);
  });
});
