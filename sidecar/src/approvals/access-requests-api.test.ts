import { describe, expect, it } from 'vitest';
import { policyDocument } from '../../../test/support/policy-documents.ts';
import { createLocalAuthenticator } from '../identity/local-authenticator.ts';
import { captureLogs } from '../identity/log-capture.ts';
import { loadPolicyDocuments } from '../policy/load-policy.ts';
import { ApprovalBook } from './approval-book.ts';
import { approvalsApi } from './approvals-api.ts';

const users = [
  { name: 'ann', password: 'ann', groups: [] },
  { name: 'lead', password: 'lead', groups: ['approvers'] },
  { name: 'eve', password: 'eve', groups: [] },
];
const policy = loadPolicyDocuments(
  [
    policyDocument('MaskingPolicy', 'pii', {
      accessRequests: { approvers: [{ kind: 'Group', name: 'approvers' }], maxDurationSeconds: 900 },
    }),
    policyDocument('DatabaseAccess', 'app', {
      subjects: [
        { kind: 'User', name: 'local:ann' },
        { kind: 'User', name: 'local:eve' },
      ],
      allow: ['read'],
      maskingPolicies: ['pii'],
    }),
  ],
  'test',
);

function setup() {
  const logs = captureLogs();
  const book = new ApprovalBook();
  const authenticator = createLocalAuthenticator({ users }, { logger: logs.logger });
  const app = approvalsApi({ book, authenticator, logger: logs.logger, policy: () => policy });
  const call = async (path: string, user?: string, body?: unknown) => {
    const response = await app.request(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        ...(user && { authorization: `Basic ${Buffer.from(`${user}:${user}`).toString('base64')}` }),
        'content-type': 'application/json',
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field
    return { status: response.status, body: (await response.json()) as any };
  };
  return { book, call, logs };
}

const ask = { database: 'app', columns: ['customers.email'], forSeconds: 600, reason: 'ticket 9' };

describe('POST /approvals/access-requests', () => {
  it('opens a request as the caller, which an approver of the policy decides', async () => {
    const { book, call } = setup();
    expect((await call('/approvals/access-requests', undefined, ask)).status).toBe(401);
    const opened = await call('/approvals/access-requests', 'ann', ask);
    expect(opened.status).toBe(201);
    expect(opened.body).toMatchObject({
      phase: 'Pending',
      requester: { subject: 'local:ann' },
      database: 'app',
      reason: 'ticket 9',
      access: { columns: ['customers.email'], forSeconds: 600 },
      rules: [{ guardrail: 'pii', name: 'accessRequests', kind: 'MaskingPolicy' }],
    });
    // Another requester does not see it; the approver does.
    expect((await call(`/approvals/${opened.body.id}`, 'eve')).status).toBe(404);
    const listed = await call('/approvals?phase=Pending', 'lead');
    expect(listed.body.map((r: { id: string }) => r.id)).toEqual([opened.body.id]);
    expect((await call(`/approvals/${opened.body.id}/approve`, 'eve', { reason: 'x' })).status).toBe(404);
    const approved = await call(`/approvals/${opened.body.id}/approve`, 'lead', { reason: 'ok' });
    expect(approved.body.phase).toBe('Approved');
    expect(book.accessExemptions({ subject: 'local:ann', groups: [], method: 'local' }, 'app')).toHaveLength(
      1,
    );
  });

  it('refuses what no MaskingPolicy allows, with a clear message', async () => {
    const { call } = setup();
    const long = await call('/approvals/access-requests', 'ann', { ...ask, forSeconds: 901 });
    expect(long).toMatchObject({ status: 403, body: { problem: 'not-requestable' } });
    expect(long.body.message).toMatch(/901 s is longer than the 900 s MaskingPolicy pii allow/);
    const unmasked = await call('/approvals/access-requests', 'lead', ask);
    expect(unmasked.body.message).toMatch(/no MaskingPolicy masks values for local:lead/);
    const bad = await call('/approvals/access-requests', 'ann', { ...ask, columns: ['*.*'] });
    expect(bad).toMatchObject({ status: 400, body: { problem: 'invalid' } });
  });
});
