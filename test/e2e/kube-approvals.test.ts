import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { approvalRequestPath } from '../../operator/src/approvals/approval-request-object.ts';
import { ApprovalBook } from '../../sidecar/src/approvals/approval-book.ts';
import { parametersHash } from '../../sidecar/src/approvals/approval-request.ts';
import {
  type HeldStatement,
  type HoldingRule,
  hold,
  waitForDecision,
} from '../../sidecar/src/approvals/hold.ts';
import { OperatorCallError, OperatorClient } from '../../sidecar/src/approvals/operator-client.ts';
import { OperatorSync } from '../../sidecar/src/approvals/operator-sync.ts';
import type { Identity } from '../../sidecar/src/identity/identity.ts';
import { type Approvers, prepareApprovers } from './support/kube-approvers.ts';
import { type OperatorCluster, startOperatorCluster } from './support/operator-cluster.ts';

/**
 * The Kubernetes side of approvals against a real kube-apiserver: the sidecar-side client (the
 * proxy's ApprovalBook kept in step with the operator by OperatorSync, as `approvals.operator`
 * configures it) asks the operator's endpoint with its pod's projected token; people decide with
 * `gatehouse approve|deny` (kubectl gatehouse) as real API users (service-account tokens), and the
 * operator's webhook stamps who they are. No psql here: the session side is the same book and
 * waitForDecision the PostgreSQL and MySQL sessions use.
 */
const NS = 'shop';
const APP = `system:serviceaccount:${NS}:orders-app`;

let env: OperatorCluster;
let dir: string;
let book: ApprovalBook;
let sync: OperatorSync;
let client: OperatorClient;
let people: Approvers;

const requester: Identity = { subject: APP, groups: ['system:serviceaccounts'], method: 'token-file' };

function rule(over: Partial<HoldingRule> = {}): HoldingRule {
  return {
    guardrail: 'admin-approvals',
    rule: 'drops',
    namespace: NS,
    // The app's own account is an approver too, so that only the self-approval rule refuses it.
    approvers: [
      { kind: 'ServiceAccount', name: 'lead' },
      { kind: 'User', name: APP },
    ],
    allowSelfApproval: false,
    waitSeconds: 30,
    ttlSeconds: 900,
    autoApprove: [],
    ...over,
  };
}

let counter = 0;
function held(over: Partial<HeldStatement> = {}): HeldStatement {
  counter++;
  return {
    binding: {
      subject: APP,
      database: 'orders',
      statement: `DROP TABLE t${counter}`,
      parametersHash: parametersHash([]),
    },
    fingerprint: `fp-${counter}`,
    shape: `DROP TABLE t${counter}`,
    requester,
    rules: [rule()],
    impact: { tables: [`t${counter}`] },
    facts: { kinds: ['drop'], tables: [`t${counter}`], affectedRows: undefined, sensitiveColumns: [] },
    ...over,
  };
}

function pending(statement: HeldStatement): string {
  const start = hold(book, statement, new Date());
  if (!('pending' in start)) throw new Error('expected a pending request');
  return start.pending.id;
}

beforeAll(async () => {
  env = await startOperatorCluster();
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-kube-approvals-'));
  people = await prepareApprovers(env, NS, ['orders-app', 'lead', 'intruder'], dir);
  client = new OperatorClient({
    url: people.operatorUrl,
    caFile: people.operatorCaFile,
    tokenFile: people.sidecarTokenFile,
  });
  book = new ApprovalBook();
  sync = new OperatorSync(book, client, pino({ level: 'silent' }));
}, 240_000);

afterAll(async () => {
  sync?.stop();
  await env?.stop();
});

describe('approvals through the operator and the Kubernetes API', () => {
  it('creates the ApprovalRequest for the sidecar, and releases the statement when an approver approves', async () => {
    const statement = held();
    const id = pending(statement);
    const waiting = waitForDecision(book, statement, id, 30_000);
    const object = await env.eventually('the ApprovalRequest', () =>
      env.api
        .getOptional<{
          spec: { identity: { subject: string }; statement: string; requestedBy: string; database: string };
          status?: { phase?: string };
        }>(approvalRequestPath(NS, id))
        .then((o) => (o?.status?.phase === 'Pending' ? o : undefined)),
    );
    expect(object.spec).toMatchObject({
      identity: { subject: APP },
      database: 'orders',
      statement: statement.binding.statement,
      requestedBy: APP,
    });

    const approved = await people.decide('lead', 'approve', id, 'release window');
    expect(approved, approved.stderr).toMatchObject({ code: 0 });
    expect(approved.stdout).toBe(`${NS}/${id} approved by system:serviceaccount:${NS}:lead\n`);
    const outcome = await waiting;
    expect(outcome).toMatchObject({ run: true, request: { id, phase: 'Executed' } });
    expect(outcome.request.decision).toMatchObject({
      by: `system:serviceaccount:${NS}:lead`,
      reason: 'release window',
    });
    // The execution is reported back, and a second decision is refused.
    await env.eventually('Executed at the operator', async () =>
      (await people.phaseOf(id)) === 'Executed' ? true : undefined,
    );
    expect(await people.decide('lead', 'deny', id)).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('already decided'),
    });
  });

  it('sends the notify targets whose URL is in a Secret from the operator, as the Guardrail names them, with the shape and never the text', async () => {
    const received: { path: string; body: Record<string, unknown> }[] = [];
    const receiver = createServer((request, response) => {
      let data = '';
      request.on('data', (chunk: Buffer) => {
        data += chunk.toString();
      });
      request.on('end', () => {
        received.push({ path: request.url ?? '', body: JSON.parse(data) as Record<string, unknown> });
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const port = (receiver.address() as AddressInfo).port;
      await env.api.create(`/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: 'approvals-hook' },
        stringData: { url: `http://127.0.0.1:${port}/hook/secret-path` },
      });
      await env.api.create(`/apis/${API_VERSION}/namespaces/${NS}/guardrails`, {
        apiVersion: API_VERSION,
        kind: 'Guardrail',
        metadata: { name: 'notifying', namespace: NS },
        spec: {
          rules: [
            {
              name: 'drops',
              kinds: ['drop'],
              action: 'requireApproval',
              approval: {
                approvers: [{ kind: 'ServiceAccount', name: 'lead' }],
                notify: [
                  { type: 'webhook', urlSecretRef: { name: 'approvals-hook', key: 'url' }, onDecision: true },
                ],
              },
            },
          ],
        },
      });
      // The operator has seen the Guardrail once its controller wrote the status.
      await env.eventually('the Guardrail seen by the operator', () =>
        env.api
          .getOptional<{ status?: { observedGeneration?: number } }>(
            `/apis/${API_VERSION}/namespaces/${NS}/guardrails/notifying`,
          )
          .then((g) => g?.status?.observedGeneration),
      );
      const statement = held({
        binding: {
          subject: APP,
          database: 'orders',
          statement: 'DROP TABLE secret_literal_1234',
          parametersHash: parametersHash([]),
        },
        shape: 'DROP TABLE secret_literal_$1',
        rules: [rule({ guardrail: 'notifying' })],
      });
      const id = pending(statement);
      const requested = await env.eventually('the request announced', async () =>
        received.find((r) => (r.body['request'] as { id?: string })?.id === id),
      );
      expect(requested.path).toBe('/hook/secret-path');
      expect(requested.body).toMatchObject({
        type: 'gatehouse.approval.requested',
        request: { id, phase: 'Pending', database: 'orders', shape: 'DROP TABLE secret_literal_$1' },
      });
      expect(JSON.stringify(requested.body)).not.toContain('secret_literal_1234');
      // Sent once: on creation, not again when the informer sees the object.
      expect(received.filter((r) => (r.body['request'] as { id?: string })?.id === id)).toHaveLength(1);
      const waiting = waitForDecision(book, statement, id, 30_000);
      expect(await people.decide('lead', 'deny', id, 'not now')).toMatchObject({ code: 0 });
      await waiting;
      const decided = await env.eventually('the decision announced', async () =>
        received.find(
          (r) =>
            r.body['type'] === 'gatehouse.approval.decided' &&
            (r.body['request'] as { id?: string })?.id === id,
        ),
      );
      expect(decided.body).toMatchObject({
        request: {
          id,
          phase: 'Denied',
          decision: { by: `system:serviceaccount:${NS}:lead`, reason: 'not now' },
        },
      });
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('refuses a user the rule does not name, and the requester deciding their own request', async () => {
    const statement = held();
    const id = pending(statement);
    await env.eventually('the ApprovalRequest', async () =>
      (await people.phaseOf(id)) === 'Pending' ? true : undefined,
    );
    const intruder = await people.decide('intruder', 'approve', id);
    expect(intruder).toMatchObject({ code: 1 });
    expect(intruder.stderr).toContain(
      `system:serviceaccount:${NS}:intruder is not an approver of rule drops`,
    );
    const self = await people.decide('orders-app', 'approve', id);
    expect(self).toMatchObject({ code: 1 });
    expect(self.stderr).toContain('may not decide it');
    expect(await people.phaseOf(id)).toBe('Pending');
    expect(book.get(id)?.phase).toBe('Pending');
  });

  it('stamps the decider from the API server, whatever the client writes as the decider', async () => {
    const statement = held();
    const id = pending(statement);
    const waiting = waitForDecision(book, statement, id, 30_000);
    await env.eventually('the ApprovalRequest', async () =>
      (await people.phaseOf(id)) === 'Pending' ? true : undefined,
    );
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { KubeApi } = await import('../../operator/src/runtime/kube-api.ts');
    const config = new KubeConfig();
    config.loadFromFile(people.kubeconfigs['lead']!);
    // An approver may not write the phase, only a decision.
    await expect(
      new KubeApi(config).patch(
        approvalRequestPath(NS, id, true),
        {
          status: {
            phase: 'Denied',
            decision: { verdict: 'deny', reason: 'no', by: 'someone-else', groups: ['system:masters'] },
          },
        },
        'merge',
      ),
    ).rejects.toThrow('the operator writes the phase');
    const decidedAt = performance.now();
    await new KubeApi(config).patch(
      approvalRequestPath(NS, id, true),
      {
        status: {
          decision: { verdict: 'deny', reason: 'not today', by: 'someone-else', groups: ['system:masters'] },
        },
      },
      'merge',
    );
    const outcome = await waiting;
    // From sending the decision to the API server to the end of the session's wait.
    const decisionMs = performance.now() - decidedAt;
    console.log(`kube approvals: decision sent to the held statement's answer: ${decisionMs.toFixed(0)} ms`);
    expect(decisionMs).toBeLessThan(1000);
    expect(outcome).toMatchObject({ run: false, request: { phase: 'Denied' } });
    expect(outcome.request.decision).toMatchObject({
      by: `system:serviceaccount:${NS}:lead`,
      reason: 'not today',
    });
    expect(outcome.request.decision?.groups).not.toContain('system:masters');
  });

  it('withdraws a request the client cancelled, and expires one no one decided', async () => {
    const cancelled = held();
    const id = pending(cancelled);
    const abort = new AbortController();
    const waiting = waitForDecision(book, cancelled, id, 30_000, abort.signal);
    await env.eventually('the ApprovalRequest', async () =>
      (await people.phaseOf(id)) === 'Pending' ? true : undefined,
    );
    abort.abort();
    expect(await waiting).toMatchObject({ run: false, request: { phase: 'Withdrawn' } });
    await env.eventually('Withdrawn at the operator', async () =>
      (await people.phaseOf(id)) === 'Withdrawn' ? true : undefined,
    );

    const brief = held({ rules: [rule({ ttlSeconds: 2 })] });
    const short = pending(brief);
    await env.eventually(
      'Expired by the operator',
      async () => ((await people.phaseOf(short)) === 'Expired' ? true : undefined),
      15_000,
    );
    expect(await people.decide('lead', 'approve', short)).toMatchObject({ code: 1 });
  });

  it('answers only a sidecar with its own gatehouse.dev token, and only about its own requests', async () => {
    const body = {
      id: 'ar-00000000000000aa',
      identity: { subject: APP, groups: [] },
      database: 'orders',
      statement: 'DROP TABLE x',
      parametersHash: '',
      rules: [
        {
          guardrail: 'admin-approvals',
          rule: 'drops',
          approvers: [{ kind: 'ServiceAccount' as const, name: 'lead' }],
          allowSelfApproval: false,
          waitSeconds: 30,
          ttlSeconds: 900,
        },
      ],
    };
    // A token for the API server's audience, not gatehouse.dev: refused.
    const wrongAudience = join(dir, 'wrong-audience');
    await writeFile(wrongAudience, await people.token('orders-app'));
    const caFile = people.operatorCaFile;
    const url = people.operatorUrl;
    await expect(
      new OperatorClient({ url, caFile, tokenFile: wrongAudience }).create(body),
    ).rejects.toMatchObject({
      status: 401,
    });
    // Another service account with a proper token sees none of orders-app's requests.
    const other = join(dir, 'other');
    await writeFile(other, await people.token('intruder', ['gatehouse.dev']));
    const created = await client.create(body);
    expect(created).toMatchObject({ id: body.id, namespace: NS, phase: 'Pending' });
    const error = await new OperatorClient({ url, caFile, tokenFile: other })
      .get(body.id, 0)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OperatorCallError);
    expect(error).toMatchObject({ status: 404 });
    await expect(new OperatorClient({ url, caFile, tokenFile: other }).create(body)).rejects.toMatchObject({
      status: 409,
    });
  });
});

describe('a sidecar that starts again', () => {
  const quiet = pino({ level: 'silent' });

  /** A pod of the app's service account (no kubelet runs it) and a gatehouse.dev token bound to it. */
  async function pod(name: string): Promise<{ uid: string; client: OperatorClient }> {
    const created = await env.api.create<{ metadata: { uid: string } }>(`/api/v1/namespaces/${NS}/pods`, {
      metadata: { name },
      spec: { serviceAccountName: 'orders-app', containers: [{ name: 'app', image: 'example.invalid/app' }] },
    });
    const uid = created.metadata.uid;
    const answer = await env.api.create<{ status: { token: string } }>(
      `/api/v1/namespaces/${NS}/serviceaccounts/orders-app/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: ['gatehouse.dev'],
          expirationSeconds: 3600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name, uid },
        },
      },
    );
    const tokenFile = join(dir, `${name}.token`);
    await writeFile(tokenFile, answer.status.token);
    return {
      uid,
      client: new OperatorClient({ url: people.operatorUrl, caFile: people.operatorCaFile, tokenFile }),
    };
  }

  /** A process of the sidecar: its own book, kept in step with the operator. */
  function process(client: OperatorClient) {
    const processBook = new ApprovalBook();
    const processSync = new OperatorSync(processBook, client, quiet);
    const open = (statement: HeldStatement) => {
      const start = hold(processBook, statement, new Date());
      if (!('pending' in start)) throw new Error('expected a pending request');
      return start.pending.id;
    };
    return { book: processBook, sync: processSync, open };
  }

  const atOperator = (id: string, phase: string) =>
    env.eventually(`${id} ${phase} at the operator`, async () =>
      (await people.phaseOf(id)) === phase ? true : undefined,
    );

  /** Decides as the approver `lead` through the API, as kubectl gatehouse does (with a shape period). */
  async function decideAsLead(id: string, decision: Record<string, unknown>): Promise<void> {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const { KubeApi } = await import('../../operator/src/runtime/kube-api.ts');
    const config = new KubeConfig();
    config.loadFromFile(people.kubeconfigs['lead']!);
    await new KubeApi(config).patch(approvalRequestPath(NS, id, true), { status: { decision } }, 'merge');
  }

  it('takes back shape approvals and access requests, and ends what its earlier process left waiting', async () => {
    const { restoreFromOperator } = await import('../../sidecar/src/approvals/operator-restore.ts');
    const first = await pod('orders-0');
    const sibling = await pod('orders-1');
    const before = process(first.client);

    // A shape approved for an hour, on a request whose exact text never ran.
    const shaped = held();
    const shapedId = before.open(shaped);
    await atOperator(shapedId, 'Pending');
    await decideAsLead(shapedId, { verdict: 'approve', reason: 'nightly job', shapeForSeconds: 3600 });
    // Clear access to a masked column for ten minutes.
    const access = before.book.openAccess({
      requester,
      database: 'orders',
      access: { columns: ['public.customers.email'], forSeconds: 600 },
      rules: [
        {
          guardrail: 'pii',
          kind: 'MaskingPolicy',
          rule: 'accessRequests',
          namespace: NS,
          approvers: [{ kind: 'ServiceAccount', name: 'lead' }],
          allowSelfApproval: false,
          waitSeconds: 1,
          ttlSeconds: 600,
        },
      ],
      reason: 'ticket 4711',
    });
    await atOperator(access.id, 'Pending');
    const object = await env.api.get<{ spec: { access?: unknown } }>(approvalRequestPath(NS, access.id));
    expect(object.spec.access).toEqual({ columns: ['public.customers.email'], forSeconds: 600 });
    expect((await people.decide('lead', 'approve', access.id)).code).toBe(0);
    // An approval of an exact text its session never used, a request still waiting, a denial.
    const exact = held();
    const exactId = before.open(exact);
    await atOperator(exactId, 'Pending');
    expect((await people.decide('lead', 'approve', exactId)).code).toBe(0);
    const waitingId = before.open(held());
    const deniedId = before.open(held());
    await atOperator(deniedId, 'Pending');
    expect((await people.decide('lead', 'deny', deniedId)).code).toBe(0);
    await atOperator(waitingId, 'Pending');
    for (const id of [shapedId, access.id, exactId, deniedId])
      await env.eventually(`${id} decided in the sidecar`, async () =>
        before.book.get(id)?.phase !== 'Pending' ? true : undefined,
      );
    // Another pod of the same Deployment, running, waits on a request of its own.
    const other = process(sibling.client);
    const siblingId = other.open(held());
    await atOperator(siblingId, 'Pending');

    // The first pod's sidecar dies (nothing reported) and starts again with an empty book.
    before.sync.stop();
    const after = new ApprovalBook();
    const recorded: string[] = [];
    after.onChange(({ event, request }) => recorded.push(`${event} ${request.id}`));
    await restoreFromOperator(after, first.client, 'orders', quiet, new AbortController().signal);

    // The shape runs with other literals; the access request is an exemption until its end.
    const sameShape = { ...held().binding, statement: 'DROP TABLE other_literal' };
    expect(after.claim(sameShape, shaped.fingerprint)).toMatchObject({
      by: 'shape',
      request: { id: shapedId },
    });
    expect(after.accessExemptions(requester, 'orders')).toEqual([
      { request: access.id, columns: ['public.customers.email'], until: expect.any(Number) },
    ]);
    expect(after.accessExemptions(requester, 'other-db')).toEqual([]);
    // The exact text is not released: its session is gone, and the statement asks anew.
    expect(after.claim(exact.binding, exact.fingerprint)).toBeUndefined();
    expect(after.deniedSince(APP, Date.now() - 3600_000)).toBe(true);
    // What the earlier process left is ended at the operator, and recorded; the sibling's is not.
    expect(await people.phaseOf(waitingId)).toBe('Withdrawn');
    expect(await people.phaseOf(exactId)).toBe('Expired');
    expect(await people.phaseOf(siblingId)).toBe('Pending');
    expect(await people.phaseOf(access.id)).toBe('Approved');
    expect(recorded).toEqual(expect.arrayContaining([`withdrawn ${waitingId}`, `expired ${exactId}`]));
    expect(recorded.join()).not.toContain(siblingId);

    // Once the sibling's pod is gone, the next start ends its request too; the shape still stands.
    other.sync.stop();
    await env.api.delete(`/api/v1/namespaces/${NS}/pods/orders-1?gracePeriodSeconds=0`);
    await env.eventually('the sibling pod gone', async () =>
      (await env.api.getOptional(`/api/v1/namespaces/${NS}/pods/orders-1`)) ? undefined : true,
    );
    const again = new ApprovalBook();
    await restoreFromOperator(again, first.client, 'orders', quiet, new AbortController().signal);
    expect(await people.phaseOf(siblingId)).toBe('Withdrawn');
    expect(again.claim(sameShape, shaped.fingerprint)).toMatchObject({ by: 'shape' });
    before.sync.stop();
  });
});
