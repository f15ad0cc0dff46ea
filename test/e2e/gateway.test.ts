import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1ConfigMap, V1Deployment, V1Pod, V1Service } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { API_VERSION } from '../../crds/common.ts';
import type { DatabaseGatewayObject } from '../../operator/src/controllers/database-gateway-controller.ts';
import { KubeApiError } from '../../operator/src/runtime/kube-api.ts';
import { FINALIZER } from '../../operator/src/sidecar-layout.ts';
import { createCertificateAuthority } from '../../sidecar/src/tls/certificates.ts';
import { type RunningOidcProvider, startOidcProvider } from '../harness/oidc-provider.ts';
import { type GatehouseCli, gatehouseCli } from './support/gatehouse-cli.ts';
import {
  conditionOf,
  gatehousePath,
  type OperatorCluster,
  startOperatorCluster,
} from './support/operator-cluster.ts';
import {
  accessSpec,
  auditRecords,
  createNamespace,
  createPolicies,
  seedDatabase,
} from './support/operator-fixtures.ts';
import { materializeVolumes, runContainer, type SidecarProcess } from './support/play-kubelet.ts';

/**
 * A DatabaseGateway on a real kube-apiserver with the real operator: the Deployment, Service,
 * bundle, certificate and CA it makes, and its status. Then the test plays the Deployment controller
 * and kubelet: the Deployment's pod spec runs as a local process from its own volumes, and a person
 * signs in at a real OpenID provider (`gatehouse login`, device flow) and runs psql through it with
 * `gatehouse connect`, over TLS verified against the gateway's CA: a masked result, and an audit
 * record that names the OIDC subject and groups.
 */

const pgInfo = inject('postgres');
const DATABASE = 'gateway_e2e';
const NS = 'people';
const OBJ = 'gatehouse-gw-analysts';
const AUDIENCE = 'urn:gatehouse:people';
const CLIENT_ID = 'gatehouse-cli';

let env: OperatorCluster;
let provider: RunningOidcProvider;
let proxy: SidecarProcess | undefined;

beforeAll(async () => {
  [env, provider] = await Promise.all([
    startOperatorCluster(),
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
}, 240_000);

afterAll(async () => {
  await proxy?.stop();
  await provider?.stop();
  await env?.stop();
});

const core = (plural: string, name: string) => `/api/v1/namespaces/${NS}/${plural}/${name}`;
const DEPLOYMENT = `/apis/apps/v1/namespaces/${NS}/deployments/${OBJ}`;

async function gatewayWhen(check: (g: DatabaseGatewayObject) => boolean): Promise<DatabaseGatewayObject> {
  return env.eventually('the gateway status', async () => {
    const gateway = await env.api.get<DatabaseGatewayObject>(
      gatehousePath('databasegateways', NS, 'analysts'),
    );
    return check(gateway) ? gateway : undefined;
  });
}

describe('DatabaseGateway against a real API server', () => {
  let caFile: string;
  let deployment: V1Deployment;

  it('makes the Deployment, Service, bundle, certificate and CA it owns, and reports them', async () => {
    const { api } = env;
    await createNamespace(api, NS);
    await createPolicies(api, NS, pgInfo);
    const { workloadSelector: _none, ...spec } = accessSpec(pgInfo, DATABASE, {
      subjects: [{ kind: 'Group', name: 'analysts' }],
      allow: ['read'],
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
      tls: { secret: `${OBJ}-tls`, caConfigMap: `${OBJ}-ca` },
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

    // The Deployment controller and kubelet's part: one replica is ready.
    await api.patch(`${DEPLOYMENT}/status`, { status: { replicas: 1, readyReplicas: 1 } });
    const ready = await gatewayWhen((g) => conditionOf(g, 'Ready')?.status === 'True');
    expect(conditionOf(ready, 'Ready')?.reason).toBe('Available');
    expect(ready.status?.readyReplicas).toBe(1);
  });

  it("runs the pod spec's proxy; a person signs in and gets a masked, audited psql session over verified TLS", async () => {
    const { api } = env;
    const template = deployment.spec!.template;
    const pod: V1Pod = {
      metadata: { ...template.metadata, name: `${OBJ}-0`, namespace: NS },
      spec: template.spec!,
    };
    const container = pod.spec!.containers[0]!;
    const kubelet = await materializeVolumes(api, pod, container);
    proxy = await runContainer(container, kubelet, [
      '--listen',
      '127.0.0.1:0',
      '--admin-listen',
      '127.0.0.1:0',
    ]);

    const home = mkdtempSync(join(tmpdir(), 'gatehouse-gw-person-'));
    const { DISPLAY: _d, WAYLAND_DISPLAY: _w, PGPASSWORD: _p, ...rest } = process.env;
    const personEnv = {
      ...rest,
      XDG_CONFIG_HOME: join(home, 'config'),
      GATEHOUSE_CLIENT_CONFIG: join(home, 'none.yaml'),
    };
    const printed: string[] = [];
    const gatehouse = (args: string[]): GatehouseCli =>
      gatehouseCli(args, personEnv, (out, err) => printed.push(out, err));
    const login = async (user: string) => {
      const cli = gatehouse(['login', '--issuer', provider.issuer, '--client-id', CLIENT_ID]);
      const [, code] = await cli.waitFor(/enter the code (\S+)/);
      await provider.approveDevice(code!, { user, password: `${user}-pw` });
      expect(await cli.exit).toBe(0);
    };
    const connect = (extra: string[] = [], ca = caFile) =>
      gatehouse([
        'connect',
        DATABASE,
        '--host',
        'localhost',
        '--port',
        String(proxy!.port),
        '--ca',
        ca,
        ...extra,
        '--',
        '-X',
        '-At',
        '-c',
        'SELECT id, email FROM customers ORDER BY id',
      ]);

    await login('alice');
    const session = connect();
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

    // TLS is not optional: the token is a password.
    const clear = connect(['--tls', 'disable']);
    expect(await clear.exit).not.toBe(0);
    expect(clear.stderr()).toContain('this Gatehouse requires TLS');

    // Verified, not merely encrypted: a CA other than the gateway's is not trusted.
    const otherCa = join(mkdtempSync(join(tmpdir(), 'gatehouse-other-ca-')), 'ca.crt');
    writeFileSync(
      otherCa,
      (await createCertificateAuthority('not the gateway', new Date(), 1)).certificate.toString('pem'),
    );
    const untrusted = connect([], otherCa);
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

  it('on deletion takes everything it made with it', async () => {
    const { api } = env;
    await proxy?.stop();
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
      core('secrets', `${OBJ}-tls`),
    ])
      expect(await api.getOptional(path), path).toBeUndefined();
    expect(await api.getOptional(core('secrets', 'db-creds'))).toBeDefined();
  });
});
