import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { approvalRequestPath } from '../../operator/src/approvals/approval-request-object.ts';
import { kubeTokenReviewer } from '../../operator/src/collector/collector-auth.ts';
import { loadCollectorConfig } from '../../operator/src/collector/collector-config.ts';
import { type RunningCollector, startCollector } from '../../operator/src/collector/start-collector.ts';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { KubeApi } from '../../operator/src/runtime/kube-api.ts';
import { ApprovalBook } from '../../sidecar/src/approvals/approval-book.ts';
import { parametersHash } from '../../sidecar/src/approvals/approval-request.ts';
import { type HeldStatement, hold } from '../../sidecar/src/approvals/hold.ts';
import { OperatorClient } from '../../sidecar/src/approvals/operator-client.ts';
import { OperatorSync } from '../../sidecar/src/approvals/operator-sync.ts';
import { writeSignedLog } from '../../sidecar/src/audit/testing.ts';
import { launchBrowser, screenshot } from '../harness/browser.ts';
import { SERVICE_ACCOUNT_ISSUER } from '../harness/kube/start-kube.ts';
import { type Approvers, prepareApprovers } from './support/kube-approvers.ts';
import {
  OPERATOR_NAMESPACE,
  type OperatorCluster,
  startOperatorCluster,
} from './support/operator-cluster.ts';

/**
 * The console deciding Kubernetes ApprovalRequests against a real kube-apiserver and the operator's
 * approvals webhook: people sign in with their own service-account tokens, and the console writes
 * `status.decision` with that token, so the webhook stamps and checks them. The collector runs with
 * its own service account, which may review tokens and nothing else. Driven over HTTP with the
 * console's own forms (session cookie and CSRF token).
 */
const NS = 'shop';
const APP = `system:serviceaccount:${NS}:orders-app`;
const LEAD = `system:serviceaccount:${NS}:lead`;
const INTRUDER = `system:serviceaccount:${NS}:intruder`;
const AUDITOR = `system:serviceaccount:${NS}:auditor`;
const COLLECTOR_SA = 'gatehouse-collector';
const COLLECTOR = `system:serviceaccount:${OPERATOR_NAMESPACE}:${COLLECTOR_SA}`;

let env: OperatorCluster;
let people: Approvers;
let sync: OperatorSync;
let collector: RunningCollector;
let base: string;
const ids: string[] = [];

function held(n: number): HeldStatement {
  return {
    binding: {
      subject: APP,
      database: 'orders',
      statement: `DROP TABLE t${n}`,
      parametersHash: parametersHash([]),
    },
    fingerprint: `fp-${n}`,
    shape: `DROP TABLE t${n}`,
    requester: { subject: APP, groups: ['system:serviceaccounts'], method: 'token-file' },
    rules: [
      {
        guardrail: 'admin-approvals',
        rule: 'drops',
        namespace: NS,
        approvers: [{ kind: 'ServiceAccount', name: 'lead' }],
        allowSelfApproval: false,
        waitSeconds: 600,
        ttlSeconds: 900,
        autoApprove: [],
      },
    ],
    impact: { tables: [`t${n}`] },
    facts: { kinds: ['drop'], tables: [`t${n}`], affectedRows: undefined, sensitiveColumns: [] },
  };
}

/** A kubeconfig client as the collector's own service account: `create tokenreviews`, nothing else. */
async function collectorApi(dir: string): Promise<KubeApi> {
  const { api } = env;
  await api.create(`/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts`, {
    metadata: { name: COLLECTOR_SA },
  });
  await api.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    metadata: { name: 'test-collector' },
    rules: [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }],
  });
  await api.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    metadata: { name: 'test-collector' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-collector' },
    subjects: [{ kind: 'ServiceAccount', name: COLLECTOR_SA, namespace: OPERATOR_NAMESPACE }],
  });
  const answer = await api.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${COLLECTOR_SA}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  const path = join(dir, 'collector.kubeconfig');
  await writeFile(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'test',
          cluster: { server: env.cluster.server, 'certificate-authority': env.cluster.caFile },
        },
      ],
      users: [{ name: 'collector', user: { token: answer.status.token } }],
      contexts: [{ name: 'collector', context: { cluster: 'test', user: 'collector' } }],
      'current-context': 'collector',
    }),
  );
  const config = new KubeConfig();
  config.loadFromFile(path);
  return new KubeApi(config);
}

beforeAll(async () => {
  env = await startOperatorCluster();
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-console-kube-'));
  people = await prepareApprovers(env, NS, ['orders-app', 'lead', 'intruder', 'auditor', 'leaver'], dir);
  const book = new ApprovalBook();
  sync = new OperatorSync(
    book,
    new OperatorClient({
      url: people.operatorUrl,
      caFile: people.operatorCaFile,
      tokenFile: people.sidecarTokenFile,
    }),
    pino({ level: 'silent' }),
  );
  for (const n of [1, 2, 3]) {
    const start = hold(book, held(n), new Date());
    if (!('pending' in start)) throw new Error('expected a pending request');
    ids.push(start.pending.id);
  }
  for (const id of ids)
    await env.eventually(`ApprovalRequest ${id} Pending`, async () =>
      (await people.phaseOf(id).catch(() => undefined)) === 'Pending' ? true : undefined,
    );

  await writeFile(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl('collector_console_kube_e2e') },
      listen: '127.0.0.1:0',
      // The API server's audience too: the console forwards these very tokens to it.
      auth: {
        tokenReview: { audiences: ['gatehouse.dev', SERVICE_ACCOUNT_ISSUER] },
        localUsers: [{ name: 'boss', password: 'boss-password' }],
      },
      console: {
        viewers: [{ subject: AUDITOR }],
        approvers: [
          { subject: LEAD },
          { subject: INTRUDER },
          { subject: `system:serviceaccount:${NS}:leaver` },
          { subject: 'local:boss' },
        ],
        approvals: {
          kubernetes: { server: env.cluster.server, caFile: env.cluster.caFile, cluster: 'kube' },
        },
      },
    }),
  );
  const config = loadCollectorConfig(join(dir, 'collector.yaml'), {});
  collector = await startCollector(config, {
    logger: pino({ level: 'silent' }),
    tokenReviewer: kubeTokenReviewer(await collectorApi(dir), config.tokenReview!.audiences),
  });
  base = collector.url;

  // What the sidecar ships of its requests: the queue the console shows.
  const log = await writeSignedLog(
    dir,
    ids.map((id, i) => ({
      type: 'approval' as const,
      event: 'requested' as const,
      request: id,
      subject: APP,
      database: 'orders',
      statement: `DROP TABLE t${i + 1}`,
      fingerprint: null,
      parametersHash: '',
      rules: ['admin-approvals/drops'],
    })),
  );
  const lines = (await readFile(log.file, 'utf8')).trimEnd().split('\n');
  await collector.store.ingest(
    {
      cluster: 'kube',
      namespace: NS,
      pod: 'orders-0',
      database: 'orders',
      logKeyId: String(JSON.parse(lines[0]!).keyId),
    },
    lines,
  );
}, 240_000);

afterAll(async () => {
  sync?.stop();
  await collector?.close();
  await env?.stop();
});

interface Browser {
  cookie: string;
  token?: string;
  page(): Promise<string>;
  decide(id: string, verdict: 'approve' | 'deny', reason: string): Promise<Response>;
}

async function signIn(form: Record<string, string>): Promise<Browser> {
  const answer = await fetch(`${base}/console/sign-in`, {
    method: 'POST',
    body: new URLSearchParams({ ...form, next: '/console/approvals' }),
    redirect: 'manual',
  });
  expect(answer.status, await answer.text()).toBe(303);
  const cookie = answer.headers.get('set-cookie')!.split(';')[0]!;
  const browser: Browser = {
    cookie,
    page: async () => (await fetch(`${base}/console/approvals`, { headers: { cookie } })).text(),
    async decide(id, verdict, reason) {
      const csrf = /name="csrf" value="([^"]+)"/.exec(await browser.page())![1]!;
      return fetch(`${base}/console/approvals/${id}/decide`, {
        method: 'POST',
        headers: { cookie, origin: base },
        body: new URLSearchParams({ csrf, verdict, reason }),
        redirect: 'manual',
      });
    },
  };
  return browser;
}

const asToken = async (account: string) => {
  const token = await people.token(account);
  return { ...(await signIn({ method: 'token', token })), token };
};

type Stored = { status?: { phase?: string; decision?: { by?: string; reason?: string; verdict?: string } } };
const stored = (id: string) => env.api.get<Stored>(approvalRequestPath(NS, id));
const section = (page: string, id: string) => {
  const start = page.indexOf(`<section class="approval" id="${id}">`);
  expect(start, `${id} on the page`).toBeGreaterThanOrEqual(0);
  return page.slice(start, page.indexOf('</section>', start));
};

describe('deciding Kubernetes ApprovalRequests from the console', () => {
  it("may not decide with the collector's own service account: it has no RBAC for it", async () => {
    const review = await env.api.create<{ status: { allowed: boolean } }>(
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: COLLECTOR,
          resourceAttributes: {
            group: 'gatehouse.dev',
            resource: 'approvalrequests',
            subresource: 'status',
            verb: 'patch',
            namespace: NS,
          },
        },
      },
    );
    expect(review.status.allowed).toBe(false);
  });

  it("shows a viewer the queue with no buttons, and refuses a viewer's decision", async () => {
    const auditor = await asToken('auditor');
    const page = await auditor.page();
    for (const id of ids) {
      const request = section(page, id);
      expect(request).not.toContain('<form class="decide"');
      expect(request).not.toContain('Approve</button>');
      expect(request).toContain('Waiting for an approver');
    }
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const answer = await fetch(`${base}/console/approvals/${ids[0]}/decide`, {
      method: 'POST',
      headers: { cookie: auditor.cookie },
      body: new URLSearchParams({ csrf, verdict: 'approve', reason: 'me too' }),
      redirect: 'manual',
    });
    expect(answer.status).toBe(403);
    expect((await stored(ids[0]!)).status?.decision).toBeUndefined();
  });

  it('shows a local user the kubectl command, not buttons: the API server cannot authenticate them', async () => {
    const boss = await signIn({ method: 'local', user: 'boss', password: 'boss-password' });
    const request = section(await boss.page(), ids[0]!);
    expect(request).not.toContain('<form class="decide"');
    expect(request).toContain(`kubectl gatehouse approve ${ids[0]} -n ${NS}`);
    const answer = await boss.decide(ids[0]!, 'approve', 'trust me');
    expect(answer.status).toBe(303);
    expect(await boss.page()).toContain(
      `<p class="problem" role="status">The Kubernetes API server cannot be told who you are (signed in by local); decide with kubectl gatehouse approve ${ids[0]} -n ${NS}.</p>`,
    );
    expect((await stored(ids[0]!)).status?.decision).toBeUndefined();
  });

  it('says so when the API server no longer accepts the token the person signed in with', async () => {
    const leaver = await asToken('leaver');
    expect(section(await leaver.page(), ids[1]!)).toContain('<form class="decide"');
    // A deleted account's tokens stop authenticating at once, as an expired one does.
    await env.api.delete(`/api/v1/namespaces/${NS}/serviceaccounts/leaver`);
    await env.eventually('the token refused', async () =>
      (
        await env.api.create<{ status: { authenticated?: boolean } }>(
          '/apis/authentication.k8s.io/v1/tokenreviews',
          {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenReview',
            spec: { token: leaver.token },
          },
        )
      ).status.authenticated
        ? undefined
        : true,
    );
    await leaver.decide(ids[1]!, 'approve', 'on my way out');
    expect(await leaver.page()).toContain(
      'Kubernetes refused: the Kubernetes API server did not accept your token',
    );
    expect((await stored(ids[1]!)).status?.decision).toBeUndefined();
  });

  it("writes a non-approver's decision as them: the webhook refuses it and the page says why", async () => {
    const intruder = await asToken('intruder');
    expect(section(await intruder.page(), ids[1]!)).toContain('<form class="decide"');
    const answer = await intruder.decide(ids[1]!, 'approve', 'looks fine to me');
    expect(answer.status).toBe(303);
    const page = await intruder.page();
    expect(page).toContain(`Kubernetes refused: ${INTRUDER} is not an approver of`);
    expect((await stored(ids[1]!)).status).toMatchObject({ phase: 'Pending' });
    expect((await stored(ids[1]!)).status?.decision).toBeUndefined();
  });

  it("approves as the signed-in approver: the ApprovalRequest's decision is stamped with their account", async () => {
    const lead = await asToken('lead');
    const page = await lead.page();
    // The token stays in the collector: no page carries it.
    expect(page).not.toContain(lead.token);
    expect(page).not.toContain(lead.token.split('.')[1]);
    expect(section(page, ids[0]!)).toContain('<button type="submit" name="verdict" value="approve"');
    const answer = await lead.decide(ids[0]!, 'approve', 'release window');
    expect(answer.status).toBe(303);
    expect(await lead.page()).toContain(`${ids[0]} is Approved, decided by ${LEAD}`);
    expect((await stored(ids[0]!)).status).toMatchObject({
      phase: 'Approved',
      decision: { verdict: 'approve', reason: 'release window', by: LEAD },
    });
    // Once decided, a second decision is the webhook's to refuse, as anyone's.
    await lead.decide(ids[0]!, 'deny', 'changed my mind');
    expect(await lead.page()).toContain('already decided');
  });

  it('denies as the signed-in approver', async () => {
    const lead = await asToken('lead');
    await lead.decide(ids[1]!, 'deny', 'not today');
    expect(await lead.page()).toContain(`${ids[1]} is Denied, decided by ${LEAD}`);
    expect((await stored(ids[1]!)).status?.decision).toMatchObject({ verdict: 'deny', by: LEAD });
  });

  it('approves in the browser: the token pasted on the sign-in page, the reason typed, Approve clicked', async () => {
    const browser = await launchBrowser();
    try {
      const page = await (await browser.newContext()).newPage();
      page.on('dialog', () => {
        throw new Error('a script opened a dialog');
      });
      await page.goto(`${base}/console/approvals`);
      const token = await people.token('lead');
      await page.getByLabel('Token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).nth(1).click();
      await page.waitForURL(/\/console\/approvals$/);
      expect(await page.content()).not.toContain(token);
      const request = page.locator(`section.approval[id="${ids[2]}"]`);
      await screenshot(page, 'console-kube-approvals-pending');
      await request.getByLabel('Reason').fill('schema change window');
      await request.getByRole('button', { name: 'Approve' }).click();
      await expect(page.getByRole('status').first().textContent()).resolves.toBe(
        `${ids[2]} is Approved, decided by ${LEAD}. Its record reaches this page with the sidecar's next shipment.`,
      );
      await screenshot(page, 'console-kube-approvals-decided');
      expect((await stored(ids[2]!)).status?.decision).toMatchObject({
        verdict: 'approve',
        reason: 'schema change window',
        by: LEAD,
      });
    } finally {
      await browser.close();
    }
  });
});
