import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap, V1Deployment, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../crds/common.ts';
import { approvalRequestPath } from '../../operator/src/approvals/approval-request-object.ts';
import type { DatabaseGatewayObject } from '../../operator/src/controllers/database-gateway-controller.ts';
import { KubeApiError, type KubeObject } from '../../operator/src/runtime/kube-api.ts';
import {
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  BUNDLE_MOUNT,
  FINALIZER,
  TOKEN_FILE,
  TOKEN_MOUNT,
} from '../../operator/src/sidecar-layout.ts';
import { OperatorCallError, OperatorClient } from '../../sidecar/src/approvals/operator-client.ts';
import { postBatch } from '../../sidecar/src/audit/ship-post.ts';
import { createCertificateAuthority } from '../../sidecar/src/tls/certificates.ts';
import { freePort } from '../harness/free-port.ts';
import { type RunningOidcProvider, startOidcProvider } from '../harness/oidc-provider.ts';
import { type ChartCollector, startChartCollector } from './support/chart-collector.ts';
import { type GatehouseCli, gatehouseCli } from './support/gatehouse-cli.ts';
import { type Approvers, prepareApprovers } from './support/kube-approvers.ts';
import {
  conditionOf,
  gatehousePath,
  type OperatorCluster,
  startOperatorCluster,
} from './support/operator-cluster.ts';
import { accessSpec, auditRecords, createPolicies, seedDatabase } from './support/operator-fixtures.ts';
import {
  type KubeletPlay,
  materializeVolumes,
  runContainer,
  type SidecarProcess,
} from './support/play-kubelet.ts';
import { REPO_ROOT } from './support/proxy-process.ts';

/**
 * A DatabaseGateway on a real kube-apiserver with the real operator: the Deployment, Service,
 * bundle, certificate and CA it makes, and its status. Then the test plays the Deployment controller
 * and kubelet: the Deployment's pod spec runs as a local process from its own volumes, and a person
 * signs in at a real OpenID provider (`gatehouse login`, device flow) and runs psql through it with
 * `gatehouse connect`, over TLS verified against the gateway's CA: a masked result, and an audit
 * record that names the OIDC subject and groups. A statement a Guardrail holds for approval waits
 * on the operator's approvals endpoint, which the gateway's pod calls with its own projected token,
 * until an approver decides with `gatehouse approve|deny` as a real API user. The operator runs with
 * the chart's RBAC, which lets it create Secrets but never update or delete one: the certificate is
 * renewed into a new Secret generation. With the chart's collector on, the gateway's pod ships its
 * audit records there as a sidecar does (TLS verified with the bundle's CA, its own projected token
 * checked by TokenReview): a person's statement arrives with the person as subject and the gateway's
 * pod as source, and a reader finds it with `gatehouse audit query --ca` through a port-forward's
 * address (https://localhost), verified against the CA of the collector's Secret.
 */

const pgInfo = inject('postgres');
const DATABASE = 'gateway_e2e';
const NS = 'people';
const OBJ = 'gatehouse-gw-analysts';
const AUDIENCE = 'urn:gatehouse:people';
const CLIENT_ID = 'gatehouse-cli';
const CLUSTER = 'e2e-gw';
const READER = { name: 'auditor', password: 'auditor-secret' };

let env: OperatorCluster;
let provider: RunningOidcProvider;
let proxy: SidecarProcess | undefined;
let people: Approvers;
let admin: pg.Client;
/** The gateway's pod, as the API server stored it (its uid binds the projected token), and its volumes. */
let pod: V1Pod;
let kubelet: KubeletPlay;
let collectorPort: number;
let collector: ChartCollector | undefined;

beforeAll(async () => {
  collectorPort = await freePort();
  [env, provider] = await Promise.all([
    startOperatorCluster({ collector: { url: `https://127.0.0.1:${collectorPort}`, cluster: CLUSTER } }),
    startOidcProvider({
      users: [
        { id: 'alice', password: 'alice-pw', groups: ['analysts'] },
        { id: 'mallory', password: 'mallory-pw', groups: ['contractors'] },
      ],
      clients: [{ clientId: CLIENT_ID }],
      audience: AUDIENCE,
    }),
    seedDatabase(pgInfo, DATABASE),
  ]);
  admin = new pg.Client({
    host: pgInfo.host,
    port: pgInfo.port,
    user: pgInfo.admin.user,
    password: pgInfo.admin.password,
    database: DATABASE,
  });
  await admin.connect();
  collector = await startChartCollector(env, collectorPort, {
    storeDatabase: 'gateway_e2e_store',
    readers: [READER],
  });
  // The namespace, with `lead`, who approves, as a real API user (the chart's approver ClusterRole).
  people = await prepareApprovers(env, NS, ['lead'], mkdtempSync(join(tmpdir(), 'gatehouse-gw-approvers-')));
}, 240_000);

afterAll(async () => {
  await proxy?.stop();
  await collector?.process.stop();
  await admin?.end();
  await provider?.stop();
  await env?.stop();
});

const core = (plural: string, name: string) => `/api/v1/namespaces/${NS}/${plural}/${name}`;
const DEPLOYMENT = `/apis/apps/v1/namespaces/${NS}/deployments/${OBJ}`;
const ACCOUNT = `system:serviceaccount:${NS}:${OBJ}`;

async function gatewayWhen(check: (g: DatabaseGatewayObject) => boolean): Promise<DatabaseGatewayObject> {
  return env.eventually('the gateway status', async () => {
    const gateway = await env.api.get<DatabaseGatewayObject>(
      gatehousePath('databasegateways', NS, 'analysts'),
    );
    return check(gateway) ? gateway : undefined;
  });
}

/** The serving certificate volume of a pod spec: the Secret generation its pods mount. */
function mountedSecret(deployment: V1Deployment): string | undefined {
  return deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'gatehouse-client-tls')?.secret
    ?.secretName;
}

/**
 * The Deployment controller and kubelet's part: the Deployment's pod template becomes a Pod in the
 * API (its uid binds the projected token, as a kubelet's does), and its container runs as a process.
 */
async function runGatewayPod(deployment: V1Deployment, name: string): Promise<SidecarProcess> {
  const template = deployment.spec!.template;
  await env.api.delete(core('pods', name));
  pod = await env.api.create<V1Pod>(`/api/v1/namespaces/${NS}/pods`, {
    metadata: { ...template.metadata, name },
    spec: template.spec!,
  });
  const container = pod.spec!.containers[0]!;
  kubelet = await materializeVolumes(env.api, pod, container);
  return runContainer(container, kubelet, ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
}

const home = mkdtempSync(join(tmpdir(), 'gatehouse-gw-person-'));
const printed: string[] = [];
function gatehouse(args: string[]): GatehouseCli {
  const { DISPLAY: _d, WAYLAND_DISPLAY: _w, PGPASSWORD: _p, ...rest } = process.env;
  const personEnv = {
    ...rest,
    XDG_CONFIG_HOME: join(home, 'config'),
    GATEHOUSE_CLIENT_CONFIG: join(home, 'none.yaml'),
  };
  return gatehouseCli(args, personEnv, (out, err) => printed.push(out, err));
}

async function login(user: string): Promise<void> {
  const cli = gatehouse(['login', '--issuer', provider.issuer, '--client-id', CLIENT_ID]);
  const [, code] = await cli.waitFor(/enter the code (\S+)/);
  await provider.approveDevice(code!, { user, password: `${user}-pw` });
  expect(await cli.exit).toBe(0);
}

/** `gatehouse connect` to the running gateway process: psql with the signed-in person's token. */
function connect(sql: string, options: { extra?: string[]; ca?: string } = {}): GatehouseCli {
  return gatehouse([
    'connect',
    DATABASE,
    '--host',
    'localhost',
    '--port',
    String(proxy!.port),
    '--ca',
    options.ca ?? caFile,
    ...(options.extra ?? []),
    '--',
    '-X',
    '-At',
    '-c',
    sql,
  ]);
}

let caFile: string;
let deployment: V1Deployment;

type RequestView = {
  metadata: { name: string };
  spec: {
    identity: { subject: string; groups: string[] };
    statement: string;
    database: string;
    requestedBy: string;
    requestedByPod?: { name: string; uid: string };
  };
  status?: { phase?: string; message?: string };
};

/** The ApprovalRequest for `statement` once it is in `phase`, as an approver finds it. */
async function requestFor(statement: string, phase = 'Pending'): Promise<RequestView> {
  return env.eventually(`an ApprovalRequest for ${statement} ${phase}`, async () => {
    const list = await env.api.get<{ items: RequestView[] }>(approvalRequestPath(NS));
    return list.items.find((r) => r.spec.statement === statement && r.status?.phase === phase);
  });
}

describe('DatabaseGateway against a real API server', () => {
  it('makes the Deployment, Service, account, bundle, certificate and CA it owns, and reports them', async () => {
    const { api } = env;
    await createPolicies(api, NS, pgInfo);
    await api.create(gatehousePath('guardrails', NS), {
      apiVersion: API_VERSION,
      kind: 'Guardrail',
      metadata: { name: 'approvals' },
      spec: {
        rules: [
          {
            name: 'whole-table-changes',
            kinds: ['delete-without-where', 'update-without-where'],
            action: 'requireApproval',
            approval: { approvers: [{ kind: 'ServiceAccount', name: 'lead' }], waitSeconds: 30 },
          },
        ],
      },
    });
    const { workloadSelector: _none, ...spec } = accessSpec(pgInfo, DATABASE, {
      subjects: [{ kind: 'Group', name: 'analysts' }],
      allow: ['read', 'write'],
      guardrails: ['no-drop', 'approvals'],
    });
    await api.create(gatehousePath('databaseaccesses', NS), {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'analysts' },
      spec,
    });
    await api.create(gatehousePath('databasegateways', NS), {
      apiVersion: API_VERSION,
      kind: 'DatabaseGateway',
      metadata: { name: 'analysts' },
      spec: {
        access: 'analysts',
        oidc: { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: `${provider.issuer}/jwks` },
        replicas: 1,
        tls: { dnsNames: ['localhost'] },
      },
    });
    const rolling = await gatewayWhen((g) => conditionOf(g, 'Ready')?.reason === 'RollingOut');
    expect(rolling.metadata.finalizers).toContain(FINALIZER);
    expect(conditionOf(rolling, 'Reconciling')?.status).toBe('True');
    expect(rolling.status).toMatchObject({
      address: `${OBJ}.${NS}.svc:5432`,
      bundle: { configMap: `${OBJ}-bundle` },
      tls: { secret: `${OBJ}-tls-1`, caConfigMap: `${OBJ}-ca` },
      replicas: 1,
      readyReplicas: 0,
    });

    deployment = await api.get<V1Deployment>(DEPLOYMENT);
    const owner = { kind: 'DatabaseGateway', name: 'analysts', uid: rolling.metadata.uid, controller: true };
    expect(deployment.metadata!.ownerReferences).toEqual([expect.objectContaining(owner)]);
    const service = await api.get<V1Service>(core('services', OBJ));
    expect(service.spec!.clusterIP).toEqual(expect.any(String));
    expect(service.spec!.selector).toEqual(deployment.spec!.selector!.matchLabels);
    const ca = await api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`));
    caFile = join(mkdtempSync(join(tmpdir(), 'gatehouse-gw-ca-')), 'ca.crt');
    writeFileSync(caFile, ca.data!['ca.crt']!);
    // With the chart's collector, the gateway ships as a sidecar does: same URL and CA, its pod's token.
    const bundle = await env.eventually('the gateway bundle carrying the collector CA', async () => {
      const b = await api.get<V1ConfigMap>(core('configmaps', `${OBJ}-bundle`));
      return b.data?.[BUNDLE_COLLECTOR_CA_KEY] ? b : undefined;
    });
    expect(bundle.data![BUNDLE_COLLECTOR_CA_KEY]).toBe(collector!.ca);
    const settings = parseAllDocuments(bundle.data![BUNDLE_CONFIG_KEY]!)[0]!.toJS() as {
      audit: { ship?: unknown };
    };
    expect(settings.audit.ship).toEqual({
      url: `https://127.0.0.1:${collectorPort}`,
      caFile: `${BUNDLE_MOUNT}/${BUNDLE_COLLECTOR_CA_KEY}`,
      tokenFile: `${TOKEN_MOUNT}/${TOKEN_FILE}`,
      cluster: CLUSTER,
      namespace: NS,
    });
    // Its own account, which no RBAC names; its pods mount the projected token for the operator only.
    const account = await api.get<KubeObject>(core('serviceaccounts', OBJ));
    expect(account.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(deployment.spec!.template.spec).toMatchObject({
      serviceAccountName: OBJ,
      automountServiceAccountToken: false,
    });
    expect(mountedSecret(deployment)).toBe(`${OBJ}-tls-1`);
    expect((await api.get<V1Secret>(core('secrets', `${OBJ}-tls-1`))).immutable).toBe(true);

    // The Deployment controller and kubelet's part: one replica is ready.
    await api.patch(`${DEPLOYMENT}/status`, { status: { replicas: 1, readyReplicas: 1 } });
    const ready = await gatewayWhen((g) => conditionOf(g, 'Ready')?.status === 'True');
    expect(conditionOf(ready, 'Ready')?.reason).toBe('Available');
    expect(ready.status?.readyReplicas).toBe(1);
  });

  it("runs the pod spec's proxy; a person signs in and gets a masked, audited psql session over verified TLS", async () => {
    proxy = await runGatewayPod(deployment, `${OBJ}-0`);

    await login('alice');
    const session = connect('SELECT id, email FROM customers ORDER BY id');
    expect(await session.exit, printed.join('\n')).toBe(0);
    expect(session.stdout().trim().split('\n')).toEqual(['1|****', '2|****']);
    expect(session.stdout()).not.toContain('alice@example.com');
    const statement = await env.eventually('the audit record', async () =>
      auditRecords(proxy!).find((r) => r['type'] === 'statement' && r['subject'] === 'alice'),
    );
    expect(statement).toMatchObject({
      subject: 'alice',
      groups: ['analysts'],
      method: 'token',
      issuer: provider.issuer,
    });

    // The collector has it too: the person as subject, the gateway's pod as source. A reader finds it
    // at the address a `kubectl port-forward` gives (https://localhost), verified with the collector's CA.
    const collectorCaFile = join(mkdtempSync(join(tmpdir(), 'gatehouse-gw-collector-ca-')), 'ca.crt');
    writeFileSync(collectorCaFile, collector!.ca);
    const reader = (what: string, extra: string[]) =>
      gatehouse([
        'audit',
        'query',
        what,
        '--server',
        `https://localhost:${collectorPort}`,
        '--user',
        READER.name,
        '--password',
        READER.password,
        '--format',
        'json',
        ...extra,
      ]);
    type Shipped = { subject: string; statement: string; source: Record<string, string> };
    const shipped = await env.eventually(
      "alice's statement in the collector",
      async () => {
        const cli = reader('statements', ['--ca', collectorCaFile, '--subject', 'alice']);
        if ((await cli.exit) !== 0) throw new Error(cli.stderr());
        const { items } = JSON.parse(cli.stdout()) as { items: Shipped[] };
        return items.find((item) => item.statement.includes('FROM customers'));
      },
      40_000,
    );
    expect(shipped).toMatchObject({
      subject: 'alice',
      source: { cluster: CLUSTER, namespace: NS, pod: `${OBJ}-0` },
    });
    const sources = reader('sources', ['--ca', collectorCaFile]);
    expect(await sources.exit, sources.stderr()).toBe(0);
    expect((JSON.parse(sources.stdout()) as { items: Record<string, unknown>[] }).items).toEqual([
      expect.objectContaining({ namespace: NS, pod: `${OBJ}-0`, database: DATABASE, status: 'ok' }),
    ]);
    // Without the CA, the system's CAs do not know the collector's: said so, with what to do.
    const unverified = reader('sources', []);
    expect(await unverified.exit).not.toBe(0);
    expect(unverified.stderr()).toContain(
      `cannot verify the collector at https://localhost:${collectorPort}: its certificate did not verify`,
    );
    expect(unverified.stderr()).toContain(
      "give the collector's CA with --ca FILE or $GATEHOUSE_COLLECTOR_CA",
    );

    // The gateway's token ships its own pod's records only, in its own namespace (TokenReview binds it).
    const gatewayToken = `${kubelet.mounts.get(TOKEN_MOUNT)!}/${TOKEN_FILE}`;
    const refusal = async (namespace: string, pod: string) =>
      postBatch(
        { url: `https://127.0.0.1:${collectorPort}`, tokenFile: gatewayToken, caFile: collectorCaFile },
        { cluster: CLUSTER, namespace, pod, database: DATABASE, logKeyId: 'k' },
        [],
      ).then(
        () => 'accepted',
        (error: Error) => error.message,
      );
    expect(await refusal(NS, 'orders-0')).toBe(
      `the collector answered 403: this token belongs to pod ${OBJ}-0, not orders-0`,
    );
    expect(await refusal('shop', `${OBJ}-0`)).toBe(
      `the collector answered 403: ${ACCOUNT} may ship records of namespace ${NS} only, not shop`,
    );

    // TLS is not optional: the token is a password.
    const clear = connect('SELECT 1', { extra: ['--tls', 'disable'] });
    expect(await clear.exit).not.toBe(0);
    expect(clear.stderr()).toContain('this Gatehouse requires TLS');

    // Verified, not merely encrypted: a CA other than the gateway's is not trusted.
    const otherCa = join(mkdtempSync(join(tmpdir(), 'gatehouse-other-ca-')), 'ca.crt');
    writeFileSync(
      otherCa,
      (await createCertificateAuthority('not the gateway', new Date(), 1)).certificate.toString('pem'),
    );
    const untrusted = connect('SELECT 1', { ca: otherCa });
    expect(await untrusted.exit).not.toBe(0);
    expect(untrusted.stderr()).toMatch(/certificate verify failed/);

    // Someone the DatabaseAccess does not name is refused, by name.
    await login('mallory');
    const refused = gatehouse([
      'connect',
      DATABASE,
      '--issuer',
      provider.issuer,
      '--host',
      'localhost',
      '--port',
      String(proxy!.port),
      '--ca',
      caFile,
      '--',
      '-X',
      '-c',
      'SELECT 1',
    ]);
    expect(await refused.exit).not.toBe(0);
    expect(refused.stderr()).toContain(`no DatabaseAccess grants mallory access to database "${DATABASE}"`);
    await login('alice');
  });

  it("holds a person's statement until an approver approves it through the API; the gateway's pod asked", async () => {
    const sql = 'DELETE FROM scratch';
    const running = connect(sql);
    const request = await requestFor(sql);
    // The person is who asked; the gateway's account and pod are who filed it (TokenReview).
    expect(request.spec).toMatchObject({
      identity: { subject: 'alice', groups: ['analysts'] },
      database: DATABASE,
      requestedBy: ACCOUNT,
      requestedByPod: { name: `${OBJ}-0`, uid: pod.metadata!.uid },
    });
    const approved = await people.decide('lead', 'approve', request.metadata.name, 'cleanup');
    expect(approved, approved.stderr).toMatchObject({ code: 0 });
    expect(await running.exit, running.stderr()).toBe(0);
    expect(running.stderr()).toContain(`statement held for approval: request ${request.metadata.name}`);
    expect((await admin.query('SELECT count(*)::int AS n FROM scratch')).rows[0].n).toBe(0);
    await requestFor(sql, 'Executed');
  });

  it('refuses the statement when the approver denies it, naming who and why', async () => {
    await admin.query('INSERT INTO scratch VALUES (1), (2)');
    const sql = 'UPDATE scratch SET id = 0';
    const running = connect(sql);
    const request = await requestFor(sql);
    expect(await people.decide('lead', 'deny', request.metadata.name, 'not today')).toMatchObject({
      code: 0,
    });
    expect(await running.exit).not.toBe(0);
    expect(running.stderr()).toContain(
      `request ${request.metadata.name} was denied by system:serviceaccount:${NS}:lead: not today`,
    );
    expect((await admin.query('SELECT sum(id)::int AS n FROM scratch')).rows[0].n).toBe(3);
  });

  it("ends the earlier process's Pending request when the gateway's proxy starts again (restore)", async () => {
    const sql = 'UPDATE scratch SET id = 7';
    const running = connect(sql);
    const request = await requestFor(sql);
    // Killed, as a crash or an OOM kill would: nothing withdraws the request on the way out.
    const exited = new Promise((resolve) => proxy!.child.once('exit', resolve));
    proxy!.child.kill('SIGKILL');
    await exited;
    expect(await running.exit).not.toBe(0);
    expect(await people.phaseOf(request.metadata.name)).toBe('Pending');
    // The same pod's container again: its restore, with the same pod-bound token, ends the request.
    const container = pod.spec!.containers[0]!;
    proxy = await runContainer(container, kubelet, [
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);
    const ended = await requestFor(sql, 'Withdrawn');
    expect(ended.metadata.name).toBe(request.metadata.name);
    expect(ended.status?.message).toBe('the sidecar whose session waited on it started again');
    expect((await admin.query('SELECT sum(id)::int AS n FROM scratch')).rows[0].n).toBe(3);
  });

  it("allows a gateway's token its own access only, and refuses an account of a gateway's name that no gateway owns", async () => {
    const client = async (account: string) => {
      const tokenFile = join(mkdtempSync(join(tmpdir(), 'gatehouse-gw-token-')), 'token');
      writeFileSync(tokenFile, await people.token(account, ['gatehouse.dev']));
      return new OperatorClient({ url: people.operatorUrl, caFile: people.operatorCaFile, tokenFile });
    };
    const refusal = async (call: Promise<unknown>) => {
      try {
        await call;
        return 'answered';
      } catch (error) {
        return error instanceof OperatorCallError ? `${error.status} ${error.message}` : String(error);
      }
    };
    const rule = (guardrail: string) => ({
      guardrail,
      rule: 'whole-table-changes',
      namespace: NS,
      approvers: [{ kind: 'User' as const, name: 'mallory' }],
      allowSelfApproval: true,
      waitSeconds: 30,
      ttlSeconds: 60,
    });
    const request = (id: string, database: string, guardrail: string) => ({
      id,
      identity: { subject: 'mallory', groups: [] },
      database,
      statement: 'DELETE FROM customers',
      parametersHash: '',
      rules: [rule(guardrail)],
    });
    const gateway = await client(OBJ);
    for (const [id, database, guardrail] of [
      ['ar-00000000000000a1', 'postgres', 'approvals'],
      ['ar-00000000000000a2', DATABASE.toUpperCase(), 'approvals'],
      ['ar-00000000000000a3', DATABASE, 'someone-elses'],
    ] as const)
      expect(await refusal(gateway.create(request(id, database, guardrail)))).toMatch(
        /^403 the operator refused/,
      );
    expect(await refusal(gateway.restore({ database: 'postgres', keep: [] }))).toBe(
      `403 the operator refused: 403 gateway "analysts" serves database "${DATABASE}" (DatabaseAccess "analysts"), not "postgres"`,
    );
    expect(await refusal(gateway.restore({ database: DATABASE, keep: [] }))).toBe('answered');
    for (const id of ['ar-00000000000000a1', 'ar-00000000000000a2', 'ar-00000000000000a3'])
      expect(await env.api.getOptional(approvalRequestPath(NS, id))).toBeUndefined();

    // An account named like a gateway's that no gateway owns is not taken for a sidecar either.
    await env.api.create(`/api/v1/namespaces/${NS}/serviceaccounts`, {
      metadata: { name: 'gatehouse-gw-lookalike' },
    });
    const lookalike = await client('gatehouse-gw-lookalike');
    expect(await refusal(lookalike.restore({ database: DATABASE, keep: [] }))).toMatch(
      /^403 .*has a DatabaseGateway's name, and no DatabaseGateway in its namespace owns it/,
    );
  });

  it('renews its certificate into a new Secret with no right to update or delete Secrets, and keeps the CA', async () => {
    const { api } = env;
    // The operator in this test runs with the rendered chart's RBAC (operator-cluster.ts): that is this.
    const clusterRole = parseAllDocuments(
      readFileSync(join(REPO_ROOT, 'charts/manifests/gatehouse.yaml'), 'utf8'),
    )
      .map(
        (d) =>
          d.toJS() as {
            kind?: string;
            metadata?: { name?: string };
            rules?: { resources: string[]; verbs: string[] }[];
          },
      )
      .find((o) => o?.kind === 'ClusterRole' && o.metadata?.name === 'gatehouse-gatehouse-system-operator');
    const verbsOn = (resource: string) =>
      clusterRole!.rules!.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs);
    expect(verbsOn('secrets')).toEqual(['get', 'create']);
    expect(verbsOn('serviceaccounts')).toEqual(['get', 'create']);

    const first = await api.get<V1Secret & KubeObject>(core('secrets', `${OBJ}-tls-1`));
    await api.patch(gatehousePath('databasegateways', NS, 'analysts'), {
      spec: { tls: { dnsNames: ['localhost', 'gateway.example.com'] } },
    });
    const renewed = await gatewayWhen((g) => g.status?.tls?.secret === `${OBJ}-tls-2`);
    expect(renewed.status?.tls?.caConfigMap).toBe(`${OBJ}-ca`);
    deployment = await env.eventually('the Deployment on the new generation', async () => {
      const current = await api.get<V1Deployment>(DEPLOYMENT);
      return mountedSecret(current) === `${OBJ}-tls-2` ? current : undefined;
    });
    const second = await api.get<V1Secret & KubeObject>(core('secrets', `${OBJ}-tls-2`));
    expect(second.immutable).toBe(true);
    expect(second.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'DatabaseGateway', uid: renewed.metadata.uid, controller: true }),
    ]);
    // The first generation is as it was; the CA people trust did not change.
    expect((await api.get<KubeObject>(core('secrets', `${OBJ}-tls-1`))).metadata.resourceVersion).toBe(
      first.metadata.resourceVersion,
    );
    expect((await api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt']).toBe(
      readFileSync(caFile, 'utf8'),
    );
    expect(env.operator.lines.filter((l) => / 403 |forbidden/i.test(l) && l.includes('secrets'))).toEqual([]);

    // The new pods serve the new certificate, which the same CA verifies.
    await proxy!.stop();
    proxy = await runGatewayPod(deployment, `${OBJ}-1`);
    const session = connect('SELECT count(*) FROM customers');
    expect(await session.exit, session.stderr()).toBe(0);
    expect(session.stdout().trim()).toBe('2');
  });

  it('is refused by the API server when its spec cannot work, naming the field', async () => {
    const attempt = async (spec: Record<string, unknown>) => {
      try {
        await env.api.create(gatehousePath('databasegateways', NS), {
          apiVersion: API_VERSION,
          kind: 'DatabaseGateway',
          metadata: { name: 'broken' },
          spec: {
            access: 'analysts',
            oidc: { issuer: provider.issuer, audience: AUDIENCE, jwksUrl: `${provider.issuer}/jwks` },
            ...spec,
          },
        });
      } catch (error) {
        return error instanceof KubeApiError ? `${error.status} ${error.message}` : String(error);
      }
      return 'accepted';
    };
    expect(await attempt({ tls: { mode: 'CertManager' } })).toMatch(
      /^422 .*tls\.issuerRef is required when tls\.mode is CertManager/,
    );
    expect(
      await attempt({ oidc: { issuer: 'login.example.com', audience: 'a', jwksUrl: 'https://x/jwks' } }),
    ).toMatch(/^422 .*spec\.oidc\.issuer/);
    expect(await attempt({ tls: { mode: 'None' } })).toMatch(/^422 .*spec\.tls\.mode/);
  });

  it('on deletion deletes what it made, and leaves its Secrets and account to the garbage collector', async () => {
    const { api } = env;
    await proxy?.stop();
    const uid = (await api.get<KubeObject>(gatehousePath('databasegateways', NS, 'analysts'))).metadata.uid;
    await api.delete(gatehousePath('databasegateways', NS, 'analysts'));
    await env.eventually('the gateway gone', async () =>
      (await api.getOptional(gatehousePath('databasegateways', NS, 'analysts'))) === undefined
        ? true
        : undefined,
    );
    for (const path of [
      DEPLOYMENT,
      core('services', OBJ),
      core('configmaps', `${OBJ}-bundle`),
      core('configmaps', `${OBJ}-ca`),
    ])
      expect(await api.getOptional(path), path).toBeUndefined();
    // This test cluster runs no garbage collector; a cluster's deletes these by their owner reference.
    for (const path of [
      core('secrets', `${OBJ}-tls-1`),
      core('secrets', `${OBJ}-tls-2`),
      core('serviceaccounts', OBJ),
    ])
      expect((await api.get<KubeObject>(path)).metadata.ownerReferences, path).toEqual([
        expect.objectContaining({ kind: 'DatabaseGateway', uid, controller: true, blockOwnerDeletion: true }),
      ]);
    expect(await api.getOptional(core('secrets', 'db-creds'))).toBeDefined();
  });
});
