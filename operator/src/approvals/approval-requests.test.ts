import { describe, expect, it } from 'vitest';
import type { NewApprovalRequestValue } from '../../../sidecar/src/approvals/operator-protocol.ts';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import { type ApprovalRequestObject, approvalRequestPath } from './approval-request-object.ts';
import { ApprovalRequests, FINISHED_RETENTION_MS } from './approval-requests.ts';

const NS = 'shop';
const app = {
  username: `system:serviceaccount:${NS}:orders-app`,
  namespace: NS,
  serviceAccount: 'orders-app',
};
const other = { username: `system:serviceaccount:${NS}:other`, namespace: NS, serviceAccount: 'other' };
const logger = { info: () => {}, warn: () => {} };

function newRequest(id: string, ttlSeconds = 60): NewApprovalRequestValue {
  return {
    id,
    identity: { subject: app.username, groups: [] },
    database: 'orders',
    statement: 'DROP TABLE t',
    parametersHash: '',
    rules: [
      {
        guardrail: 'g',
        rule: 'r',
        approvers: [{ kind: 'Group', name: 'approvers' }],
        allowSelfApproval: false,
        waitSeconds: 30,
        ttlSeconds,
      },
    ],
  };
}

async function world() {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  let now = Date.parse('2026-12-07T10:00:00Z');
  const requests = new ApprovalRequests({
    api,
    cache: api.informer<ApprovalRequestObject>(approvalRequestPath()),
    logger,
    now: () => now,
  });
  const phase = async (id: string) =>
    (await api.get<ApprovalRequestObject>(approvalRequestPath(NS, id))).status?.phase;
  return { api, requests, phase, advance: (ms: number) => (now += ms) };
}

describe('ApprovalRequests', () => {
  it("creates the object in the caller's namespace, with the operator's clock and the caller as requestedBy", async () => {
    const { api, requests } = await world();
    const created = await requests.create(app, newRequest('ar-0000000000000001', 60));
    expect(created).toEqual({
      created: true,
      view: { id: 'ar-0000000000000001', namespace: NS, phase: 'Pending' },
    });
    const object = await api.get<ApprovalRequestObject>(approvalRequestPath(NS, 'ar-0000000000000001'));
    expect(object.spec).toMatchObject({
      requestedBy: app.username,
      requestedAt: '2026-12-07T10:00:00.000Z',
      expiresAt: '2026-12-07T10:01:00.000Z',
    });
    // The same id again is the same request for its maker, and not another's.
    expect(await requests.create(app, newRequest('ar-0000000000000001'))).toMatchObject({ created: false });
    expect(await requests.create(other, newRequest('ar-0000000000000001'))).toBeUndefined();
    expect(await requests.view(other, 'ar-0000000000000001', 0)).toBeUndefined();
    expect(await requests.withdraw(other, 'ar-0000000000000001')).toBeUndefined();
  });

  it('records an automatic approval as Approved by gatehouse:auto-approve with its condition', async () => {
    const { requests } = await world();
    const created = await requests.create(app, {
      ...newRequest('ar-0000000000000002'),
      autoApproved: { condition: 'small' },
    });
    expect(created?.view).toMatchObject({
      phase: 'Approved',
      decision: {
        by: 'gatehouse:auto-approve',
        condition: 'small',
        reason: 'auto-approved by condition small',
      },
    });
  });

  it('moves Pending to Withdrawn and Approved to Executed, and nothing else', async () => {
    const { api, requests, phase } = await world();
    await requests.create(app, newRequest('ar-0000000000000003'));
    expect(await requests.executed(app, 'ar-0000000000000003')).toMatchObject({ phase: 'Pending' });
    expect(await requests.withdraw(app, 'ar-0000000000000003')).toMatchObject({ phase: 'Withdrawn' });
    await requests.create(app, newRequest('ar-0000000000000004'));
    await api.patch(approvalRequestPath(NS, 'ar-0000000000000004', true), { status: { phase: 'Approved' } });
    expect(await requests.withdraw(app, 'ar-0000000000000004')).toMatchObject({ phase: 'Approved' });
    expect(await requests.executed(app, 'ar-0000000000000004')).toMatchObject({ phase: 'Executed' });
    expect(await phase('ar-0000000000000004')).toBe('Executed');
  });

  it('expires what no one decided or used in time, and deletes what finished long ago', async () => {
    const { api, requests, phase, advance } = await world();
    await requests.create(app, newRequest('ar-0000000000000005', 60));
    await requests.create(app, newRequest('ar-0000000000000006', 60));
    advance(30_000);
    await api.patch(approvalRequestPath(NS, 'ar-0000000000000006', true), {
      status: {
        phase: 'Approved',
        decision: { verdict: 'approve', reason: 'ok', by: 'alice', at: '2026-12-07T10:00:30.000Z' },
      },
    });
    advance(30_000);
    await requests.sweep();
    expect(await phase('ar-0000000000000005')).toBe('Expired');
    // An approval is usable for the TTL from its decision.
    expect(await phase('ar-0000000000000006')).toBe('Approved');
    advance(30_000);
    expect(await requests.view(app, 'ar-0000000000000006', 0)).toMatchObject({ phase: 'Expired' });
    await requests.sweep();
    expect(await phase('ar-0000000000000006')).toBe('Expired');
    advance(FINISHED_RETENTION_MS);
    await requests.sweep();
    expect(await api.getOptional(approvalRequestPath(NS, 'ar-0000000000000005'))).toBeUndefined();
  });
});

describe('ApprovalRequests.restore', () => {
  const podA = { ...app, pod: { name: 'orders-a', uid: 'uid-a' } };
  const decide = (api: FakeKubeApi, id: string, phase: string, decision: Record<string, unknown>) =>
    api.patch(approvalRequestPath(NS, id, true), {
      status: { phase, decision: { by: 'alice', at: '2026-12-07T10:00:00.000Z', reason: 'ok', ...decision } },
    });

  it("ends its own pod's earlier requests and a gone pod's, keeps a running sibling's, and reports what stands", async () => {
    const { api, requests, phase } = await world();
    const running = await api.create<{ metadata: { uid: string } }>(`/api/v1/namespaces/${NS}/pods`, {
      metadata: { name: 'orders-b' },
    });
    const podB = { ...app, pod: { name: 'orders-b', uid: running.metadata.uid } };
    const id = (n: number) => `ar-00000000000001${String(n).padStart(2, '0')}`;
    await requests.create(podA, newRequest(id(1), 600)); // Pending
    await requests.create(podA, newRequest(id(2), 600)); // approved exact text, unused
    await decide(api, id(2), 'Approved', { verdict: 'approve' });
    await requests.create(podA, { ...newRequest(id(3), 600), fingerprint: 'f' }); // shape for an hour
    await decide(api, id(3), 'Approved', { verdict: 'approve', shapeForSeconds: 3600 });
    await requests.create(podA, {
      ...newRequest(id(4), 600),
      statement: 'ACCESS customers.email FOR 600s',
      access: { columns: ['customers.email'], forSeconds: 600 },
    });
    await decide(api, id(4), 'Approved', { verdict: 'approve' });
    await requests.create(podA, newRequest(id(5), 600));
    await decide(api, id(5), 'Denied', { verdict: 'deny' });
    await requests.create(podB, newRequest(id(6), 600)); // a running sibling's
    await requests.create({ ...app, pod: { name: 'orders-c', uid: 'uid-c' } }, newRequest(id(7), 600));
    await requests.create(podA, newRequest(id(8), 600)); // this process's own (a retry)
    await requests.create(podA, { ...newRequest(id(9), 600), database: 'other' });

    const answer = await requests.restore(podA, { database: 'orders', keep: [id(8)] });
    expect(answer.ended.map((v) => [v.id, v.phase]).sort()).toEqual([
      [id(1), 'Withdrawn'],
      [id(2), 'Expired'],
      [id(3), 'Expired'],
      [id(7), 'Withdrawn'],
    ]);
    expect(answer.standing.map((v) => v.id).sort()).toEqual([id(3), id(4)]);
    expect(answer.standing.find((v) => v.id === id(4))).toMatchObject({
      until: '2026-12-07T10:10:00.000Z',
      spec: { access: { columns: ['customers.email'], forSeconds: 600 } },
    });
    expect(answer.denials).toEqual([{ subject: app.username, at: '2026-12-07T10:00:00.000Z' }]);
    for (const [n, expected] of [
      [6, 'Pending'],
      [8, 'Pending'],
      [9, 'Pending'],
      [4, 'Approved'],
    ] as const)
      expect(await phase(id(n)), id(n)).toBe(expected);
    // Another service account finds none of these.
    expect(await requests.restore(other, { database: 'orders', keep: [] })).toEqual({
      standing: [],
      ended: [],
      denials: [],
    });
  });
});
