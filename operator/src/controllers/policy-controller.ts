import { API_VERSION } from '../../../crds/common.ts';
import { loadPolicyDocuments } from '../../../sidecar/src/policy/load-policy.ts';
import type { ReconcileResult, Reconciler } from '../runtime/controller-runner.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { type KubeClient, type KubeObject, splitKey } from '../runtime/kube-api.ts';
import { type GatehouseKind, gatehousePath } from './api-paths.ts';
import { type Condition, mergeConditions, standardConditions } from './conditions.ts';
import type { DatabaseAccessObject } from './database-access-controller.ts';
import { writeStatus } from './status-writer.ts';

interface PolicyObject extends KubeObject {
  spec: unknown;
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

/**
 * Status for a Guardrail or MaskingPolicy: Ready when the sidecar's own loader accepts it (the CRD
 * schema checks shape; the loader also checks meaning, such as a rule that can never match), and a
 * message naming the DatabaseAccesses that use it. Recompiling those accesses' bundles is the
 * DatabaseAccess controller's work; the operator queues them on every change of a policy.
 */
export class PolicyController implements Reconciler {
  readonly name: string;
  readonly #kind: 'Guardrail' | 'MaskingPolicy';
  readonly #api: KubeClient;
  readonly #objects: Pick<ObjectCache<PolicyObject>, 'get'>;
  readonly #accesses: Pick<ObjectCache<DatabaseAccessObject>, 'list'>;

  constructor(
    kind: 'Guardrail' | 'MaskingPolicy',
    api: KubeClient,
    objects: Pick<ObjectCache<PolicyObject>, 'get'>,
    accesses: Pick<ObjectCache<DatabaseAccessObject>, 'list'>,
  ) {
    this.#kind = kind;
    this.name = kind.toLowerCase();
    this.#api = api;
    this.#objects = objects;
    this.#accesses = accesses;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const object = this.#objects.get(namespace, name);
    if (!object || object.metadata.deletionTimestamp) return { outcome: 'gone' };
    const users = usersOf(this.#kind, this.#accesses.list(namespace), name);
    let outcome: Parameters<typeof standardConditions>[0];
    try {
      loadPolicyDocuments(
        [{ apiVersion: API_VERSION, kind: this.#kind, metadata: { name, namespace }, spec: object.spec }],
        `${this.#kind} ${namespace}/${name}`,
      );
      outcome = {
        kind: 'ready',
        reason: 'Accepted',
        message:
          users.length > 0 ? `used by DatabaseAccess ${users.join(', ')}` : 'not used by any DatabaseAccess',
      };
    } catch (error) {
      outcome = {
        kind: 'stalled',
        reason: 'InvalidPolicy',
        message: error instanceof Error ? error.message : String(error),
      };
    }
    const status = {
      observedGeneration: object.metadata.generation,
      conditions: mergeConditions(
        object.status?.conditions,
        standardConditions(outcome),
        object.metadata.generation,
        new Date(),
      ),
    };
    await writeStatus(
      this.#api,
      gatehousePath(this.#kind as GatehouseKind, namespace, name),
      object.status,
      status,
    );
    return { outcome: outcome.kind === 'ready' ? 'Ready' : outcome.reason };
  }
}

/** The DatabaseAccesses (names, sorted) in a namespace that name this policy. */
export function usersOf(
  kind: 'Guardrail' | 'MaskingPolicy',
  accesses: readonly DatabaseAccessObject[],
  name: string,
): string[] {
  return accesses
    .filter((a) => (kind === 'Guardrail' ? a.spec.guardrails : a.spec.maskingPolicies)?.includes(name))
    .map((a) => a.metadata.name)
    .sort();
}
