import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { API_VERSION } from '../../../crds/common.ts';
import type { DatabaseAccessSpecType } from '../../../crds/database-access.ts';
import type { DatabaseAccessStatusType } from '../../../crds/status.ts';
import {
  type BundleCollector,
  BundleSpecError,
  type CompiledBundle,
  compileBundle,
} from '../compile/compile-bundle.ts';
import type { ReconcileResult, Reconciler } from '../runtime/controller-runner.ts';
import type { EventRecorder } from '../runtime/event-recorder.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { isConflict, type KubeClient, type KubeObject, resourcePath, splitKey } from '../runtime/kube-api.ts';
import type { ServiceAccountIssuer } from '../runtime/service-account-issuer.ts';
import {
  ANNOTATION_RESTARTED_FOR,
  bundleConfigMapName,
  FINALIZER,
  LABEL_BUNDLE_OF,
  LABEL_MANAGED_BY,
  MANAGED_BY,
} from '../sidecar-layout.ts';
import { injectionPlan } from '../workload/inject-pod.ts';
import { matchesAccess } from '../workload/matches-access.ts';
import { selectAccess } from '../workload/select-access.ts';
import type { ServerVersion } from '../workload/server-version.ts';
import {
  type GuardrailObject,
  type MaskingPolicyObject,
  resolveAccessReferences,
} from './access-references.ts';
import { gatehousePath } from './api-paths.ts';
import { checkBundle, withAuthor } from './bundle-check.ts';
import { type Condition, type DesiredCondition, mergeConditions, standardConditions } from './conditions.ts';
import { convergeWithStatus } from './converge-step.ts';
import { finalizerStep } from './finalizer.ts';
import { ensureNamespaceKeys } from './namespace-keys.ts';
import { writeStatus } from './status-writer.ts';
import { workloadStatuses } from './workload-status.ts';

export type DatabaseAccessStatus = DatabaseAccessStatusType;

export interface DatabaseAccessObject extends KubeObject {
  spec: DatabaseAccessSpecType;
  status?: DatabaseAccessStatus;
}
export type { GuardrailObject, MaskingPolicyObject };

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

interface WorkloadObject extends KubeObject {
  spec?: {
    template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
  };
}

export interface DatabaseAccessControllerDeps {
  readonly api: KubeClient;
  readonly accesses: ObjectCache<DatabaseAccessObject>;
  readonly guardrails: ObjectCache<GuardrailObject>;
  readonly maskingPolicies: ObjectCache<MaskingPolicyObject>;
  readonly pods: ObjectCache<V1Pod & KubeObject>;
  readonly issuer: ServiceAccountIssuer;
  readonly events: EventRecorder;
  readonly sidecarImage: string;
  readonly serverVersion: ServerVersion;
  /** The operator's approvals endpoint for the bundles, when it serves one (undefined: not yet known). */
  readonly approvalsEndpoint?: () => Promise<{ url: string; ca: string } | undefined>;
  /** The audit collector the chart installed, for every bundle's `audit.ship`. */
  readonly collector?: Omit<BundleCollector, 'ca'>;
  /** The CA that verifies the collector, read at each reconcile; undefined while there is none yet. */
  readonly collectorCa?: () => Promise<string | undefined>;
}

/** Kinds whose pod template a rollout may stamp; the others (ReplicaSet, Job...) are owned by something else. */
const ROLLABLE = [
  { kind: 'Deployment', plural: 'deployments' },
  { kind: 'StatefulSet', plural: 'statefulsets' },
  { kind: 'DaemonSet', plural: 'daemonsets' },
] as const;

/** Reported when the chart installs a collector: whether the bundles let the sidecars ship to it. */
export const SHIPPING_CONDITION = 'AuditShipping';

/** Secrets are not watched (the operator keeps no copy of credentials), so a missing one is looked for again. */
const MISSING_SECRET_RECHECK_MS = 30_000;
/** Pods come and go without touching the access; the pod informer requeues, this is a safety net. */
const RESYNC_MS = 10 * 60_000;

/**
 * DatabaseAccess → its compiled policy bundle (a ConfigMap it owns), its workloads rolled when a
 * change needs new pods, and a status that says which pods carry the current sidecar. Level-based:
 * every pass reads the world and makes it so, whatever event caused it.
 */
export class DatabaseAccessController implements Reconciler {
  readonly name = 'databaseaccess';
  readonly #d: DatabaseAccessControllerDeps;

  constructor(deps: DatabaseAccessControllerDeps) {
    this.#d = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const access = this.#d.accesses.get(namespace, name);
    if (!access) return { outcome: 'gone' };
    const path = gatehousePath('DatabaseAccess', namespace, name);
    const meta = access.metadata;

    const ending = await finalizerStep(this.#d.api, path, meta, FINALIZER, () => this.#deleteBundle(access));
    if (ending) return ending;
    return convergeWithStatus<DatabaseAccessStatus>({
      api: this.#d.api,
      path,
      generation: meta.generation,
      current: access.status,
      conditions: (desired) => this.#conditions(access, desired),
      report: (message, status) => this.#report(access, 'Warning', 'ReconcileError', message, status),
      converge: (status) => this.#converge(access, path, status),
    });
  }

  async #converge(
    access: DatabaseAccessObject,
    path: string,
    status: DatabaseAccessStatus,
  ): Promise<ReconcileResult> {
    const { namespace = '', name, generation } = access.metadata;
    const stalled = async (
      reason: string,
      message: string,
      requeueAfterMs?: number,
    ): Promise<ReconcileResult> => {
      const next: DatabaseAccessStatus = {
        ...status,
        observedGeneration: generation,
        conditions: this.#conditions(access, standardConditions({ kind: 'stalled', reason, message })),
      };
      await this.#report(access, 'Warning', reason, message, status);
      await writeStatus(this.#d.api, path, access.status, next);
      return { outcome: reason, ...(requeueAfterMs !== undefined && { requeueAfterMs }) };
    };

    const { guardrails, maskingPolicies, missing, secretProblem } = await resolveAccessReferences(
      this.#d.api,
      this.#d,
      namespace,
      access.spec,
    );
    if (missing.length > 0)
      return stalled(
        'ReferenceNotFound',
        missing.join('; '),
        secretProblem ? MISSING_SECRET_RECHECK_MS : undefined,
      );

    const keys = await this.#d.issuer.get();
    const approvals = await this.#d.approvalsEndpoint?.();
    const collectorCa = this.#d.collector && (await this.#d.collectorCa?.());
    let bundle: CompiledBundle;
    try {
      bundle = compileBundle({
        access: { metadata: withAuthor(access, namespace), spec: access.spec },
        guardrails: guardrails.map((g) => ({ metadata: withAuthor(g, namespace), spec: g.spec })),
        maskingPolicies: maskingPolicies.map((m) => ({ metadata: withAuthor(m, namespace), spec: m.spec })),
        issuer: keys.issuer,
        jwks: keys.jwks,
        ...(approvals && { approvals }),
        ...(this.#d.collector && { collector: { ...this.#d.collector, ca: collectorCa } }),
      });
      // What the sidecar will do with it: a bundle it would refuse must never reach a running pod.
      checkBundle(bundle, `bundle of ${namespace}/${name}`);
    } catch (error) {
      if (error instanceof BundleSpecError) return stalled('InvalidSpec', error.message);
      if (error instanceof Error && error.name === 'PolicyError')
        return stalled('InvalidPolicy', error.message);
      throw error;
    }

    // Before the bundle: pods wait for the bundle's ConfigMap, so they never start without the key.
    await ensureNamespaceKeys(this.#d.api, namespace);
    const configMap = bundleConfigMapName(name);
    const bundleWritten = await this.#ensureBundle(access, configMap, bundle);
    if (bundleWritten === 'conflict')
      return stalled(
        'BundleConflict',
        `ConfigMap "${configMap}" exists and is not owned by this DatabaseAccess; rename or delete it`,
      );

    const plan = injectionPlan(
      { metadata: { name, namespace }, spec: access.spec },
      this.#d.sidecarImage,
      this.#d.serverVersion,
    );
    const rolled = await this.#rollWorkloads(access, rolloutHash(plan.hash, access.spec));
    const self = { metadata: { name, namespace }, spec: access.spec };
    const siblings = this.#d.accesses.list(namespace);
    const selected = this.#d.pods.list(namespace).filter((pod) => matchesAccess(pod, self));
    // One sidecar per pod: where several accesses select a pod, the webhook's choice carries it and
    // the others report a conflict instead of counting the pod as missing their sidecar.
    const pods = selected.filter((pod) => selectAccess(pod, siblings).chosen?.metadata.name === name);
    const conflicts = siblings
      .filter((other) => other.metadata.name !== name && selected.some((pod) => matchesAccess(pod, other)))
      .map((other) => `${namespace}/${other.metadata.name}`)
      .sort();
    const workloads = workloadStatuses(pods, plan.hash, rolled.selected);
    const podCount = workloads.reduce((n, w) => n + w.pods, 0);
    const current = workloads.reduce((n, w) => n + w.current, 0);
    const message = `bundle ${configMap} compiled; ${current} of ${podCount} selected pods carry the current sidecar`;
    const shipping = this.#shippingCondition(collectorCa);
    const next: DatabaseAccessStatus = {
      observedGeneration: generation,
      conditions: this.#conditions(access, [
        ...standardConditions({ kind: 'ready', reason: 'BundleCompiled', message }),
        ...(shipping ? [shipping] : []),
      ]),
      bundle: { configMap, hash: bundle.hash },
      workloads,
      conflicts,
    };
    if (bundleWritten === 'written')
      await this.#d.events.record(
        access,
        'Normal',
        'BundleCompiled',
        `compiled ${configMap} (${bundle.hash.slice(0, 12)})`,
      );
    for (const workload of rolled.stamped)
      await this.#d.events.record(
        access,
        'Normal',
        'RolloutStarted',
        `stamped ${workload} to roll its pods onto the new sidecar`,
      );
    const shippedBefore = access.status?.conditions?.find((c) => c.type === SHIPPING_CONDITION);
    if (shipping?.status === 'False' && shippedBefore?.reason !== shipping.reason)
      await this.#d.events.record(access, 'Warning', shipping.reason, shipping.message);
    await writeStatus(this.#d.api, path, access.status, next);
    return {
      outcome: 'Ready',
      // The collector's Secret is looked at by a timer too; this is the safety net.
      requeueAfterMs: shipping?.status === 'False' ? MISSING_SECRET_RECHECK_MS : RESYNC_MS,
    };
  }

  /**
   * Whether the sidecars can ship: only once the bundle carries the CA that verifies the collector.
   * Until then they ship nothing (never in clear) and keep every record in their audit file.
   */
  #shippingCondition(ca: string | undefined): DesiredCondition | undefined {
    const collector = this.#d.collector;
    if (!collector) return undefined;
    return ca === undefined
      ? {
          type: SHIPPING_CONDITION,
          status: 'False',
          reason: 'CollectorCANotReady',
          message: `the collector at ${collector.url} has no certificate authority yet: the sidecars ship nothing until the bundle carries it, and keep their records in their audit file`,
        }
      : {
          type: SHIPPING_CONDITION,
          status: 'True',
          reason: 'CollectorTrusted',
          message: `the sidecars ship to ${collector.url} over https, verifying it with the CA in the bundle`,
        };
  }

  #conditions(access: DatabaseAccessObject, desired: DesiredCondition[]): Condition[] {
    return mergeConditions(access.status?.conditions, desired, access.metadata.generation, new Date());
  }

  /** An event when the Ready reason changes, so a stuck resource does not fill the event log. */
  async #report(
    access: DatabaseAccessObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    status: DatabaseAccessStatus,
  ): Promise<void> {
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    if (ready?.reason === reason && ready.message === message) return;
    await this.#d.events.record(access, type, reason, message);
  }

  /** Returns 'written' when the ConfigMap was created or changed, 'unchanged', or 'conflict' when it is not ours. */
  async #ensureBundle(
    access: DatabaseAccessObject,
    configMap: string,
    bundle: CompiledBundle,
  ): Promise<'written' | 'unchanged' | 'conflict'> {
    const { namespace = '', name, uid = '' } = access.metadata;
    const path = resourcePath('v1', 'configmaps', namespace, configMap);
    const desired = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: configMap,
        namespace,
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_BUNDLE_OF]: name },
        annotations: { 'gatehouse.dev/bundle-hash': bundle.hash },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: 'DatabaseAccess',
            name,
            uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      data: bundle.data,
    };
    const existing = await this.#d.api.getOptional<ConfigMapObject>(path);
    if (!existing) {
      await this.#d.api.create(resourcePath('v1', 'configmaps', namespace), desired);
      return 'written';
    }
    const owned = existing.metadata.ownerReferences?.some(
      (o) => o.uid === uid && o.kind === 'DatabaseAccess',
    );
    if (!owned) return 'conflict';
    if (existing.metadata.annotations?.['gatehouse.dev/bundle-hash'] === bundle.hash) return 'unchanged';
    await this.#d.api.replace(path, {
      ...desired,
      metadata: { ...desired.metadata, resourceVersion: existing.metadata.resourceVersion },
    });
    return 'written';
  }

  async #deleteBundle(access: DatabaseAccessObject): Promise<void> {
    const { namespace = '', name, uid } = access.metadata;
    const path = resourcePath('v1', 'configmaps', namespace, bundleConfigMapName(name));
    const existing = await this.#d.api.getOptional<ConfigMapObject>(path);
    // Deleted here rather than left to the garbage collector, which a cluster may not run (envtest, vcluster).
    if (existing?.metadata.ownerReferences?.some((o) => o.uid === uid)) await this.#d.api.delete(path);
  }

  /**
   * The Deployments, StatefulSets and DaemonSets the access selects; with rolloutStrategy Workload,
   * those whose pod template does not carry `hash` are stamped with it, which rolls their pods.
   */
  async #rollWorkloads(
    access: DatabaseAccessObject,
    hash: string,
  ): Promise<{ selected: { kind: string; name: string }[]; stamped: string[] }> {
    const selector = access.spec.workloadSelector;
    const namespace = access.metadata.namespace ?? '';
    const selected: { kind: string; name: string }[] = [];
    const stamped: string[] = [];
    if (!selector) return { selected, stamped };
    const kind = selector.kind ?? (selector.name !== undefined ? 'Deployment' : undefined);
    for (const rollable of ROLLABLE) {
      if (kind !== undefined && kind !== rollable.kind) continue;
      const collection = resourcePath('apps/v1', rollable.plural, namespace);
      const candidates =
        selector.name !== undefined
          ? [
              await this.#d.api.getOptional<WorkloadObject>(
                `${collection}/${encodeURIComponent(selector.name)}`,
              ),
            ]
          : (await this.#d.api.list<WorkloadObject>(collection)).items;
      for (const workload of candidates) {
        if (!workload) continue;
        const template = workload.spec?.template?.metadata;
        const labels = template?.labels ?? {};
        if (!Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v)) continue;
        selected.push({ kind: rollable.kind, name: workload.metadata.name });
        if (access.spec.sidecar?.rolloutStrategy === 'None') continue;
        if (template?.annotations?.[ANNOTATION_RESTARTED_FOR] === hash) continue;
        try {
          await this.#d.api.patch(`${collection}/${encodeURIComponent(workload.metadata.name)}`, {
            metadata: { resourceVersion: workload.metadata.resourceVersion },
            spec: { template: { metadata: { annotations: { [ANNOTATION_RESTARTED_FOR]: hash } } } },
          });
          stamped.push(`${rollable.kind} "${workload.metadata.name}"`);
        } catch (error) {
          if (!isConflict(error)) throw error;
          throw new Error(`${rollable.kind} "${workload.metadata.name}" changed while stamping it; retrying`);
        }
      }
    }
    return { selected, stamped };
  }
}

/**
 * What needs new pods: the injected container and volumes (image, port, Secret), the upstream the
 * sidecar connects to at start, and its MCP endpoint (served from the start too).
 */
export function rolloutHash(planHash: string, spec: DatabaseAccessSpecType): string {
  const hash = createHash('sha256')
    .update(planHash)
    .update(JSON.stringify(spec.upstream ?? {}));
  // Only when set: an access without it keeps the hash it had, so an upgrade rolls nothing.
  if (spec.sidecar?.mcp !== undefined) hash.update(JSON.stringify({ mcp: spec.sidecar.mcp }));
  return hash.digest('hex').slice(0, 16);
}
