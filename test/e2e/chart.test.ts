import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadCollectorConfig } from '../../operator/src/collector/collector-config.ts';
import { TOKEN_AUDIENCE } from '../../operator/src/sidecar-layout.ts';
import { CHART_DIR, helm, helmBinary, PLAIN_MANIFESTS_NAMESPACE, plainManifests } from '../harness/helm.ts';
import { type KubeEndpoint, kubeRequest } from '../harness/kube/kube-request.ts';
import { type KubeCluster, startKube } from '../harness/kube/start-kube.ts';
import { KUBE_VERSIONS } from '../harness/kube/versions.ts';

/**
 * The Helm chart: lint, render, reject bad values by values.schema.json, and have a real
 * kube-apiserver validate every rendered object (server-side dry-run with strict field validation).
 */

type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field in assertions
  [field: string]: any;
};

const RELEASE_NAMESPACE = 'gatehouse-system';
/** The first run on a machine builds helm, etcd and kube-apiserver from source; later runs find them cached. */
const FIRST_RUN_TIMEOUT_MS = 40 * 60_000;

async function render(...args: string[]): Promise<KubeObject[]> {
  const result = await helm(['template', 'gatehouse', CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
  expect(result.code, result.stderr).toBe(0);
  return parseObjects(result.stdout);
}

function parseObjects(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as KubeObject | null)
    .filter((object): object is KubeObject => object !== null);
}

function find(objects: KubeObject[], kind: string): KubeObject {
  const found = objects.find((object) => object.kind === kind);
  if (found === undefined)
    throw new Error(`no ${kind} among ${objects.map((object) => object.kind).join(', ')}`);
  return found;
}

beforeAll(async () => {
  await helmBinary();
}, FIRST_RUN_TIMEOUT_MS);

describe('helm lint', () => {
  it.each([
    ['default values', []],
    ['cert-manager', ['--set', 'webhook.certManager.enabled=true']],
  ])('passes with --strict (%s)', async (_, args) => {
    for (const strict of [[], ['--strict']]) {
      const result = await helm(['lint', CHART_DIR, ...strict, ...args]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain('0 chart(s) failed');
    }
  });
});

describe('helm template', () => {
  it('renders the operator with exactly the flags it understands', async () => {
    const objects = await render();
    expect(objects.map((object) => object.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'MutatingWebhookConfiguration',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const pod = find(objects, 'Deployment').spec.template.spec;
    const [container] = pod.containers;
    expect(container.image).toBe('ghcr.io/gatehouse-dev/gatehouse-operator:0.1.0');
    expect(container.args).toEqual([
      'operator',
      `--namespace=${RELEASE_NAMESPACE}`,
      '--webhook-port=9443',
      '--metrics-port=8080',
      '--health-port=8081',
      '--leader-elect=true',
      '--sidecar-image=ghcr.io/gatehouse-dev/gatehouse-sidecar:0.1.0',
      `--webhook-config-name=gatehouse-${RELEASE_NAMESPACE}`,
      '--webhook-service-name=gatehouse-webhook',
      '--webhook-secret-name=gatehouse-webhook-tls',
      '--cert-mode=self',
      '--log-level=info',
    ]);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(container.ports).toEqual([
      { name: 'webhook', containerPort: 9443, protocol: 'TCP' },
      { name: 'metrics', containerPort: 8080, protocol: 'TCP' },
      { name: 'health', containerPort: 8081, protocol: 'TCP' },
    ]);
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    const service = find(objects, 'Service');
    expect(service.spec.ports).toContainEqual({
      name: 'webhook',
      port: 443,
      targetPort: 'webhook',
      protocol: 'TCP',
    });
    expect(service.spec.selector).toEqual(find(objects, 'Deployment').spec.selector.matchLabels);
  });

  it('injects on Pod CREATE only, never blocking, outside the system namespaces and its own', async () => {
    const objects = await render('--set', 'webhook.excludeNamespaces={monitoring}');
    const configuration = find(objects, 'MutatingWebhookConfiguration');
    expect(configuration.metadata.annotations).toBeUndefined();
    const [webhook] = configuration.webhooks;
    expect(webhook).toMatchObject({
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
      // The path the operator's webhook server answers (operator/src/webhook/webhook-server.ts).
      clientConfig: {
        service: { name: 'gatehouse-webhook', namespace: RELEASE_NAMESPACE, path: '/mutate-pods', port: 443 },
      },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
      namespaceSelector: {
        matchExpressions: [
          {
            key: 'kubernetes.io/metadata.name',
            operator: 'NotIn',
            values: ['kube-system', 'kube-public', 'kube-node-lease', RELEASE_NAMESPACE, 'monitoring'],
          },
        ],
      },
      objectSelector: {
        matchExpressions: [{ key: 'gatehouse.dev/inject', operator: 'NotIn', values: ['disabled'] }],
      },
    });
    expect(webhook.clientConfig.caBundle).toBeUndefined();
  });

  it('grants cluster-wide only what spans namespaces, and its own namespace the rest', async () => {
    const objects = await render();
    const clusterRules = find(objects, 'ClusterRole').rules as Array<Record<string, string[]>>;
    const role = find(objects, 'Role');
    for (const rule of [...clusterRules, ...role.rules]) {
      expect(rule['verbs']).not.toContain('*');
      expect(rule['resources']).not.toContain('*');
    }
    const grants = (rules: Array<Record<string, string[]>>, resource: string) =>
      rules.filter((rule) => rule['resources']!.includes(resource));
    expect(grants(clusterRules, 'leases')).toEqual([]);
    // Reads the Secrets accesses name (existence only) and creates each namespace's keys and each
    // generation of a DatabaseGateway's certificate; never lists, updates or deletes one. A gateway's
    // account likewise: made once, never changed.
    expect(grants(clusterRules, 'secrets').flatMap((rule) => rule['verbs'])).toEqual(['get', 'create']);
    expect(grants(clusterRules, 'serviceaccounts').flatMap((rule) => rule['verbs'])).toEqual([
      'get',
      'create',
    ]);
    expect(grants(clusterRules, 'mutatingwebhookconfigurations')[0]!['resourceNames']).toEqual([
      `gatehouse-${RELEASE_NAMESPACE}`,
    ]);
    expect(grants(clusterRules, 'databaseaccesses/status')[0]!['verbs']).toEqual(['get', 'update', 'patch']);
    expect(grants(clusterRules, 'serviceaccounts/token')).toEqual([]);
    expect(grants(role.rules, 'leases')[0]!['verbs']).toEqual(['get', 'create', 'update']);
    expect(role.metadata.namespace).toBe(RELEASE_NAMESPACE);
  });

  it('ships an approver ClusterRole to bind, and a decision webhook that fails closed', async () => {
    const objects = await render();
    const approver = objects.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'gatehouse-approver',
    );
    expect(approver?.rules).toEqual([
      { apiGroups: ['gatehouse.dev'], resources: ['approvalrequests'], verbs: ['get', 'list', 'watch'] },
      {
        apiGroups: ['gatehouse.dev'],
        resources: ['approvalrequests/status'],
        verbs: ['get', 'patch', 'update'],
      },
    ]);
    const decisions = find(objects, 'MutatingWebhookConfiguration').webhooks.find(
      (w: { name: string }) => w.name === 'approvalrequests.gatehouse.dev',
    );
    expect(decisions).toMatchObject({
      failurePolicy: 'Fail',
      clientConfig: { service: { path: '/approval-decisions', port: 443 } },
      rules: [{ operations: ['UPDATE'], resources: ['approvalrequests/status'] }],
    });
    // Who changed a policy object: stamped by the operator (operator/src/policy-changes/), failing closed.
    const policyChanges = find(objects, 'MutatingWebhookConfiguration').webhooks.find(
      (w: { name: string }) => w.name === 'policychanges.gatehouse.dev',
    );
    expect(policyChanges).toMatchObject({
      failurePolicy: 'Fail',
      clientConfig: { service: { path: '/policy-changes', port: 443 } },
      rules: [
        {
          operations: ['CREATE', 'UPDATE'],
          apiGroups: ['gatehouse.dev'],
          resources: ['databaseaccesses', 'guardrails', 'maskingpolicies'],
        },
      ],
    });
    const operatorRole = find(objects, 'ClusterRole').rules as Array<Record<string, string[]>>;
    expect(operatorRole).toEqual(
      expect.arrayContaining([
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      ]),
    );
  });

  it('hands the certificate to cert-manager when asked', async () => {
    const objects = await render('--set', 'webhook.certManager.enabled=true');
    const configuration = find(objects, 'MutatingWebhookConfiguration');
    expect(configuration.metadata.annotations).toEqual({
      'cert-manager.io/inject-ca-from': `${RELEASE_NAMESPACE}/gatehouse-webhook`,
    });
    const certificate = find(objects, 'Certificate');
    expect(certificate.spec).toMatchObject({
      secretName: 'gatehouse-webhook-tls',
      dnsNames: [
        'gatehouse-webhook',
        `gatehouse-webhook.${RELEASE_NAMESPACE}`,
        `gatehouse-webhook.${RELEASE_NAMESPACE}.svc`,
        `gatehouse-webhook.${RELEASE_NAMESPACE}.svc.cluster.local`,
      ],
      issuerRef: { name: 'gatehouse-selfsigned', kind: 'Issuer', group: 'cert-manager.io' },
    });
    expect(find(objects, 'Issuer').spec).toEqual({ selfSigned: {} });
    expect(find(objects, 'Deployment').spec.template.spec.containers[0].args).toContain(
      '--cert-mode=cert-manager',
    );
    // cert-manager writes the Secret; the operator only reads it.
    const secretRules = (find(objects, 'Role').rules as Array<Record<string, string[]>>).filter((rule) =>
      rule['resources']!.includes('secrets'),
    );
    expect(secretRules.flatMap((rule) => rule['verbs'])).toEqual(['get', 'list', 'watch']);

    const withIssuer = await render(
      '--set',
      'webhook.certManager.enabled=true',
      '--set',
      'webhook.certManager.issuerRef.name=corp-ca',
      '--set',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
    );
    expect(withIssuer.some((object) => object.kind === 'Issuer')).toBe(false);
    expect(find(withIssuer, 'Certificate').spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  });

  it('installs the collector when asked, with TokenReview its only cluster permission, and points sidecars at it', async () => {
    const objects = await render(
      '--set',
      'collector.enabled=true',
      '--set',
      'collector.store.secretName=audit-store',
      '--set',
      'collector.clusterName=prod-eu',
      '--set',
      'collector.replicas=2',
      '--set',
      'collector.readers={system:serviceaccount:security:auditor}',
      '--set',
      'collector.admins={system:serviceaccount:security:lead}',
    );
    const collector = objects.filter(
      (object) => object.metadata.labels?.['app.kubernetes.io/component'] === 'collector',
    );
    expect(collector.map((object) => object.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'Service',
      'ServiceAccount',
    ]);
    const byKind = (kind: string) => collector.find((object) => object.kind === kind)!;
    expect(byKind('ClusterRole').rules).toEqual([
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
    expect(byKind('ClusterRoleBinding').subjects).toEqual([
      { kind: 'ServiceAccount', name: byKind('ServiceAccount').metadata.name, namespace: RELEASE_NAMESPACE },
    ]);
    const deployment = byKind('Deployment');
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe(byKind('ServiceAccount').metadata.name);
    const [container] = pod.containers;
    expect(container.image).toBe('ghcr.io/gatehouse-dev/gatehouse-sidecar:0.1.0');
    expect(container.args).toEqual(['collector', '--config=/etc/gatehouse/collector/collector.yaml']);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(pod.volumes).toContainEqual({
      name: 'store',
      secret: { secretName: 'audit-store', items: [{ key: 'url', path: 'url' }] },
    });
    // TLS always: the certificate and its key only, never the CA key the operator keeps beside them.
    expect(pod.volumes).toContainEqual({
      name: 'tls',
      secret: {
        secretName: 'gatehouse-collector-tls',
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    });
    expect(container.volumeMounts).toContainEqual({
      name: 'tls',
      mountPath: '/etc/gatehouse/collector-tls',
      readOnly: true,
    });
    expect(container.livenessProbe.httpGet.scheme).toBe('HTTPS');
    expect(container.readinessProbe.httpGet.scheme).toBe('HTTPS');
    const service = byKind('Service');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    // The operator's Service and Deployment never select the collector's pods, nor it theirs.
    const operator = objects.find((object) => object.kind === 'Deployment' && object !== deployment)!;
    expect(operator.spec.selector.matchLabels).not.toEqual(deployment.spec.selector.matchLabels);

    // The rendered configuration is one the collector takes, with the pods' token audience.
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-chart-collector-'));
    await writeFile(join(dir, 'url'), 'postgres://audit:secret@db:5432/audit');
    const file = join(dir, 'collector.yaml');
    await writeFile(
      file,
      byKind('ConfigMap').data['collector.yaml'].replaceAll('/etc/gatehouse/collector-store', dir),
    );
    const config = loadCollectorConfig(file, {});
    expect(config).toMatchObject({
      listen: { host: '0.0.0.0', port: service.spec.ports[0].port },
      storeUrl: 'postgres://audit:secret@db:5432/audit',
      retentionDays: 90,
      tokenReview: { audiences: [TOKEN_AUDIENCE] },
      readers: ['system:serviceaccount:security:auditor'],
      admins: ['system:serviceaccount:security:lead'],
      shipperTokens: [],
      tls: {
        certFile: '/etc/gatehouse/collector-tls/tls.crt',
        keyFile: '/etc/gatehouse/collector-tls/tls.key',
      },
    });
    await rm(dir, { recursive: true, force: true });

    // The operator puts the Service's https address, the CA that verifies it and the cluster name
    // into every bundle; it issues the certificate (no cert-manager here) into the Secret the pods mount.
    const args = operator.spec.template.spec.containers[0].args as string[];
    expect(args.slice(-4)).toEqual([
      `--collector-url=https://${service.metadata.name}.${RELEASE_NAMESPACE}.svc:${service.spec.ports[0].port}`,
      `--collector-service-name=${service.metadata.name}`,
      '--collector-secret-name=gatehouse-collector-tls',
      '--cluster-name=prod-eu',
    ]);
    expect(args).toContain('--cert-mode=self');
    // Its Secret rights are by name: the webhook's certificate and the collector's.
    const role = objects.find((object) => object.kind === 'Role')!;
    expect(role.rules).toContainEqual({
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: ['gatehouse-webhook-tls', 'gatehouse-collector-tls'],
      verbs: ['get', 'list', 'watch', 'update', 'patch'],
    });
    expect(objects.some((object) => object.kind === 'Certificate')).toBe(false);
    expect((await render()).some((object) => object.metadata.name === service.metadata.name)).toBe(false);
  });

  it("lets cert-manager issue the collector's certificate for its Service names, with a CA of its own or the user's issuer", async () => {
    const base = [
      '--set',
      'collector.enabled=true',
      '--set',
      'collector.store.secretName=audit-store',
      '--set',
      'webhook.certManager.enabled=true',
    ];
    const objects = await render(...base);
    const collectorObjects = objects.filter(
      (object) => object.metadata.labels?.['app.kubernetes.io/component'] === 'collector',
    );
    const certificate = collectorObjects.find(
      (object) => object.kind === 'Certificate' && object.metadata.name === 'gatehouse-collector',
    )!;
    const service = collectorObjects.find((object) => object.kind === 'Service')!;
    const svc = service.metadata.name;
    expect(certificate.spec).toMatchObject({
      secretName: 'gatehouse-collector-tls',
      dnsNames: [
        svc,
        `${svc}.${RELEASE_NAMESPACE}`,
        `${svc}.${RELEASE_NAMESPACE}.svc`,
        `${svc}.${RELEASE_NAMESPACE}.svc.cluster.local`,
        // A reader's `kubectl port-forward`, verified with --ca (docs/collector.md).
        'localhost',
      ],
      ipAddresses: ['127.0.0.1'],
      usages: ['server auth'],
      issuerRef: { name: 'gatehouse-collector-ca', kind: 'Issuer', group: 'cert-manager.io' },
    });
    // A CA of the collector's own, so ca.crt (which the bundles carry) outlives each renewal of the certificate.
    const ca = collectorObjects.find(
      (object) => object.kind === 'Certificate' && object.metadata.name === 'gatehouse-collector-ca',
    )!;
    expect(ca.spec).toMatchObject({
      isCA: true,
      secretName: 'gatehouse-collector-ca',
      issuerRef: { name: 'gatehouse-selfsigned', kind: 'Issuer' },
    });
    expect(collectorObjects.find((object) => object.kind === 'Issuer')?.spec).toEqual({
      ca: { secretName: 'gatehouse-collector-ca' },
    });
    // The operator only reads the Secret cert-manager writes (for its ca.crt), by name, and creates none.
    const role = objects.find((object) => object.kind === 'Role')!;
    expect(role.rules.filter((rule: { resources: string[] }) => rule.resources.includes('secrets'))).toEqual([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['gatehouse-webhook-tls', 'gatehouse-collector-tls'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    const operator = objects.find(
      (object) => object.kind === 'Deployment' && object.metadata.name === 'gatehouse-operator',
    )!;
    expect(operator.spec.template.spec.containers[0].args).toContain('--cert-mode=cert-manager');

    const withIssuer = await render(
      ...base,
      '--set',
      'webhook.certManager.issuerRef.name=corp-ca',
      '--set',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
    );
    const certificates = withIssuer.filter((object) => object.kind === 'Certificate');
    expect(certificates.map((object) => object.metadata.name).sort()).toEqual([
      'gatehouse-collector',
      'gatehouse-webhook',
    ]);
    expect(
      certificates.find((object) => object.metadata.name === 'gatehouse-collector')!.spec.issuerRef,
    ).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  });

  it('refuses a collector without a store, or with a cluster name it cannot record', async () => {
    const withoutStore = await helm(['template', 'gatehouse', CHART_DIR, '--set', 'collector.enabled=true']);
    expect(withoutStore.code).not.toBe(0);
    expect(withoutStore.stderr).toContain('collector.store.secretName');
    for (const name of ['Prod', 'prod_eu', '-prod', '']) {
      const result = await helm([
        'template',
        'gatehouse',
        CHART_DIR,
        '--set',
        `collector.clusterName=${name}`,
      ]);
      expect(result.code, name).not.toBe(0);
      expect(result.stderr).toContain('clusterName');
    }
  });

  it('refuses clusters older than 1.28, whose API servers lack what the CRDs need', async () => {
    const old = await helm(['template', 'gatehouse', CHART_DIR, '--kube-version', '1.27.9']);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain('chart requires kubeVersion: >=1.28.0-0');
    const eks = await helm(['template', 'gatehouse', CHART_DIR, '--kube-version', 'v1.28.15-eks-1']);
    expect(eks.code, eks.stderr).toBe(0);
  });

  it('adds a PodDisruptionBudget and pins images by digest when asked', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const objects = await render(
      '--set',
      'podDisruptionBudget.enabled=true',
      '--set',
      'replicaCount=2',
      '--set',
      `image.digest=${digest}`,
    );
    expect(find(objects, 'PodDisruptionBudget').spec.minAvailable).toBe(1);
    expect(find(objects, 'Deployment').spec.template.spec.containers[0].image).toBe(
      `ghcr.io/gatehouse-dev/gatehouse-operator@${digest}`,
    );
  });

  it.each([
    ['an unknown key', ['--set', 'replicas=2'], 'replicas'],
    ['a log level outside the enum', ['--set', 'logLevel=verbose'], 'logLevel'],
    ['a webhook timeout over 30 s', ['--set', 'webhook.timeoutSeconds=60'], 'timeoutSeconds'],
    ['zero replicas', ['--set', 'replicaCount=0'], 'replicaCount'],
    ['a misspelt nested key', ['--set', 'webhook.certManager.enable=true'], 'enable'],
    ['an existing ServiceAccount without a name', ['--set', 'serviceAccount.create=false'], 'name'],
    ['an image digest that is not one', ['--set', 'image.digest=latest'], 'digest'],
  ])('rejects %s by values.schema.json', async (_, args, field) => {
    const result = await helm(['template', 'gatehouse', CHART_DIR, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toContain(field);
  });

  it('explains every setting of values.schema.json with a comment in values.yaml', async () => {
    const schema = JSON.parse(await readFile(resolve(CHART_DIR, 'values.schema.json'), 'utf8'));
    const settings = new Set<string>();
    const collect = (node: { properties?: Record<string, unknown> }, prefix: string) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        settings.add(prefix + key);
        collect(child as typeof node, `${prefix}${key}.`);
      }
    };
    collect(schema, '');
    const lines = (await readFile(resolve(CHART_DIR, 'values.yaml'), 'utf8')).split('\n');
    const path: string[] = [];
    const documented = new Set<string>();
    const undocumented: string[] = [];
    lines.forEach((line, index) => {
      const key = /^( *)([A-Za-z]\w*):/.exec(line);
      if (key === null) return;
      path.length = key[1]!.length / 2;
      path.push(key[2]!);
      const setting = path.join('.');
      if (!settings.has(setting)) return;
      documented.add(setting);
      if (!lines[index - 1]?.trim().startsWith('#')) undocumented.push(setting);
    });
    expect(undocumented).toEqual([]);
    // Every setting has a default in values.yaml, except `global`, which only Helm sets, and the
    // fields of an issuerRef, which is empty by default.
    expect([...settings].filter((setting) => !documented.has(setting))).toEqual([
      'global',
      'webhook.certManager.issuerRef.name',
      'webhook.certManager.issuerRef.kind',
      'webhook.certManager.issuerRef.group',
    ]);
  });
});

describe('docs/install.md and examples/argocd', () => {
  it('lists every value of the chart in the values table', async () => {
    const schema = JSON.parse(await readFile(resolve(CHART_DIR, 'values.schema.json'), 'utf8'));
    const docs = await readFile(resolve(CHART_DIR, '../../docs/install.md'), 'utf8');
    const documented = new Set([...docs.matchAll(/^\| `([\w.]+)` \|/gm)].map((match) => match[1]));
    const missing: string[] = [];
    const walk = (
      node: { properties?: Record<string, unknown>; additionalProperties?: unknown },
      prefix: string,
    ) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const path = prefix + key;
        if (documented.has(path) || path === 'global') continue;
        const childNode = child as typeof node;
        // A group is documented by its leaves; a leaf (or a free-form map) by its own row.
        if (childNode.properties !== undefined && key !== 'resources') walk(childNode, `${path}.`);
        else missing.push(path);
      }
    };
    walk(schema, '');
    expect(missing).toEqual([]);
  });

  it('has an Argo CD Application that installs this chart with the sync options it needs', async () => {
    const application = parseObjects(
      await readFile(resolve(CHART_DIR, '../../examples/argocd/application.yaml'), 'utf8'),
    )[0]!;
    expect(application.kind).toBe('Application');
    expect(application.spec.source.path).toBe('charts/gatehouse');
    expect(application.spec.syncPolicy.syncOptions).toEqual(
      expect.arrayContaining(['CreateNamespace=true', 'ServerSideApply=true']),
    );
    // Its values pass the chart's schema, and the caBundle it ignores is this release's webhook's.
    const valuesArgs = Object.entries({
      replicaCount: application.spec.source.helm.valuesObject.replicaCount,
      'podDisruptionBudget.enabled': application.spec.source.helm.valuesObject.podDisruptionBudget.enabled,
    }).flatMap(([key, value]) => ['--set', `${key}=${value}`]);
    const rendered = await helm([
      'template',
      application.spec.source.helm.releaseName,
      CHART_DIR,
      '--namespace',
      application.spec.destination.namespace,
      ...valuesArgs,
    ]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const webhook = find(parseObjects(rendered.stdout), 'MutatingWebhookConfiguration');
    expect(application.spec.ignoreDifferences[0].name).toBe(webhook.metadata.name);
  });
});

describe('charts/manifests/gatehouse.yaml', () => {
  it('is what helm template renders from the chart', async () => {
    const committed = await readFile(resolve(CHART_DIR, '../manifests/gatehouse.yaml'), 'utf8').catch(
      () => '(missing)',
    );
    expect(
      committed === (await plainManifests()),
      'charts/manifests/gatehouse.yaml differs from the chart: run npm run gen and commit the result',
    ).toBe(true);
  });

  it('holds the namespace, the CRDs from crds/generated and the chart objects', async () => {
    const objects = parseObjects(await plainManifests());
    expect(objects[0]).toEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: PLAIN_MANIFESTS_NAMESPACE },
    });
    const crds = objects.filter((object) => object.kind === 'CustomResourceDefinition');
    const generated = await readdir(resolve(CHART_DIR, '../../crds/generated'));
    expect(crds.map((crd) => `${crd.metadata.name}.yaml`).sort()).toEqual(generated.sort());
  });
});

/** Where the API server takes objects of a kind: from its discovery documents, as kubectl finds it. */
async function resourcePath(kube: KubeEndpoint, object: KubeObject): Promise<string> {
  const base = object.apiVersion.includes('/') ? `/apis/${object.apiVersion}` : `/api/${object.apiVersion}`;
  const discovery = await kubeRequest<{
    resources: Array<{ name: string; kind: string; namespaced: boolean }>;
  }>(kube, { path: base });
  const resource = discovery.body.resources.find(
    (entry) => entry.kind === object.kind && !entry.name.includes('/'),
  );
  if (resource === undefined) throw new Error(`${base} does not serve ${object.kind}`);
  const namespace = object.metadata.namespace ?? RELEASE_NAMESPACE;
  return resource.namespaced
    ? `${base}/namespaces/${namespace}/${resource.name}`
    : `${base}/${resource.name}`;
}

describe.each(KUBE_VERSIONS)('the rendered chart on kube-apiserver %s', (version) => {
  let kube: KubeCluster;

  beforeAll(async () => {
    kube = await startKube({ version });
    const namespace = await kubeRequest(kube, {
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: RELEASE_NAMESPACE } },
    });
    expect(namespace.status).toBe(201);
  }, FIRST_RUN_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  it.each([
    ['default values', []],
    [
      'every option on',
      [
        '--set',
        'webhook.certManager.enabled=true',
        '--set',
        'podDisruptionBudget.enabled=true',
        '--set',
        'replicaCount=2',
        '--set',
        'webhook.excludeNamespaces={monitoring}',
        '--set',
        'priorityClassName=system-cluster-critical',
        '--set',
        'collector.enabled=true',
        '--set',
        'collector.store.secretName=audit-store',
      ],
    ],
  ])('passes server-side dry-run with strict field validation (%s)', async (_, args) => {
    const objects = await render(...args);
    const checked: string[] = [];
    for (const object of objects) {
      // No cert-manager here: its objects are checked by the tests above, not by an API server.
      if (object.apiVersion.startsWith('cert-manager.io/')) continue;
      const response = await kubeRequest<{ message?: string }>(kube, {
        method: 'POST',
        path: `${await resourcePath(kube, object)}?dryRun=All&fieldValidation=Strict`,
        body: object,
      });
      expect(response.status, `${object.kind} ${object.metadata.name}: ${response.body.message}`).toBe(201);
      checked.push(object.kind);
    }
    expect(checked).toEqual(
      expect.arrayContaining(['Deployment', 'MutatingWebhookConfiguration', 'ClusterRole']),
    );
  });

  it('rejects what is wrong: the dry-run is a real check', async () => {
    const [deployment] = (await render()).filter((object) => object.kind === 'Deployment');
    deployment!.spec.template.spec.containers[0].securityContext.capabilities.dropp = ['ALL'];
    const response = await kubeRequest<{ message?: string }>(kube, {
      method: 'POST',
      path: `${await resourcePath(kube, deployment!)}?dryRun=All&fieldValidation=Strict`,
      body: deployment,
    });
    expect(response.status).toBe(400);
    expect(response.body.message).toContain(
      'unknown field "spec.template.spec.containers[0].securityContext.capabilities.dropp"',
    );
  });

  it('installs the plain manifests for real (CRDs first), and the API server serves the kinds', async () => {
    const objects = parseObjects(await plainManifests()).filter((object) => object.kind !== 'Namespace');
    for (const object of objects) {
      const response = await kubeRequest<{ message?: string }>(kube, {
        method: 'POST',
        path: `${await resourcePath(kube, object)}?fieldValidation=Strict`,
        body: object,
      });
      expect(response.status, `${object.kind} ${object.metadata.name}: ${response.body.message}`).toBe(201);
    }
    const crd = await kubeRequest<{ spec: { names: { shortNames: string[] } } }>(kube, {
      path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/databaseaccesses.gatehouse.dev',
    });
    expect(crd.body.spec.names.shortNames).toEqual(['dba']);
  });
});
