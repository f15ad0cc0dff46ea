import { X509Certificate } from 'node:crypto';
import type { V1ConfigMap, V1Deployment, V1Secret, V1Service } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../../crds/common.ts';
import { ANNOTATION_GATEWAY_ROLLOUT } from '../gateway/gateway-layout.ts';
import { EventRecorder } from '../runtime/event-recorder.ts';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import { type KubeObject, resourcePath } from '../runtime/kube-api.ts';
import {
  BUNDLE_COLLECTOR_CA_KEY,
  BUNDLE_CONFIG_KEY,
  FINALIZER,
  INJECT_DISABLED,
  LABEL_INJECT,
  TOKEN_FILE,
  TOKEN_MOUNT,
} from '../sidecar-layout.ts';
import { gatehousePath } from './api-paths.ts';
import type { Condition } from './conditions.ts';
import type {
  DatabaseAccessObject,
  GuardrailObject,
  MaskingPolicyObject,
} from './database-access-controller.ts';
import { DatabaseGatewayController, type DatabaseGatewayObject } from './database-gateway-controller.ts';

/**
 * Each state of a DatabaseGateway reconcile against FakeKubeApi (the API server's rules, in memory);
 * test/e2e/gateway.test.ts runs it against a real kube-apiserver and runs the pod's proxy.
 */

const NS = 'shop';
const KEY = `${NS}/people`;
const logger = pino({ level: 'silent' });
const OBJ = 'gatehouse-gw-people';
const core = (plural: string, name: string) => resourcePath('v1', plural, NS, name);
const DEPLOYMENT = resourcePath('apps/v1', 'deployments', NS, OBJ);

async function world(
  approvals?: { url: string; ca: string },
  collector?: { url: string; cluster: string; ca: () => string | undefined },
) {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  const gateways = api.informer<DatabaseGatewayObject>(gatehousePath('DatabaseGateway'));
  const controller = new DatabaseGatewayController({
    api,
    gateways,
    accesses: api.informer<DatabaseAccessObject>(gatehousePath('DatabaseAccess')),
    guardrails: api.informer<GuardrailObject>(gatehousePath('Guardrail')),
    maskingPolicies: api.informer<MaskingPolicyObject>(gatehousePath('MaskingPolicy')),
    events: new EventRecorder(api, 'gatehouse-operator', logger),
    sidecarImage: 'example.com/gatehouse:test',
    ...(approvals && { approvalsEndpoint: async () => approvals }),
    ...(collector && {
      collector: { url: collector.url, cluster: collector.cluster },
      collectorCa: async () => collector.ca(),
    }),
  });
  return {
    api,
    reconcile: () => controller.reconcile(KEY),
    gateway: () => api.get<DatabaseGatewayObject>(gatehousePath('DatabaseGateway', NS, 'people')),
    deployment: () => api.get<V1Deployment & KubeObject>(DEPLOYMENT),
    bundle: async () => (await api.get<V1ConfigMap>(core('configmaps', `${OBJ}-bundle`))).data!,
  };
}

const OIDC = {
  issuer: 'https://login.example.com',
  audience: 'gatehouse',
  jwksUrl: 'https://login.example.com/jwks',
};

async function createGateway(api: FakeKubeApi, extra: Record<string, unknown> = {}) {
  await api.create(gatehousePath('DatabaseGateway', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseGateway',
    metadata: { name: 'people' },
    spec: { access: 'analysts', oidc: OIDC, ...extra },
  });
}

async function createAccess(api: FakeKubeApi, upstreamHost = 'db.shop.svc') {
  await api.create(gatehousePath('DatabaseAccess', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name: 'analysts' },
    spec: {
      subjects: [{ kind: 'Group', name: 'analysts' }],
      allow: ['read'],
      guardrails: ['no-drop'],
      maskingPolicies: ['pii'],
      upstream: {
        host: upstreamHost,
        database: 'orders',
        credentialsSecretRef: { name: 'db-creds' },
        tls: { mode: 'disable' },
      },
    },
  });
}

async function createPolicies(api: FakeKubeApi) {
  await api.create(core('secrets', ''), {
    metadata: { name: 'db-creds' },
    stringData: { username: 'app', password: 'pw-not-in-bundle' },
  });
  await api.create(gatehousePath('Guardrail', NS), {
    apiVersion: API_VERSION,
    kind: 'Guardrail',
    metadata: { name: 'no-drop' },
    spec: { rules: [{ name: 'no-drops', kinds: ['drop'], action: 'block' }] },
  });
  await api.create(gatehousePath('MaskingPolicy', NS), {
    apiVersion: API_VERSION,
    kind: 'MaskingPolicy',
    metadata: { name: 'pii' },
    spec: { rules: [{ columns: ['customers.email'], method: 'redact' }] },
  });
}

async function readyWorld(extra: Record<string, unknown> = {}, approvals?: { url: string; ca: string }) {
  const w = await world(approvals);
  await createPolicies(w.api);
  await createAccess(w.api);
  await createGateway(w.api, extra);
  return w;
}

/** Plays the Deployment controller and kubelet: the pods are up. */
async function podsReady(w: Awaited<ReturnType<typeof world>>, ready: number) {
  await w.api.patch(`${DEPLOYMENT}/status`, { status: { replicas: ready, readyReplicas: ready } });
}

function condition(object: { status?: { conditions?: Condition[] } }, type: string) {
  const found = object.status?.conditions?.find((c) => c.type === type);
  return found && `${found.status} ${found.reason}${found.message ? `: ${found.message}` : ''}`;
}

describe('DatabaseGatewayController reconcile states', () => {
  it("ships to the chart's collector: an empty CA file until the collector has a CA, then that CA", async () => {
    let ca: string | undefined;
    const w = await world(undefined, {
      url: 'https://gatehouse-collector.gatehouse-system.svc:7450',
      cluster: 'prod-eu',
      ca: () => ca,
    });
    await createPolicies(w.api);
    await createAccess(w.api);
    await createGateway(w.api);
    await w.reconcile();
    const first = await w.bundle();
    expect(first[BUNDLE_COLLECTOR_CA_KEY]).toBe('');
    const proxy = parseAllDocuments(first[BUNDLE_CONFIG_KEY]!)[0]!.toJS() as {
      audit: { ship?: Record<string, unknown> };
    };
    expect(proxy.audit.ship).toEqual({
      url: 'https://gatehouse-collector.gatehouse-system.svc:7450',
      caFile: expect.stringMatching(new RegExp(`/${BUNDLE_COLLECTOR_CA_KEY}$`)),
      tokenFile: `${TOKEN_MOUNT}/${TOKEN_FILE}`,
      cluster: 'prod-eu',
      namespace: NS,
    });
    const rollout = (await w.deployment()).spec!.template.metadata!.annotations![ANNOTATION_GATEWAY_ROLLOUT];
    // The collector's CA appears (the operator requeues every gateway then): the bundle carries it,
    // and the running pods read it from their ConfigMap volume without a new rollout.
    ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    await w.reconcile();
    expect((await w.bundle())[BUNDLE_COLLECTOR_CA_KEY]).toBe(ca);
    expect((await w.deployment()).spec!.template.metadata!.annotations![ANNOTATION_GATEWAY_ROLLOUT]).toBe(
      rollout,
    );
  });

  it('stalls while its DatabaseAccess, or what the access names, is missing, and names each', async () => {
    const w = await world();
    await createGateway(w.api);
    expect((await w.reconcile())?.outcome).toBe('ReferenceNotFound');
    expect(condition(await w.gateway(), 'Ready')).toBe(
      'False ReferenceNotFound: DatabaseAccess "analysts" not found',
    );
    expect(condition(await w.gateway(), 'Stalled')).toMatch(/^True ReferenceNotFound/);
    await createAccess(w.api);
    const second = await w.reconcile();
    expect(second).toEqual({ outcome: 'ReferenceNotFound', requeueAfterMs: 30_000 });
    expect(condition(await w.gateway(), 'Ready')).toBe(
      'False ReferenceNotFound: DatabaseAccess "analysts": Secret "db-creds" not found; Guardrail "no-drop" not found; MaskingPolicy "pii" not found',
    );
    expect(await w.api.getOptional(DEPLOYMENT)).toBeUndefined();
  });

  it('makes the bundle, certificate, CA, Deployment and Service it owns, and is Ready once a replica is', async () => {
    const w = await readyWorld();
    expect((await w.reconcile())?.outcome).toBe('RollingOut');
    let gateway = await w.gateway();
    expect(gateway.metadata.finalizers).toEqual([FINALIZER]);
    expect(condition(gateway, 'Ready')).toBe(
      'False RollingOut: 0 of 2 replicas ready at gatehouse-gw-people.shop.svc:5432',
    );
    expect(condition(gateway, 'Reconciling')).toMatch(/^True RollingOut/);

    const owner = { kind: 'DatabaseGateway', name: 'people', uid: gateway.metadata.uid, controller: true };
    const bundle = await w.bundle();
    const [proxy] = parseAllDocuments(bundle[BUNDLE_CONFIG_KEY]!).map((d) => d.toJS());
    expect(proxy.listen).toBe('0.0.0.0:5432');
    expect(proxy.identity).toEqual({ mode: 'token', token: OIDC });
    expect(proxy.clientTls).toEqual({
      certFile: '/etc/gatehouse/client-tls/tls.crt',
      keyFile: '/etc/gatehouse/client-tls/tls.key',
      required: true,
    });
    expect(bundle[BUNDLE_CONFIG_KEY]).not.toContain('pw-not-in-bundle');
    // No approvals endpoint (the operator runs without its webhook): held statements are refused.
    expect(proxy.approvals).toBeUndefined();

    // The certificate's first generation: created once, immutable, never written again.
    const secret = await w.api.get<V1Secret & KubeObject>(core('secrets', `${OBJ}-tls-1`));
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.immutable).toBe(true);
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
    const served = new X509Certificate(Buffer.from(secret.data!['tls.crt']!, 'base64'));
    expect(served.subjectAltName).toContain('DNS:gatehouse-gw-people.shop.svc');
    const ca = await w.api.get<V1ConfigMap & KubeObject>(core('configmaps', `${OBJ}-ca`));
    expect(served.verify(new X509Certificate(ca.data!['ca.crt']!).publicKey)).toBe(true);
    expect(ca.data!['ca.crt']).not.toContain('PRIVATE KEY');

    const deployment = await w.deployment();
    expect(deployment.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
    const pod = deployment.spec!.template.spec!;
    const [container] = pod.containers;
    expect(deployment.spec!.replicas).toBe(2);
    expect(container!.image).toBe('example.com/gatehouse:test');
    expect(container!.args).toEqual(['proxy', '--config', '/etc/gatehouse/bundle/gatehouse.yaml']);
    expect(container!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    // Its own account, with no API server token: only the projected token for the operator.
    expect(pod.serviceAccountName).toBe(OBJ);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.volumes!.find((v) => v.name === 'gatehouse-token')!.projected!.sources).toEqual([
      { serviceAccountToken: { audience: 'gatehouse.dev', expirationSeconds: 3600, path: 'token' } },
    ]);
    const account = await w.api.get<KubeObject & { automountServiceAccountToken?: boolean }>(
      core('serviceaccounts', OBJ),
    );
    expect(account.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
    expect(account.automountServiceAccountToken).toBe(false);
    expect(deployment.spec!.template.metadata!.labels![LABEL_INJECT]).toBe(INJECT_DISABLED);
    expect(
      Object.fromEntries(container!.volumeMounts!.map((m) => [m.mountPath, m.readOnly ?? false])),
    ).toEqual({
      '/etc/gatehouse/bundle': true,
      '/etc/gatehouse/credentials': true,
      '/etc/gatehouse/masking-key': true,
      '/etc/gatehouse/audit-signing-key': true,
      '/etc/gatehouse/client-tls': true,
      '/var/run/secrets/gatehouse.dev/serviceaccount': true,
      '/var/lib/gatehouse/audit': false,
    });
    // The proxy sees the certificate and its key, never the CA's key kept in the same Secret.
    const clientTls = pod.volumes!.find((v) => v.name === 'gatehouse-client-tls')!.secret!;
    expect(clientTls.secretName).toBe(`${OBJ}-tls-1`);
    expect(clientTls.items!.map((i) => i.key)).toEqual(['tls.crt', 'tls.key']);

    const service = await w.api.get<V1Service & KubeObject>(core('services', OBJ));
    expect(service.spec!.type).toBe('ClusterIP');
    expect(service.spec!.selector).toEqual(deployment.spec!.selector!.matchLabels);
    expect(service.spec!.ports).toEqual([
      { name: 'proxy', port: 5432, targetPort: 'gh-proxy', protocol: 'TCP' },
    ]);

    await podsReady(w, 2);
    expect(await w.reconcile()).toEqual({ outcome: 'Ready', requeueAfterMs: 600_000 });
    gateway = await w.gateway();
    expect(condition(gateway, 'Ready')).toBe(
      'True Available: 2 of 2 replicas ready at gatehouse-gw-people.shop.svc:5432',
    );
    expect(condition(gateway, 'Stalled')).toBe('False Available');
    expect(gateway.status).toMatchObject({
      observedGeneration: 1,
      address: 'gatehouse-gw-people.shop.svc:5432',
      bundle: { configMap: `${OBJ}-bundle` },
      tls: { secret: `${OBJ}-tls-1`, caConfigMap: `${OBJ}-ca` },
      replicas: 2,
      readyReplicas: 2,
    });

    const since = w.api.requests.length;
    await w.reconcile();
    expect(w.api.writes(since)).toEqual([]);
  });

  it('a policy change rewrites the bundle only (hot reload); an upstream change rolls the pods', async () => {
    const w = await readyWorld();
    await w.reconcile();
    const rollout = async () =>
      (await w.deployment()).spec!.template.metadata!.annotations![ANNOTATION_GATEWAY_ROLLOUT];
    const first = { bundle: (await w.gateway()).status!.bundle!.hash, rollout: await rollout() };

    await w.api.patch(gatehousePath('MaskingPolicy', NS, 'pii'), {
      spec: { rules: [{ columns: ['customers.phone'], method: 'redact' }] },
    });
    await w.reconcile();
    expect((await w.gateway()).status!.bundle!.hash).not.toBe(first.bundle);
    expect(await rollout()).toBe(first.rollout);
    expect((await w.bundle())[BUNDLE_CONFIG_KEY]).toContain('customers.phone');

    await w.api.patch(gatehousePath('DatabaseAccess', NS, 'analysts'), {
      spec: { upstream: { host: 'db2.shop.svc' } },
    });
    await w.reconcile();
    expect(await rollout()).not.toBe(first.rollout);

    await w.api.patch(gatehousePath('DatabaseGateway', NS, 'people'), {
      spec: { replicas: 3, service: { type: 'LoadBalancer', port: 15432 } },
    });
    await w.reconcile();
    expect((await w.deployment()).spec!.replicas).toBe(3);
    const service = await w.api.get<V1Service>(core('services', OBJ));
    expect(service.spec).toMatchObject({
      type: 'LoadBalancer',
      ports: [expect.objectContaining({ port: 15432 })],
    });
    expect((await w.gateway()).status!.address).toBe('gatehouse-gw-people.shop.svc:15432');
  });

  it('with tls.mode CertManager asks cert-manager for the certificate and waits for its Secret', async () => {
    const w = await readyWorld({
      tls: { mode: 'CertManager', issuerRef: { name: 'corp-ca' }, dnsNames: ['db.example.com'] },
    });
    expect(await w.reconcile()).toEqual({ outcome: 'CertificateNotReady', requeueAfterMs: 5_000 });
    expect(condition(await w.gateway(), 'Reconciling')).toBe(
      `True CertificateNotReady: waiting for cert-manager to write Secret "${OBJ}-tls" (Certificate "${OBJ}-tls")`,
    );
    const certificate = await w.api.get<KubeObject & { spec: Record<string, unknown> }>(
      resourcePath('cert-manager.io/v1', 'certificates', NS, `${OBJ}-tls`),
    );
    expect(certificate.spec).toMatchObject({
      secretName: `${OBJ}-tls`,
      dnsNames: [
        'gatehouse-gw-people.shop.svc',
        'gatehouse-gw-people.shop.svc.cluster.local',
        'db.example.com',
      ],
      issuerRef: { name: 'corp-ca', kind: 'Issuer', group: 'cert-manager.io' },
    });
    expect(await w.api.getOptional(DEPLOYMENT)).toBeUndefined();

    // cert-manager's part.
    await w.api.create(core('secrets', ''), {
      metadata: { name: `${OBJ}-tls` },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': 'CERT', 'tls.key': 'KEY', 'ca.crt': 'CORP CA' },
    });
    expect((await w.reconcile())?.outcome).toBe('RollingOut');
    expect((await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data).toEqual({
      'ca.crt': 'CORP CA',
    });
    expect(await w.api.getOptional(DEPLOYMENT)).toBeDefined();
  });

  it('leaves alone an object of its name that it does not own, and says so', async () => {
    const w = await readyWorld();
    await w.api.create(core('services', ''), { metadata: { name: OBJ }, spec: { ports: [{ port: 1 }] } });
    expect((await w.reconcile())?.outcome).toBe('ObjectConflict');
    expect(condition(await w.gateway(), 'Ready')).toBe(
      `False ObjectConflict: Service "${OBJ}" exists and is not owned by this DatabaseGateway; rename or delete it`,
    );
    expect((await w.api.get<V1Service>(core('services', OBJ))).spec!.ports![0]!.port).toBe(1);
  });

  it('never uses or writes a certificate Secret at a generation name that it does not own', async () => {
    const w = await readyWorld();
    await w.api.create(core('secrets', ''), {
      metadata: { name: `${OBJ}-tls-1` },
      stringData: { 'tls.crt': 'THEIRS', 'tls.key': 'THEIRS', 'ca.crt': 'THEIRS', 'ca.key': 'THEIRS' },
    });
    expect((await w.reconcile())?.outcome).toBe('RollingOut');
    const secret = await w.api.get<V1Secret>(core('secrets', `${OBJ}-tls-1`));
    expect(Buffer.from(secret.data!['tls.crt']!, 'base64').toString()).toBe('THEIRS');
    expect((await w.gateway()).status!.tls!.secret).toBe(`${OBJ}-tls-2`);
    const mounted = (await w.deployment()).spec!.template.spec!.volumes!.find(
      (v) => v.name === 'gatehouse-client-tls',
    )!.secret!.secretName;
    expect(mounted).toBe(`${OBJ}-tls-2`);
    expect((await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt']).not.toBe(
      'THEIRS',
    );
  });

  it("never takes a Secret put at a later generation's name for its certificate, even one naming it owner", async () => {
    const w = await readyWorld();
    await w.reconcile();
    const gateway = await w.gateway();
    const caBefore = (await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt'];
    // Whoever creates a Secret writes its owner reference: this one claims the gateway.
    const forged = {
      metadata: {
        name: `${OBJ}-tls-2`,
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'DatabaseGateway',
            name: 'people',
            uid: gateway.metadata.uid,
            controller: true,
          },
        ],
      },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': 'FORGED', 'tls.key': 'FORGED', 'ca.crt': 'FORGED CA', 'ca.key': 'FORGED' },
    };
    await w.api.create(core('secrets', ''), forged);
    await w.reconcile();
    expect((await w.gateway()).status!.tls!.secret).toBe(`${OBJ}-tls-1`);
    // A renewal skips the taken name.
    await w.api.patch(gatehousePath('DatabaseGateway', NS, 'people'), {
      spec: { tls: { dnsNames: ['db.example.com'] } },
    });
    await w.reconcile();
    expect((await w.gateway()).status!.tls!.secret).toBe(`${OBJ}-tls-3`);
    expect((await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt']).toBe(caBefore);
    const untouched = await w.api.get<V1Secret>(core('secrets', `${OBJ}-tls-2`));
    expect(Buffer.from(untouched.data!['ca.crt']!, 'base64').toString()).toBe('FORGED CA');
  });

  it('renews into a new Secret generation: the old one is never written, the CA people trust stays', async () => {
    const w = await readyWorld();
    await w.reconcile();
    const first = await w.api.get<V1Secret & KubeObject>(core('secrets', `${OBJ}-tls-1`));
    const caBefore = (await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt'];
    const rolloutBefore = (await w.deployment()).spec!.template.metadata!.annotations![
      ANNOTATION_GATEWAY_ROLLOUT
    ];
    const since = w.api.requests.length;
    // A new name for the certificate: it is issued again.
    await w.api.patch(gatehousePath('DatabaseGateway', NS, 'people'), {
      spec: { tls: { dnsNames: ['db.example.com'] } },
    });
    await w.reconcile();
    const second = await w.api.get<V1Secret & KubeObject>(core('secrets', `${OBJ}-tls-2`));
    expect(second.immutable).toBe(true);
    expect(new X509Certificate(Buffer.from(second.data!['tls.crt']!, 'base64')).subjectAltName).toContain(
      'DNS:db.example.com',
    );
    expect(second.data!['ca.key']).toBe(first.data!['ca.key']);
    expect((await w.api.get<V1ConfigMap>(core('configmaps', `${OBJ}-ca`))).data!['ca.crt']).toBe(caBefore);
    const deployment = await w.deployment();
    expect(
      deployment.spec!.template.spec!.volumes!.find((v) => v.name === 'gatehouse-client-tls')!.secret!
        .secretName,
    ).toBe(`${OBJ}-tls-2`);
    expect(deployment.spec!.template.metadata!.annotations![ANNOTATION_GATEWAY_ROLLOUT]).not.toBe(
      rolloutBefore,
    );
    expect((await w.gateway()).status!.tls!.secret).toBe(`${OBJ}-tls-2`);
    // Secrets are only ever created: no update, patch or delete of one.
    const secretWrites = w.api.writes(since).filter((write) => write.includes('/secrets'));
    expect(secretWrites).toEqual([`POST /api/v1/namespaces/${NS}/secrets`]);
    expect((await w.api.get<KubeObject>(core('secrets', `${OBJ}-tls-1`))).metadata.resourceVersion).toBe(
      first.metadata.resourceVersion,
    );
    // Found again from the generation the pods mount: nothing more is written.
    const idle = w.api.requests.length;
    await w.reconcile();
    expect(w.api.writes(idle)).toEqual([]);
  });

  it("with the operator's approvals endpoint, asks it with the pod's projected token and CA", async () => {
    const w = await readyWorld(
      {},
      { url: 'https://gatehouse-webhook.gatehouse-system.svc', ca: 'OPERATOR CA' },
    );
    await w.reconcile();
    const bundle = await w.bundle();
    const [proxy] = parseAllDocuments(bundle[BUNDLE_CONFIG_KEY]!).map((d) => d.toJS());
    expect(proxy.approvals).toEqual({
      operator: {
        url: 'https://gatehouse-webhook.gatehouse-system.svc',
        caFile: '/etc/gatehouse/bundle/operator-ca.crt',
        tokenFile: '/var/run/secrets/gatehouse.dev/serviceaccount/token',
      },
    });
    expect(bundle['operator-ca.crt']).toBe('OPERATOR CA');
  });

  it('stalls while a ServiceAccount of its name is not its own, and never writes it', async () => {
    const w = await readyWorld();
    await w.api.create(core('serviceaccounts', ''), { metadata: { name: OBJ } });
    expect(await w.reconcile()).toEqual({ outcome: 'ObjectConflict', requeueAfterMs: 30_000 });
    expect(condition(await w.gateway(), 'Stalled')).toBe(
      `True ObjectConflict: ServiceAccount "${OBJ}" exists and is not owned by this DatabaseGateway; rename or delete it`,
    );
    expect(
      (await w.api.get<KubeObject>(core('serviceaccounts', OBJ))).metadata.ownerReferences,
    ).toBeUndefined();
    expect(await w.api.getOptional(DEPLOYMENT)).toBeUndefined();
  });

  it('stalls on a CertManager gateway without issuerRef, which an API server without CEL lets through', async () => {
    const w = await readyWorld({ tls: { mode: 'CertManager' } });
    expect((await w.reconcile())?.outcome).toBe('InvalidSpec');
    expect(condition(await w.gateway(), 'Stalled')).toBe(
      'True InvalidSpec: spec.tls.issuerRef: is required when tls.mode is CertManager',
    );
  });

  it('refuses a listen port that is the admin port (InvalidSpec)', async () => {
    const w = await readyWorld({ port: 15090 });
    expect((await w.reconcile())?.outcome).toBe('InvalidSpec');
    expect(condition(await w.gateway(), 'Ready')).toBe(
      "False InvalidSpec: spec.port: 15090 is the proxy's admin port; choose another",
    );
  });

  it('on deletion deletes what it made, not what others own, then removes its finalizer', async () => {
    const w = await readyWorld();
    await w.reconcile();
    await w.api.delete(gatehousePath('DatabaseGateway', NS, 'people'));
    expect((await w.gateway()).metadata.deletionTimestamp).toBeDefined();
    expect(await w.reconcile()).toEqual({ outcome: 'finalized' });
    for (const path of [
      DEPLOYMENT,
      core('services', OBJ),
      core('configmaps', `${OBJ}-bundle`),
      core('configmaps', `${OBJ}-ca`),
    ])
      expect(await w.api.getOptional(path), path).toBeUndefined();
    // The operator may not delete Secrets or accounts: these go with the gateway through the garbage
    // collector (which FakeKubeApi, like envtest, does not run), by their owner reference.
    for (const path of [core('secrets', `${OBJ}-tls-1`), core('serviceaccounts', OBJ)])
      expect((await w.api.get<KubeObject>(path)).metadata.ownerReferences, path).toEqual([
        expect.objectContaining({ kind: 'DatabaseGateway', name: 'people', controller: true }),
      ]);
    expect(await w.api.getOptional(gatehousePath('DatabaseGateway', NS, 'people'))).toBeUndefined();
    // Shared by every sidecar and gateway of the namespace: never deleted with one of them.
    expect(await w.api.getOptional(core('secrets', 'gatehouse-masking-key'))).toBeDefined();
    expect(await w.api.getOptional(core('secrets', 'db-creds'))).toBeDefined();
  });
});
