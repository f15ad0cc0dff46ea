import type { NewApprovalRequestValue } from '../../../sidecar/src/approvals/operator-protocol.ts';
import type { DatabaseAccessObject } from '../controllers/database-access-controller.ts';
import type { DatabaseGatewayObject } from '../controllers/database-gateway-controller.ts';
import { GATEWAY_ACCOUNT_PREFIX, gatewayServiceAccountName } from '../gateway/gateway-layout.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { type KubeClient, type KubeObject, resourcePath } from '../runtime/kube-api.ts';
import type { SidecarCaller } from './sidecar-auth.ts';

/** What a caller of the approvals endpoint may ask about. */
export type CallerScope =
  /** A sidecar: its namespace, its service account's requests (approval-requests.ts). */
  | { readonly kind: 'sidecar' }
  /** A DatabaseGateway's pod: that, and only its DatabaseAccess's database and policies. */
  | {
      readonly kind: 'gateway';
      readonly gateway: string;
      readonly access: string;
      readonly database: string;
      readonly guardrails: ReadonlySet<string>;
      readonly maskingPolicies: ReadonlySet<string>;
    }
  | { readonly kind: 'refused'; readonly message: string };

/** The account behind a token is looked at again this often (it is deleted and made again rarely). */
const CACHE_MS = 60_000;
const MAX_CACHED = 10_000;

/**
 * Tells a gateway's pods from sidecars among the callers of the approvals endpoint, failing closed.
 * A service account named with the gateways' prefix is a gateway's only when the account is the one
 * the operator made (the token's account uid, from the TokenReview, is that account's, which a
 * DatabaseGateway of its name in its namespace owns); any other account of that prefix is refused,
 * never taken for a sidecar. A gateway's token is good for its own DatabaseAccess: requests and
 * restores on its database, held by the Guardrails (or, for access requests, MaskingPolicies) the
 * access names, and nothing else, so a token taken from a gateway's pod opens no other access.
 */
export class GatewayCallers {
  readonly #api: KubeClient;
  readonly #gateways: ObjectCache<DatabaseGatewayObject>;
  readonly #accesses: ObjectCache<DatabaseAccessObject>;
  readonly #now: () => number;
  readonly #accounts = new Map<string, { owners: readonly string[]; until: number }>();

  constructor(options: {
    api: KubeClient;
    gateways: ObjectCache<DatabaseGatewayObject>;
    accesses: ObjectCache<DatabaseAccessObject>;
    now?: () => number;
  }) {
    this.#api = options.api;
    this.#gateways = options.gateways;
    this.#accesses = options.accesses;
    this.#now = options.now ?? Date.now;
  }

  async scope(caller: SidecarCaller): Promise<CallerScope> {
    if (!caller.serviceAccount.startsWith(GATEWAY_ACCOUNT_PREFIX)) return { kind: 'sidecar' };
    const refused = (why: string): CallerScope => ({
      kind: 'refused',
      message: `service account ${caller.namespace}/${caller.serviceAccount} has a DatabaseGateway's name, ${why}`,
    });
    const owners = caller.uid === undefined ? [] : await this.#ownersOf(caller);
    const gateway = this.#gateways
      .list(caller.namespace)
      .find(
        (g) =>
          gatewayServiceAccountName(g.metadata.name) === caller.serviceAccount &&
          g.metadata.uid !== undefined &&
          owners.includes(g.metadata.uid) &&
          g.metadata.deletionTimestamp === undefined,
      );
    if (!gateway) return refused('and no DatabaseGateway in its namespace owns it');
    const access = this.#accesses.get(caller.namespace, gateway.spec.access);
    if (!access) return refused(`and its DatabaseAccess "${gateway.spec.access}" does not exist`);
    const database = access.spec.upstream?.database;
    if (database === undefined)
      return refused(
        `and its DatabaseAccess "${gateway.spec.access}" names no spec.upstream.database: the operator cannot tell what its requests are for`,
      );
    return {
      kind: 'gateway',
      gateway: gateway.metadata.name,
      access: access.metadata.name,
      database,
      guardrails: new Set(access.spec.guardrails ?? []),
      maskingPolicies: new Set(access.spec.maskingPolicies ?? []),
    };
  }

  /** The uids owning the caller's account, when the account is the token's (same uid); else none. */
  async #ownersOf(caller: SidecarCaller): Promise<readonly string[]> {
    const key = `${caller.namespace}/${caller.serviceAccount}/${caller.uid}`;
    const now = this.#now();
    const cached = this.#accounts.get(key);
    if (cached && cached.until > now) return cached.owners;
    const account = await this.#api.getOptional<KubeObject>(
      resourcePath('v1', 'serviceaccounts', caller.namespace, caller.serviceAccount),
    );
    const owners =
      account && account.metadata.uid === caller.uid
        ? (account.metadata.ownerReferences ?? [])
            .filter((o) => o.kind === 'DatabaseGateway' && o.controller === true)
            .map((o) => o.uid)
        : [];
    if (this.#accounts.size >= MAX_CACHED) this.#accounts.clear();
    this.#accounts.set(key, { owners, until: now + CACHE_MS });
    return owners;
  }
}

/** Why a gateway may not file this request, or undefined when it may. */
export function gatewayRequestRefusal(
  scope: Extract<CallerScope, { kind: 'gateway' }>,
  request: Pick<NewApprovalRequestValue, 'database' | 'rules'>,
  namespace: string,
): string | undefined {
  const database = databaseRefusal(scope, request.database);
  if (database) return database;
  for (const rule of request.rules) {
    const named =
      rule.rule === 'accessRequests'
        ? scope.maskingPolicies.has(rule.guardrail)
        : scope.guardrails.has(rule.guardrail);
    if (!named || (rule.namespace !== undefined && rule.namespace !== namespace))
      return `${rule.rule === 'accessRequests' ? 'MaskingPolicy' : 'Guardrail'} ${rule.namespace ?? namespace}/${rule.guardrail} is not one DatabaseAccess "${scope.access}" of gateway "${scope.gateway}" names`;
  }
  return undefined;
}

/** Why a gateway may not ask about `database`, or undefined when it is its access's. */
export function databaseRefusal(
  scope: Extract<CallerScope, { kind: 'gateway' }>,
  database: string,
): string | undefined {
  return database === scope.database
    ? undefined
    : `gateway "${scope.gateway}" serves database "${scope.database}" (DatabaseAccess "${scope.access}"), not "${database}"`;
}
