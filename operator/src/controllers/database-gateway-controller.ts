import type { V1Deployment } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { DatabaseGatewaySpecType, DatabaseGatewayStatusType } from '../../../crds/database-gateway.ts';
import {
  type BundleCollector,
  BundleSpecError,
  type CompiledBundle,
  upstreamSettings,
} from '../compile/compile-bundle.ts';
import { compileGatewayBundle, gatewayListenPort } from '../gateway/compile-gateway-bundle.ts';
import {
  gatewayBundleName,
  gatewayCaConfigMapName,
  gatewayObjectName,
  gatewayServiceAccountName,
  gatewayTlsSecretName,
} from '../gateway/gateway-layout.ts';
import {
  bundleConfigMap,
  caConfigMap,
  DEFAULT_REPLICAS,
  type GatewayRef,
  gatewayDeployment,
  gatewayRolloutHash,
  gatewayService,
  gatewayServiceAccount,
  mountedTlsSecret,
} from '../gateway/gateway-objects.ts';
import { ensureGatewayTls } from '../gateway/gateway-tls.ts';
import { createOwned, deleteOwned, ensureOwned } from '../gateway/owned-objects.ts';
import type { ReconcileResult, Reconciler } from '../runtime/controller-runner.ts';
import type { EventRecorder } from '../runtime/event-recorder.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { type KubeClient, type KubeObject, resourcePath, splitKey } from '../runtime/kube-api.ts';
import { BUNDLE_CONFIG_KEY, FINALIZER } from '../sidecar-layout.ts';
import {
  type GuardrailObject,
  type MaskingPolicyObject,
  resolveAccessReferences,
} from './access-references.ts';
import { gatehousePath } from './api-paths.ts';
import { checkBundle, withAuthor } from './bundle-check.ts';
import { type Condition, type DesiredCondition, mergeConditions, standardConditions } from './conditions.ts';
import { convergeWithStatus } from './converge-step.ts';
import type { DatabaseAccessObject } from './database-access-controller.ts';
import { finalizerStep } from './finalizer.ts';
import { ensureNamespaceKeys } from './namespace-keys.ts';
import { writeStatus } from './status-writer.ts';

export type DatabaseGatewayStatus = DatabaseGatewayStatusType;

export interface DatabaseGatewayObject extends KubeObject {
  spec: DatabaseGatewaySpecType;
  status?: DatabaseGatewayStatus;
}

export interface DatabaseGatewayControllerDeps {
  readonly api: KubeClient;
  readonly gateways: ObjectCache<DatabaseGatewayObject>;
  readonly accesses: ObjectCache<DatabaseAccessObject>;
  readonly guardrails: ObjectCache<GuardrailObject>;
  readonly maskingPolicies: ObjectCache<MaskingPolicyObject>;
  readonly events: EventRecorder;
  /** The operator's sidecar image: the gateway runs the same proxy; spec.image overrides it. */
  readonly sidecarImage: string;
  /** Where the gateway asks for approvals (the operator's endpoint and CA); absent: nowhere, held statements are refused. */
  readonly approvalsEndpoint?: () => Promise<{ url: string; ca: string } | undefined>;
  /** The chart's audit collector: the gateway's bundle ships there as a sidecar's does. */
  readonly collector?: Omit<BundleCollector, 'ca'>;
  /** The CA that verifies the collector, read at each reconcile; undefined while there is none yet. */
  readonly collectorCa?: () => Promise<string | undefined>;
}

/** Secrets are not watched: a gateway waiting for cert-manager's looks again this often. */
const RECHECK_MS = 5_000;
/** The operator watches the gateways' Deployments and requeues on each change; this is a safety net. */
const DEPLOYMENT_RECHECK_MS = 60_000;
const MISSING_SECRET_RECHECK_MS = 30_000;
const RESYNC_MS = 10 * 60_000;

/**
 * DatabaseGateway → the proxy as a shared Deployment and Service for people: its bundle (the named
 * DatabaseAccess with its Guardrails and MaskingPolicies, identity from OIDC tokens), a serving
 * certificate and the CA to verify it, and a status with the address and the ready replicas. Every
 * object it makes is owned by the gateway; the finalizer deletes them where no garbage collector runs.
 */
export class DatabaseGatewayController implements Reconciler {
  readonly name = 'databasegateway';
  readonly #d: DatabaseGatewayControllerDeps;

  constructor(deps: DatabaseGatewayControllerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const gateway = this.#d.gateways.get(namespace, name);
    if (!gateway) return { outcome: 'gone' };
    const path = gatehousePath('DatabaseGateway', namespace, name);
    const meta = gateway.metadata;

    const ending = await finalizerStep(this.#d.api, path, meta, FINALIZER, () =>
      this.#deleteObjects(gateway),
    );
    if (ending) return ending;
    return convergeWithStatus<DatabaseGatewayStatus>({
      api: this.#d.api,
      path,
      generation: meta.generation,
      current: gateway.status,
      conditions: (desired) => this.#conditions(gateway, desired),
      report: (message, status) => this.#report(gateway, 'Warning', 'ReconcileError', message, status),
      converge: (status) => this.#converge(gateway, path, status),
    });
  }

  async #converge(
    gateway: DatabaseGatewayObject,
    path: string,
    status: DatabaseGatewayStatus,
  ): Promise<ReconcileResult> {
    const { namespace = '', name, generation, uid = '' } = gateway.metadata;
    const ref: GatewayRef = { metadata: { name, namespace, uid }, spec: gateway.spec };
    const outcome = async (
      kind: 'stalled' | 'retrying',
      reason: string,
      message: string,
      requeueAfterMs?: number,
      extra: Partial<DatabaseGatewayStatus> = {},
    ): Promise<ReconcileResult> => {
      const next: DatabaseGatewayStatus = {
        ...status,
        ...extra,
        observedGeneration: generation,
        conditions: this.#conditions(gateway, standardConditions({ kind, reason, message })),
      };
      await this.#report(gateway, 'Warning', reason, message, status);
      await writeStatus(this.#d.api, path, gateway.status, next);
      return { outcome: reason, ...(requeueAfterMs !== undefined && { requeueAfterMs }) };
    };

    const access = this.#d.accesses.get(namespace, gateway.spec.access);
    if (!access)
      return outcome('stalled', 'ReferenceNotFound', `DatabaseAccess "${gateway.spec.access}" not found`);
    const refs = await resolveAccessReferences(this.#d.api, this.#d, namespace, access.spec);
    if (refs.missing.length > 0)
      return outcome(
        'stalled',
        'ReferenceNotFound',
        `DatabaseAccess "${gateway.spec.access}": ${refs.missing.join('; ')}`,
        refs.secretProblem ? MISSING_SECRET_RECHECK_MS : undefined,
      );

    const approvals = await this.#d.approvalsEndpoint?.();
    const collectorCa = this.#d.collector && (await this.#d.collectorCa?.());
    let bundle: CompiledBundle;
    let port: number;
    try {
      port = gatewayListenPort(gateway.spec, upstreamSettings(access.spec).protocol);
      bundle = compileGatewayBundle({
        gateway: { spec: gateway.spec },
        access: { metadata: withAuthor(access, namespace), spec: access.spec },
        guardrails: refs.guardrails.map((g) => ({ metadata: withAuthor(g, namespace), spec: g.spec })),
        maskingPolicies: refs.maskingPolicies.map((m) => ({
          metadata: withAuthor(m, namespace),
          spec: m.spec,
        })),
        ...(approvals && { approvals }),
        ...(this.#d.collector && { collector: { ...this.#d.collector, ca: collectorCa } }),
      });
      checkBundle(bundle, `bundle of gateway ${namespace}/${name}`);
    } catch (error) {
      if (error instanceof BundleSpecError) return outcome('stalled', 'InvalidSpec', error.message);
      if (error instanceof Error && error.name === 'PolicyError')
        return outcome('stalled', 'InvalidPolicy', error.message);
      throw error;
    }

    const deploymentPath = resourcePath('apps/v1', 'deployments', namespace, gatewayObjectName(name));
    const existing = await this.#d.api.getOptional<V1Deployment & KubeObject>(deploymentPath);
    const mounted = existing?.metadata.ownerReferences?.some((o) => o.uid === uid)
      ? mountedTlsSecret(existing)
      : undefined;
    const tls = await ensureGatewayTls(this.#d.api, ref, mounted ?? gateway.status?.tls?.secret);
    if (!tls.ready)
      return outcome(
        tls.reason === 'CertificateNotReady' ? 'retrying' : 'stalled',
        tls.reason,
        tls.message,
        tls.reason === 'CertificateNotReady' ? RECHECK_MS : undefined,
      );

    await ensureNamespaceKeys(this.#d.api, namespace);
    const account = gatewayServiceAccount(ref);
    const accountWritten = await createOwned(
      this.#d.api,
      resourcePath('v1', 'serviceaccounts', namespace),
      account as KubeObject,
      uid,
    );
    if (accountWritten === 'conflict')
      // A gateway deleted under the same name leaves its account until the garbage collector takes it.
      return outcome(
        'stalled',
        'ObjectConflict',
        `ServiceAccount "${gatewayServiceAccountName(name)}" exists and is not owned by this DatabaseGateway; rename or delete it`,
        MISSING_SECRET_RECHECK_MS,
      );
    const image = gateway.spec.image ?? this.#d.sidecarImage;
    const core = (plural: string) => resourcePath('v1', plural, namespace);
    const objects = [
      { what: 'ConfigMap', collection: core('configmaps'), object: bundleConfigMap(ref, bundle.data) },
      ...(tls.caBundle !== undefined
        ? [{ what: 'ConfigMap', collection: core('configmaps'), object: caConfigMap(ref, tls.caBundle) }]
        : []),
      {
        what: 'Deployment',
        collection: resourcePath('apps/v1', 'deployments', namespace),
        object: gatewayDeployment({
          gateway: ref,
          access: access.spec,
          image,
          port,
          rolloutHash: gatewayRolloutHash(proxySettingsOf(bundle), tls.certificate, image),
          tlsSecret: tls.secret,
        }),
      },
      { what: 'Service', collection: core('services'), object: gatewayService(ref, port) },
    ];
    const changed: string[] =
      accountWritten === 'created' ? [`ServiceAccount "${account.metadata!.name}"`] : [];
    for (const { what, collection, object } of objects) {
      const objectName = object.metadata!.name!;
      const result = await ensureOwned(
        this.#d.api,
        collection,
        object as KubeObject & Record<string, unknown>,
        uid,
      );
      if (result === 'conflict')
        return outcome(
          'stalled',
          'ObjectConflict',
          `${what} "${objectName}" exists and is not owned by this DatabaseGateway; rename or delete it`,
        );
      if (result !== 'unchanged') changed.push(`${what} "${objectName}"`);
    }
    if (changed.length > 0)
      await this.#d.events.record(gateway, 'Normal', 'Applied', `wrote ${changed.join(', ')}`);

    const deployment = await this.#d.api.getOptional<V1Deployment>(deploymentPath);
    const replicas = gateway.spec.replicas ?? DEFAULT_REPLICAS;
    const readyReplicas = deployment?.status?.readyReplicas ?? 0;
    const service = gatewayService(ref, port);
    const details: DatabaseGatewayStatus = {
      address: `${service.metadata!.name}.${namespace}.svc:${service.spec!.ports![0]!.port}`,
      bundle: { configMap: gatewayBundleName(name), hash: bundle.hash },
      tls: {
        secret: tls.secret,
        ...(tls.caBundle !== undefined && { caConfigMap: gatewayCaConfigMapName(name) }),
      },
      replicas,
      readyReplicas,
    };
    const message = `${readyReplicas} of ${replicas} replicas ready at ${details.address}`;
    if (replicas > 0 && readyReplicas === 0)
      return outcome('retrying', 'RollingOut', message, DEPLOYMENT_RECHECK_MS, details);
    const next: DatabaseGatewayStatus = {
      observedGeneration: generation,
      conditions: this.#conditions(
        gateway,
        standardConditions({ kind: 'ready', reason: 'Available', message }),
      ),
      ...details,
    };
    await this.#report(gateway, 'Normal', 'Available', message, status);
    await writeStatus(this.#d.api, path, gateway.status, next);
    return { outcome: 'Ready', requeueAfterMs: readyReplicas < replicas ? DEPLOYMENT_RECHECK_MS : RESYNC_MS };
  }

  #conditions(gateway: DatabaseGatewayObject, desired: DesiredCondition[]): Condition[] {
    return mergeConditions(gateway.status?.conditions, desired, gateway.metadata.generation, new Date());
  }

  /** An event when the Ready reason changes, so a gateway waiting on something does not fill the event log. */
  async #report(
    gateway: DatabaseGatewayObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    status: DatabaseGatewayStatus,
  ): Promise<void> {
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    if (ready?.reason === reason) return;
    await this.#d.events.record(gateway, type, reason, message);
  }

  /**
   * Deleted here rather than left to the garbage collector, which a cluster may not run (envtest,
   * vcluster). Not the certificate Secrets nor the ServiceAccount: the operator may not delete
   * Secrets or accounts, so those go with the gateway through their owner references alone.
   */
  async #deleteObjects(gateway: DatabaseGatewayObject): Promise<void> {
    const { namespace = '', name, uid = '' } = gateway.metadata;
    const paths = [
      resourcePath('apps/v1', 'deployments', namespace, gatewayObjectName(name)),
      resourcePath('v1', 'services', namespace, gatewayObjectName(name)),
      resourcePath('v1', 'configmaps', namespace, gatewayBundleName(name)),
      resourcePath('v1', 'configmaps', namespace, gatewayCaConfigMapName(name)),
    ];
    if (gateway.spec.tls?.mode === 'CertManager')
      paths.push(resourcePath('cert-manager.io/v1', 'certificates', namespace, gatewayTlsSecretName(name)));
    for (const path of paths) await deleteOwned(this.#d.api, path, uid);
  }
}

/** The first document of a compiled config: the proxy settings, which the proxy reads only at start. */
function proxySettingsOf(bundle: CompiledBundle): string {
  return String(parseAllDocuments(bundle.data[BUNDLE_CONFIG_KEY]!)[0]);
}
