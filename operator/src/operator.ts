import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { API_VERSION } from '../../crds/common.ts';
import { OPERATOR_APPROVALS_PREFIX } from '../../sidecar/src/approvals/operator-protocol.ts';
import { type ApprovalRequestObject, approvalRequestPath } from './approvals/approval-request-object.ts';
import { ApprovalRequests } from './approvals/approval-requests.ts';
import { approvalsEndpoint } from './approvals/approvals-endpoint.ts';
import { bundleApprovalsEndpoint } from './approvals/bundle-approvals-endpoint.ts';
import { APPROVAL_DECISIONS_PATH, reviewDecision } from './approvals/decision-review.ts';
import { GatewayCallers } from './approvals/gateway-callers.ts';
import { decisionAnnouncer, secretNotifier } from './approvals/secret-notifications.ts';
import { SidecarAuthenticator } from './approvals/sidecar-auth.ts';
import { type CollectorTls, startCollectorTls } from './collector-tls/collector-certificate.ts';
import { PLURALS } from './controllers/api-paths.ts';
import {
  DatabaseAccessController,
  type DatabaseAccessObject,
  type GuardrailObject,
  type MaskingPolicyObject,
} from './controllers/database-access-controller.ts';
import {
  DatabaseGatewayController,
  type DatabaseGatewayObject,
} from './controllers/database-gateway-controller.ts';
import { PolicyController, usersOf } from './controllers/policy-controller.ts';
import { registerWorkloadMetrics } from './controllers/workload-metrics.ts';
import { APP_NAME, LABEL_APP_NAME, LABEL_GATEWAY } from './gateway/gateway-layout.ts';
import { POLICY_CHANGES_PATH, reviewPolicyChange } from './policy-changes/policy-change-review.ts';
import { Controller, controllerMetrics } from './runtime/controller-runner.ts';
import { EventRecorder } from './runtime/event-recorder.ts';
import { Informer } from './runtime/informer.ts';
import { KubeApi, type KubeObject, objectKey, resourcePath } from './runtime/kube-api.ts';
import { LeaderElector } from './runtime/leader-election.ts';
import { ownUserName } from './runtime/own-user-name.ts';
import { type ProbeServer, startHealthServer, startMetricsServer } from './runtime/probe-servers.ts';
import { ServiceAccountIssuer } from './runtime/service-account-issuer.ts';
import { LABEL_MANAGED_BY, MANAGED_BY } from './sidecar-layout.ts';
import { handleAdmissionReview } from './webhook/admission-review.ts';
import {
  type CertificateSource,
  kubeCertificateClient,
  startCertificateSource,
} from './webhook/certificates.ts';
import { startWebhookServer, type WebhookServer } from './webhook/webhook-server.ts';
import { matchesAccess } from './workload/matches-access.ts';
import { parseServerVersion } from './workload/server-version.ts';

export interface OperatorOptions {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** The operator's own namespace: the leader Lease lives here. */
  readonly namespace: string;
  readonly sidecarImage: string;
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly leaderElect: boolean;
  /** Address the metrics and health servers bind (0.0.0.0 in a pod). */
  readonly bindHost?: string;
  readonly leaseName?: string;
  /** Lease timings; the defaults are client-go's (15 s lease, 10 s renew deadline, 2 s retry). */
  readonly lease?: { durationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /** Concurrent reconciles per controller. */
  readonly workers?: number;
  /** Called when leadership is lost without stop(): the process should exit and start again. */
  readonly onLeadershipLost?: () => void;
  /** The pod-injection webhook, served on every replica; absent: no webhook (controllers only). */
  readonly webhook?: WebhookOptions;
  /** The audit collector sidecars ship to (the chart's, when enabled), always over https. */
  readonly collector?: CollectorOptions;
}

export interface CollectorOptions {
  /** https://HOST[:PORT]. */
  readonly url: string;
  /** The cluster name recorded with every record. */
  readonly cluster: string;
  /** The collector's Service, named in its certificate. */
  readonly serviceName: string;
  /** The Secret (in the operator's namespace) with its serving certificate and ca.crt. */
  readonly secretName: string;
  /** Who issues the certificate: the operator (self) or cert-manager. */
  readonly certMode: 'self' | 'cert-manager';
}

export interface WebhookOptions {
  readonly port: number;
  /** The MutatingWebhookConfiguration whose caBundle the operator keeps current (cert mode self). */
  readonly configurationName: string;
  readonly serviceName: string;
  /** The Secret (in the operator's namespace) holding the serving certificate and, in mode self, its CA. */
  readonly secretName: string;
  readonly certMode: 'self' | 'cert-manager';
  /** What sidecars call for approvals; default https://SERVICE.NAMESPACE.svc (the webhook Service, port 443). */
  readonly approvalsUrl?: string;
}

export interface RunningOperator {
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly webhookPort?: number;
  readonly identity: string;
  readonly api: KubeApi;
  /** The DatabaseAccess cache, which the webhook reads on every replica. */
  readonly accesses: Informer<DatabaseAccessObject>;
  readonly serverVersion: { major: number; minor: number };
  readonly registry: Registry;
  isLeader(): boolean;
  /** Resolves once this replica leads and its controllers run. */
  readonly leading: Promise<void>;
  /** Graceful: stop taking work, finish reconciles in progress, release the lease, close servers. */
  stop(): Promise<void>;
}

type PolicyEventObject = GuardrailObject | MaskingPolicyObject;

/** How often requests no one decided (or used) in time are marked Expired. */
const EXPIRY_SWEEP_MS = 1000;

/**
 * The operator's control loop: informers (on every replica, so the webhook can read them), and the
 * controllers that write (on the leader only).
 */
export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const { logger } = options;
  const api = new KubeApi(options.kubeConfig);
  const serverVersion = parseServerVersion(await api.get('/version'));
  const identity = `${hostname()}-${randomBytes(4).toString('hex')}`;
  const gatehouse = (plural: string) => `/apis/${API_VERSION}/${plural}`;

  const accesses = new Informer<DatabaseAccessObject>(api, gatehouse(PLURALS.DatabaseAccess), logger);
  const guardrails = new Informer<GuardrailObject>(api, gatehouse(PLURALS.Guardrail), logger);
  const maskingPolicies = new Informer<MaskingPolicyObject>(api, gatehouse(PLURALS.MaskingPolicy), logger);
  const gateways = new Informer<DatabaseGatewayObject>(api, gatehouse(PLURALS.DatabaseGateway), logger);
  // Only the gateways' own Deployments: their ready replicas are the gateways' status.
  const gatewayDeployments = new Informer<KubeObject>(api, resourcePath('apps/v1', 'deployments'), logger, {
    labelSelector: `${LABEL_APP_NAME}=${APP_NAME},${LABEL_MANAGED_BY}=${MANAGED_BY}`,
  });
  const pods = new Informer<V1Pod & KubeObject>(api, resourcePath('v1', 'pods'), logger);
  const approvalObjects = new Informer<ApprovalRequestObject>(api, approvalRequestPath(), logger);
  /** Whether this replica holds the lease: controllers write, and decisions are announced, only then. */
  let leader = false;
  // Notify targets whose URL is in a Secret are the operator's to send; a sidecar cannot read them.
  const notifySecretTargets = secretNotifier({
    api,
    guardrails,
    logger: logger.child({ component: 'approval-notifications' }),
  });
  const approvals = new ApprovalRequests({
    api,
    cache: approvalObjects,
    logger: logger.child({ component: 'approvals' }),
    announce: (object) => notifySecretTargets('requested', object),
  });
  const announceDecision = decisionAnnouncer(notifySecretTargets, () => leader);
  approvalObjects.on((_event, object) => {
    approvals.changed(object);
    announceDecision(object);
  });
  const operatorUser = await ownUserName(api, logger);
  const issuer = new ServiceAccountIssuer(api, logger);
  const events = new EventRecorder(api, 'gatehouse-operator', logger);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_operator_' });
  const metrics = controllerMetrics(registry);
  registerWorkloadMetrics(registry, { list: () => accesses.list() });
  const leaderGauge = new Gauge({
    name: 'gatehouse_operator_leader',
    help: '1 while this replica holds the leader lease.',
    registers: [registry],
  });

  // Sidecars and gateways alike ship to the collector and ask the operator for approvals.
  const bundleServices = {
    ...(options.collector && {
      collector: { url: options.collector.url, cluster: options.collector.cluster },
      collectorCa: () => collectorTls?.ca() ?? Promise.resolve(undefined),
    }),
    ...(options.webhook && {
      approvalsEndpoint: bundleApprovalsEndpoint(api, options.namespace, options.webhook),
    }),
  };
  const accessController = new Controller(
    new DatabaseAccessController({
      api,
      accesses,
      guardrails,
      maskingPolicies,
      pods,
      issuer,
      events,
      sidecarImage: options.sidecarImage,
      serverVersion,
      ...bundleServices,
    }),
    logger,
    metrics,
  );
  const guardrailController = new Controller(
    new PolicyController('Guardrail', api, guardrails, accesses),
    logger,
    metrics,
  );
  const maskingController = new Controller(
    new PolicyController('MaskingPolicy', api, maskingPolicies, accesses),
    logger,
    metrics,
  );
  const gatewayController = new Controller(
    new DatabaseGatewayController({
      api,
      gateways,
      accesses,
      guardrails,
      maskingPolicies,
      events,
      sidecarImage: options.sidecarImage,
      ...bundleServices,
    }),
    logger,
    metrics,
  );
  const controllers = [accessController, guardrailController, maskingController, gatewayController];
  const key = (object: KubeObject) => objectKey(object.metadata.namespace, object.metadata.name);
  /** A gateway compiles its access and the policies the access names: a change to any of them requeues it. */
  const requeueGateways = (namespace: string | undefined, accessNames: readonly string[]) => {
    for (const gateway of gateways.list(namespace))
      if (accessNames.includes(gateway.spec.access)) gatewayController.queue.add(key(gateway));
  };
  gateways.on((_event, gateway) => gatewayController.queue.add(key(gateway)));
  gatewayDeployments.on((_event, deployment) => {
    const gateway = deployment.metadata.labels?.[LABEL_GATEWAY];
    if (gateway !== undefined) gatewayController.queue.add(objectKey(deployment.metadata.namespace, gateway));
  });

  /** Generation last seen per access: a spec change (not our own status writes) may change its siblings' conflicts. */
  const seenGenerations = new Map<string, number | undefined>();
  accesses.on((event, access) => {
    const accessKey = key(access);
    accessController.queue.add(accessKey);
    if (event === 'delete' || seenGenerations.get(accessKey) !== access.metadata.generation) {
      for (const sibling of accesses.list(access.metadata.namespace))
        accessController.queue.add(key(sibling));
    }
    requeueGateways(access.metadata.namespace, [access.metadata.name]);
    if (event === 'delete') seenGenerations.delete(accessKey);
    else seenGenerations.set(accessKey, access.metadata.generation);
    // A policy's status names the accesses that use it.
    for (const name of access.spec.guardrails ?? [])
      guardrailController.queue.add(objectKey(access.metadata.namespace, name));
    for (const name of access.spec.maskingPolicies ?? [])
      maskingController.queue.add(objectKey(access.metadata.namespace, name));
  });
  const onPolicy =
    (kind: 'Guardrail' | 'MaskingPolicy', controller: Controller) =>
    (_event: string, policy: PolicyEventObject) => {
      controller.queue.add(key(policy));
      // Every bundle that uses the policy is recompiled; running sidecars reload it from the ConfigMap.
      const users = usersOf(kind, accesses.list(policy.metadata.namespace), policy.metadata.name);
      for (const name of users) accessController.queue.add(objectKey(policy.metadata.namespace, name));
      requeueGateways(policy.metadata.namespace, users);
    };
  guardrails.on(onPolicy('Guardrail', guardrailController));
  maskingPolicies.on(onPolicy('MaskingPolicy', maskingController));
  pods.on((_event, pod) => {
    for (const access of accesses.list(pod.metadata.namespace)) {
      if (matchesAccess(pod, access)) accessController.queue.add(key(access));
    }
  });

  const informers = [
    accesses,
    guardrails,
    maskingPolicies,
    gateways,
    gatewayDeployments,
    pods,
    approvalObjects,
  ];
  await Promise.all(informers.map((informer) => informer.start()));
  const host = options.bindHost ?? '0.0.0.0';
  const servers: ProbeServer[] = [];
  let stopping = false;
  const metricsServer = await startMetricsServer(registry, host, options.metricsPort);
  servers.push(metricsServer);
  let webhook: { server: WebhookServer; certificates: CertificateSource } | undefined;
  if (options.webhook)
    webhook = await startWebhook(options, api, accesses, serverVersion, host, {
      approvals,
      operatorUser,
      gateways: new GatewayCallers({ api, gateways, accesses }),
    });
  // Every replica expires: each change tests the phase it leaves, so two replicas cannot both write one.
  const sweeper = setInterval(() => void approvals.sweep(), EXPIRY_SWEEP_MS);
  sweeper.unref();
  const healthServer = await startHealthServer(host, options.healthPort, () => {
    if (stopping) return 'shutting down';
    const unsynced = informers.filter((i) => !i.synced).map((i) => i.path);
    return unsynced.length > 0 ? `caches not synced: ${unsynced.join(', ')}` : undefined;
  });
  servers.push(healthServer);

  /** The collector's certificate is the leader's to renew, as the bundles that carry its CA are. */
  let collectorTls: CollectorTls | undefined;
  const startControllers = () => {
    leader = true;
    if (options.collector)
      collectorTls = startCollectorTls({
        api,
        client: kubeCertificateClient(options.kubeConfig),
        namespace: options.namespace,
        secretName: options.collector.secretName,
        service: options.collector.serviceName,
        url: options.collector.url,
        mode: options.collector.certMode,
        logger: logger.child({ component: 'collector-tls' }),
        onCaChanged: () => {
          for (const access of accesses.list()) accessController.queue.add(key(access));
          for (const gateway of gateways.list()) gatewayController.queue.add(key(gateway));
        },
      });
    leaderGauge.set(1);
    for (const controller of controllers) controller.start(options.workers ?? 2);
    for (const access of accesses.list()) accessController.queue.add(key(access));
    for (const g of guardrails.list()) guardrailController.queue.add(key(g));
    for (const m of maskingPolicies.list()) maskingController.queue.add(key(m));
    for (const g of gateways.list()) gatewayController.queue.add(key(g));
    issuer.start(() => {
      for (const access of accesses.list()) accessController.queue.add(key(access));
    });
    logger.info({ identity, controllers: controllers.map((c) => c.name) }, 'controllers started');
  };

  let elector: LeaderElector | undefined;
  let leading: Promise<void>;
  if (options.leaderElect) {
    elector = new LeaderElector({
      api,
      namespace: options.namespace,
      name: options.leaseName ?? 'gatehouse-operator',
      identity,
      logger,
      ...(options.lease?.durationMs !== undefined && { leaseDurationMs: options.lease.durationMs }),
      ...(options.lease?.renewDeadlineMs !== undefined && { renewDeadlineMs: options.lease.renewDeadlineMs }),
      ...(options.lease?.retryPeriodMs !== undefined && { retryPeriodMs: options.lease.retryPeriodMs }),
    });
    leading = elector
      .acquire(() => {
        leader = false;
        leaderGauge.set(0);
        options.onLeadershipLost?.();
      })
      .then((won) => {
        if (won && !stopping) startControllers();
      });
  } else {
    startControllers();
    leading = Promise.resolve();
  }
  logger.info(
    {
      identity,
      kubernetes: `${serverVersion.major}.${serverVersion.minor}`,
      metrics: metricsServer.port,
      health: healthServer.port,
      leaderElect: options.leaderElect,
    },
    'gatehouse operator started',
  );

  return {
    metricsPort: metricsServer.port,
    healthPort: healthServer.port,
    ...(webhook && { webhookPort: webhook.server.address.port }),
    identity,
    api,
    accesses,
    serverVersion,
    registry,
    isLeader: () => leader,
    leading,
    async stop() {
      if (stopping) return;
      stopping = true;
      logger.info('shutting down: finishing reconciles in progress');
      await Promise.all(controllers.map((c) => c.stop()));
      issuer.stop();
      collectorTls?.stop();
      clearInterval(sweeper);
      await elector?.stop();
      leader = false;
      webhook?.certificates.stop();
      await webhook?.server.close();
      await Promise.all(informers.map((i) => i.stop()));
      await Promise.all(servers.map((s) => s.close()));
      logger.info('gatehouse operator stopped');
    },
  };
}

async function startWebhook(
  options: OperatorOptions,
  api: KubeApi,
  accesses: Informer<DatabaseAccessObject>,
  serverVersion: { major: number; minor: number },
  host: string,
  approvalDeps: { approvals: ApprovalRequests; operatorUser: string | undefined; gateways: GatewayCallers },
): Promise<{ server: WebhookServer; certificates: CertificateSource }> {
  const webhook = options.webhook!;
  const logger = options.logger.child({ component: 'webhook' });
  const client = kubeCertificateClient(options.kubeConfig);
  const certificates =
    webhook.certMode === 'self'
      ? await startCertificateSource({
          mode: 'self-managed',
          client,
          namespace: options.namespace,
          secretName: webhook.secretName,
          service: webhook.serviceName,
          webhookConfigurationName: webhook.configurationName,
          extraNames: await webhookUrlHosts(api, webhook.configurationName),
          logger,
        })
      : await startCertificateSource({
          mode: 'cert-manager',
          client,
          namespace: options.namespace,
          secretName: webhook.secretName,
          logger,
        });
  const server = await startWebhookServer({
    host,
    port: webhook.port,
    certificate: certificates.current,
    handler: (review) =>
      handleAdmissionReview(review, {
        listAccesses: (namespace) => [...accesses.list(namespace)],
        image: options.sidecarImage,
        serverVersion,
        logger,
      }),
    reviews: {
      [APPROVAL_DECISIONS_PATH]: (review) =>
        reviewDecision(review, { operatorUser: () => approvalDeps.operatorUser, logger }),
      [POLICY_CHANGES_PATH]: (review) => reviewPolicyChange(review, { logger }),
    },
    routes: {
      prefix: OPERATOR_APPROVALS_PREFIX,
      listener: approvalsEndpoint({
        requests: approvalDeps.approvals,
        authenticator: new SidecarAuthenticator(api),
        gateways: approvalDeps.gateways,
        logger: logger.child({ component: 'approvals' }),
      }),
    },
    logger,
  });
  return { server, certificates };
}

/**
 * Hosts of webhooks registered by `url:` (a webhook outside the cluster, or a test calling
 * 127.0.0.1) go into the certificate beside the Service names, so the API server can verify it.
 */
async function webhookUrlHosts(api: KubeApi, configurationName: string): Promise<string[]> {
  const configuration = await api.getOptional<{ webhooks?: { clientConfig?: { url?: string } }[] }>(
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(configurationName)}`,
  );
  const hosts = (configuration?.webhooks ?? []).flatMap((w) => {
    const url = w.clientConfig?.url;
    return url ? [new URL(url).hostname.replace(/^\[|\]$/g, '')] : [];
  });
  return [...new Set(hosts)];
}
