import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLocalAuthenticator } from '../identity/local-authenticator.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { createTestIssuer, nowSeconds } from '../identity/test-issuer.ts';
import { createTokenAuthenticator } from '../identity/token-authenticator.ts';
import { ApprovalBook } from './approval-book.ts';
import { parametersHash } from './approval-request.ts';
import { approvalsApi } from './approvals-api.ts';

const users = [
  { name: 'admin', password: 'admin', groups: ['dba'] },
  { name: 'lead', password: 'lead', groups: ['approvers'] },
  { name: 'viewer', password: 'viewer', groups: ['dev'] },
];

function setup() {
  const logs = captureLogs();
  const book = new ApprovalBook();
  const authenticator = createLocalAuthenticator({ users }, { logger: logs.logger });
  const app = approvalsApi({ book, authenticator, logger: logs.logger });
  const { request } = book.open({
    binding: {
      subject: 'local:admin',
      database: 'shop',
      statement: "DROP TABLE customers -- 'jane@example.com'",
      parametersHash: parametersHash([]),
    },
    fingerprint: 'fp1',
    shape: 'DROP TABLE customers',
    requester: { subject: 'local:admin', groups: ['dba'], method: 'local' },
    rules: [
      {
        guardrail: 'production',
        rule: 'admin-approvals',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 120,
        ttlSeconds: 900,
      },
    ],
    impact: { tables: ['customers'] },
  });
  const call = (path: string, user?: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.request(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        ...(user && { authorization: `Basic ${Buffer.from(`${user}:${user}`).toString('base64')}` }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return { book, app, call, id: request.id, logs };
}

describe('approvals API', () => {
  it('refuses callers without credentials or with wrong ones, naming how to authenticate', async () => {
    const { call, app, id } = setup();
    const none = await call('/approvals');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Basic');
    const wrong = await app.request('/approvals', {
      headers: { authorization: `Basic ${Buffer.from('lead:nope').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ problem: 'unauthenticated' });
    for (const header of ['Bearer', 'Basic', 'Basic !!!', 'Digest x', 'lead:lead'])
      expect(
        (await call(`/approvals/${id}`, undefined, undefined, { authorization: header })).status,
        header,
      ).toBe(401);
  });

  it('lists a request to its approvers and its requester, and hides it from others', async () => {
    const { call, id } = setup();
    for (const user of ['lead', 'admin']) {
      const list = (await (await call('/approvals', user)).json()) as { id: string }[];
      expect(
        list.map((r) => r.id),
        user,
      ).toEqual([id]);
      expect((await call(`/approvals/${id}`, user)).status).toBe(200);
    }
    expect(await (await call('/approvals', 'viewer')).json()).toEqual([]);
    expect((await call(`/approvals/${id}`, 'viewer')).status).toBe(404);
    expect(await (await call('/approvals?phase=Approved', 'lead')).json()).toEqual([]);
    expect((await call('/approvals?phase=Done', 'lead')).status).toBe(400);
  });

  it('shows what an approver decides on', async () => {
    const { call, id } = setup();
    expect(await (await call(`/approvals/${id}`, 'lead')).json()).toMatchObject({
      id,
      phase: 'Pending',
      requester: { subject: 'local:admin', groups: ['dba'] },
      database: 'shop',
      statement: "DROP TABLE customers -- 'jane@example.com'",
      rules: [{ guardrail: 'production', name: 'admin-approvals' }],
      impact: { tables: ['customers'] },
      requestedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('approves as the authenticated caller; the body cannot name another approver', async () => {
    const { call, id, book, logs } = setup();
    const refused = await call(`/approvals/${id}/approve`, 'lead', { reason: 'ok', by: 'local:ceo' });
    expect(refused.status).toBe(400);
    const answer = await call(`/approvals/${id}/approve`, 'lead', { reason: '  backup checked ' });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({
      phase: 'Approved',
      decision: { by: 'local:lead', reason: 'backup checked' },
    });
    expect(book.get(id)?.decision?.by).toBe('local:lead');
    // The statement text (which may hold personal data) is not logged.
    expect(logs.lines.join('\n')).not.toContain('jane@example.com');
  });

  it('refuses self-approval, non-approvers, a second decision, and bad bodies with the right status', async () => {
    const { call, id } = setup();
    expect((await call(`/approvals/${id}/approve`, 'admin', { reason: 'mine' })).status).toBe(403);
    expect((await call(`/approvals/${id}/approve`, 'viewer', { reason: 'x' })).status).toBe(404);
    for (const body of [
      {},
      { reason: '' },
      { reason: '   ' },
      { reason: 7 },
      [],
      'not json',
      { reason: 'x'.repeat(1001) },
    ])
      expect((await call(`/approvals/${id}/deny`, 'lead', body)).status, JSON.stringify(body)).toBe(400);
    expect((await call(`/approvals/${id}/deny`, 'lead', { reason: 'x', shapeForSeconds: 60 })).status).toBe(
      400,
    );
    expect(
      (await call(`/approvals/${id}/approve`, 'lead', { reason: 'x', shapeForSeconds: 'a day' })).status,
    ).toBe(400);
    expect((await call(`/approvals/${id}/deny`, 'lead', { reason: 'not now' })).status).toBe(200);
    const again = await call(`/approvals/${id}/approve`, 'lead', { reason: 'changed my mind' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ problem: 'not-pending' });
    expect((await call('/approvals/ar-nope/approve', 'lead', { reason: 'x' })).status).toBe(404);
    expect((await call('/nowhere', 'lead')).status).toBe(404);
  });

  it('approves a shape for a period', async () => {
    const { call, id } = setup();
    const answer = await call(`/approvals/${id}/approve`, 'lead', {
      reason: 'nightly',
      shapeForSeconds: 3600,
    });
    expect(await answer.json()).toMatchObject({ decision: { shapeUntil: expect.any(String) } });
  });

  it('takes a bearer token in token mode', async () => {
    const issuer = await createTestIssuer('ES256', 'k1');
    const dir = mkdtempSync(join(tmpdir(), 'approvals-api-'));
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, issuer.publicPem);
    const logs = captureLogs();
    const authenticator = await createTokenAuthenticator(
      { issuer: 'https://idp.example', audience: 'gatehouse', publicKeyFile: keyFile },
      { logger: logs.logger },
    );
    const book = new ApprovalBook();
    const app = approvalsApi({ book, authenticator, logger: logs.logger });
    const token = await issuer.sign({
      iss: 'https://idp.example',
      aud: 'gatehouse',
      sub: 'lead@example.com',
      groups: ['approvers'],
      exp: nowSeconds() + 60,
      iat: nowSeconds(),
    });
    const ok = await app.request('/approvals', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    const forged = await app.request('/approvals', {
      headers: { authorization: `Bearer ${token.slice(0, -4)}AAAA` },
    });
    expect(forged.status).toBe(401);
  });
});
