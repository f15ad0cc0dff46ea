import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import { approvalRequestPath } from '../../operator/src/approvals/approval-request-object.ts';
import { policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig, psql } from './support/clients.ts';
import { type Approvers, prepareApprovers } from './support/kube-approvers.ts';
import { type OperatorCluster, startOperatorCluster } from './support/operator-cluster.ts';
import { accessSpec, createSelectedPod, runSidecar } from './support/operator-fixtures.ts';
import type { SidecarProcess } from './support/play-kubelet.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The whole flow with psql: a proxy in token-file mode (a sidecar's identity, the pod's projected
 * token) configured with `approvals.operator`, in front of the real PostgreSQL; the operator and a
 * real kube-apiserver; an approver deciding with `gatehouse approve|deny` as a service account. The
 * proxy runs as a local process from a configuration written here, not from the bundle the operator
 * compiles (which does not carry `approvals.operator` yet).
 */
const pgInfo = inject('postgres');
const DATABASE = 'kube_approvals_e2e';
const NS = 'shop';

let env: OperatorCluster;
let people: Approvers;
let proxy: ProxyProcess;
let admin: pg.Client;
let injectedSidecar: SidecarProcess | undefined;

beforeAll(async () => {
  [env, admin] = await Promise.all([startOperatorCluster(), freshDatabase(pgInfo, DATABASE)]);
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-kube-psql-'));
  people = await prepareApprovers(env, NS, ['orders-app', 'lead'], dir);
  const jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify(await env.api.get('/openid/v1/jwks')));
  const config = localProxyConfig(pgInfo, {
    identity: {
      mode: 'token-file',
      tokenFile: {
        path: people.sidecarTokenFile,
        verify: { issuer: env.cluster.serviceAccountIssuer, audience: 'gatehouse.dev', jwksFile },
      },
    },
    approvals: { operator: { url: people.operatorUrl, caFile: people.operatorCaFile } },
  });
  (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
  const inNamespace = (document: ReturnType<typeof policyDocument>) => ({
    ...document,
    metadata: { ...document.metadata, namespace: NS },
  });
  proxy = await startProxyProcess(config, {
    extraDocuments: [
      inNamespace(
        policyDocument('Guardrail', 'admin-approvals', {
          rules: [
            {
              name: 'drops',
              kinds: ['drop'],
              action: 'requireApproval',
              approval: {
                approvers: [{ kind: 'ServiceAccount', name: 'lead' }],
                waitSeconds: 20,
                ttlSeconds: 300,
              },
            },
          ],
        }),
      ),
      inNamespace(
        policyDocument('DatabaseAccess', 'orders', {
          subjects: [{ kind: 'ServiceAccount', name: 'orders-app' }],
          allow: ['read', 'write', 'ddl'],
          guardrails: ['admin-approvals'],
        }),
      ),
    ],
  });
}, 240_000);

afterAll(async () => {
  await injectedSidecar?.stop();
  await proxy?.stop();
  await admin?.end();
  await env?.stop();
});

const dsn = () => `host=127.0.0.1 port=${proxy.port} dbname=${DATABASE} user=app sslmode=disable`;

/** The Pending ApprovalRequest for `statement`, as an approver finds it with kubectl. */
async function pendingFor(statement: string): Promise<string> {
  return env.eventually(`an ApprovalRequest for ${statement}`, async () => {
    const list = await env.api.get<{
      items: { metadata: { name: string }; spec: { statement: string }; status?: { phase?: string } }[];
    }>(approvalRequestPath(NS));
    return list.items.find((r) => r.spec.statement === statement && r.status?.phase === 'Pending')?.metadata
      .name;
  });
}

describe('psql through a proxy that asks the operator', () => {
  it('holds DROP TABLE until a service account the rule names approves it through the API', async () => {
    await admin.query('CREATE TABLE victims(id int)');
    const statement = 'DROP TABLE victims';
    const running = psql(dsn(), ['-c', statement], { timeoutMs: 60_000 });
    const name = await pendingFor(statement);
    const approved = await people.decide('lead', 'approve', name, 'cleanup');
    expect(approved, approved.stderr).toMatchObject({ code: 0 });
    const result = await running;
    expect(result, result.stderr).toMatchObject({ code: 0 });
    // psql printed the notice while it waited, naming the request.
    expect(result.stderr).toContain(`statement held for approval: request ${name}`);
    expect(result.stderr).toContain(`An approver runs: kubectl gatehouse approve ${name} -n ${NS} --reason`);
    expect(result.stdout).toContain('DROP TABLE');
    const gone = await admin.query("SELECT to_regclass('public.victims') AS t");
    expect(gone.rows[0].t).toBeNull();
    await env.eventually('Executed', async () =>
      (await people.phaseOf(name)) === 'Executed' ? true : undefined,
    );
  });

  it('refuses the statement with 42501, naming who denied it, when the approver denies', async () => {
    await admin.query('CREATE TABLE keepers(id int)');
    const statement = 'DROP TABLE keepers';
    const running = psql(dsn(), ['-c', statement], { timeoutMs: 60_000 });
    const name = await pendingFor(statement);
    // The requester itself is refused by RBAC's grant and the webhook's rules alike.
    expect(await people.decide('orders-app', 'approve', name)).toMatchObject({ code: 1 });
    expect(await people.decide('lead', 'deny', name, 'not during the sale')).toMatchObject({ code: 0 });
    const result = await running;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `request ${name} was denied by system:serviceaccount:${NS}:lead: not during the sale`,
    );
    const kept = await admin.query("SELECT to_regclass('public.keepers') AS t");
    expect(kept.rows[0].t).toBe('keepers');
  });
});

describe('a sidecar the operator injected, from the bundle it compiled', () => {
  it('asks the operator by itself, and runs the held statement once the approver approves', async () => {
    const { api } = env;
    await api.create(`/api/v1/namespaces/${NS}/secrets`, {
      metadata: { name: 'db-creds' },
      stringData: { username: pgInfo.admin.user, password: pgInfo.admin.password },
    });
    await api.create(`/apis/${API_VERSION}/namespaces/${NS}/guardrails`, {
      apiVersion: API_VERSION,
      kind: 'Guardrail',
      metadata: { name: 'admin-approvals' },
      spec: {
        rules: [
          {
            name: 'drops',
            kinds: ['drop'],
            action: 'requireApproval',
            approval: { approvers: [{ kind: 'ServiceAccount', name: 'lead' }], waitSeconds: 20 },
          },
        ],
      },
    });
    await api.create(`/apis/${API_VERSION}/namespaces/${NS}/databaseaccesses`, {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'orders' },
      spec: accessSpec(pgInfo, DATABASE, { guardrails: ['admin-approvals'], maskingPolicies: [] }),
    });
    await env.readyAccess(NS, 'orders');
    const injected = await createSelectedPod(api, NS, 'orders-0', 'orders');
    injectedSidecar = (await runSidecar(api, injected)).sidecar;
    await admin.query('CREATE TABLE scratch(id int)');
    const statement = 'DROP TABLE scratch';
    const app = `host=127.0.0.1 port=${injectedSidecar.port} dbname=${DATABASE} user=app sslmode=disable`;
    const running = psql(app, ['-c', statement], { timeoutMs: 60_000 });
    const name = await pendingFor(statement);
    expect(await people.decide('lead', 'approve', name, 'cleanup')).toMatchObject({ code: 0 });
    const result = await running;
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stderr).toContain(`An approver runs: kubectl gatehouse approve ${name} -n ${NS}`);
    const gone = await admin.query("SELECT to_regclass('public.scratch') AS t");
    expect(gone.rows[0].t).toBeNull();
  });
});
