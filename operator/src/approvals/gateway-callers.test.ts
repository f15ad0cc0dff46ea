import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../crds/common.ts';
import { gatehousePath } from '../controllers/api-paths.ts';
import type { DatabaseAccessObject } from '../controllers/database-access-controller.ts';
import type { DatabaseGatewayObject } from '../controllers/database-gateway-controller.ts';
import { gatewayOwner } from '../gateway/gateway-objects.ts';
import { FakeKubeApi } from '../runtime/fake-kube-api.ts';
import { type KubeObject, resourcePath } from '../runtime/kube-api.ts';
import {
  type CallerScope,
  databaseRefusal,
  GatewayCallers,
  gatewayRequestRefusal,
} from './gateway-callers.ts';
import type { SidecarCaller } from './sidecar-auth.ts';

/**
 * Which callers of the approvals endpoint are a gateway's pods, and what their tokens are good for.
 * test/e2e/gateway.test.ts asks the real endpoint with tokens the real API server issued.
 */

const NS = 'people';
const ACCOUNT = 'gatehouse-gw-analysts';

async function world(options: { database?: string } = { database: 'orders' }) {
  const api = new FakeKubeApi();
  await api.create('/api/v1/namespaces', { metadata: { name: NS } });
  const gateways = api.informer<DatabaseGatewayObject>(gatehousePath('DatabaseGateway'));
  const accesses = api.informer<DatabaseAccessObject>(gatehousePath('DatabaseAccess'));
  await api.create(gatehousePath('DatabaseAccess', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseAccess',
    metadata: { name: 'analysts' },
    spec: {
      subjects: [{ kind: 'Group', name: 'analysts' }],
      allow: ['read'],
      guardrails: ['approvals'],
      maskingPolicies: ['pii'],
      upstream: {
        host: 'db',
        ...(options.database !== undefined && { database: options.database }),
        credentialsSecretRef: { name: 'db-creds' },
      },
    },
  });
  const gateway = await api.create<DatabaseGatewayObject>(gatehousePath('DatabaseGateway', NS), {
    apiVersion: API_VERSION,
    kind: 'DatabaseGateway',
    metadata: { name: 'analysts' },
    spec: { access: 'analysts', oidc: { issuer: 'https://i', audience: 'a', jwksUrl: 'https://i/jwks' } },
  });
  const owner = gatewayOwner({
    metadata: { name: 'analysts', namespace: NS, uid: gateway.metadata.uid! },
    spec: gateway.spec,
  });
  const account = await api.create<KubeObject>(resourcePath('v1', 'serviceaccounts', NS), {
    metadata: { name: ACCOUNT, ownerReferences: [owner] },
  });
  const callers = new GatewayCallers({ api, gateways, accesses });
  const caller = (over: Partial<SidecarCaller> = {}): SidecarCaller => ({
    username: `system:serviceaccount:${NS}:${ACCOUNT}`,
    namespace: NS,
    serviceAccount: ACCOUNT,
    uid: account.metadata.uid!,
    ...over,
  });
  return { api, callers, caller };
}

function asGateway(scope: CallerScope) {
  if (scope.kind !== 'gateway') throw new Error(`expected a gateway, got ${JSON.stringify(scope)}`);
  return scope;
}

const rule = (guardrail: string, extra: Record<string, unknown> = {}) => ({
  guardrail,
  rule: 'drops',
  namespace: NS,
  approvers: [{ kind: 'User' as const, name: 'lead' }],
  allowSelfApproval: false,
  waitSeconds: 30,
  ttlSeconds: 60,
  ...extra,
});

describe('GatewayCallers', () => {
  it("takes a sidecar's account for a sidecar, and the gateway's own account for its gateway", async () => {
    const { callers, caller } = await world();
    expect(await callers.scope(caller({ serviceAccount: 'orders-app' }))).toEqual({ kind: 'sidecar' });
    expect(await callers.scope(caller())).toEqual({
      kind: 'gateway',
      gateway: 'analysts',
      access: 'analysts',
      database: 'orders',
      guardrails: new Set(['approvals']),
      maskingPolicies: new Set(['pii']),
    });
  });

  it("holds a gateway's token to its access: its database, the Guardrails and MaskingPolicies it names", async () => {
    const { callers, caller } = await world();
    const scope = asGateway(await callers.scope(caller()));
    expect(
      gatewayRequestRefusal(scope, { database: 'orders', rules: [rule('approvals')] }, NS),
    ).toBeUndefined();
    expect(
      gatewayRequestRefusal(
        scope,
        { database: 'orders', rules: [rule('pii', { rule: 'accessRequests' })] },
        NS,
      ),
    ).toBeUndefined();
    const refusals = [
      gatewayRequestRefusal(scope, { database: 'billing', rules: [rule('approvals')] }, NS),
      gatewayRequestRefusal(scope, { database: 'Orders', rules: [rule('approvals')] }, NS),
      gatewayRequestRefusal(scope, { database: 'orders', rules: [rule('approvals'), rule('others')] }, NS),
      gatewayRequestRefusal(
        scope,
        { database: 'orders', rules: [rule('approvals', { namespace: 'shop' })] },
        NS,
      ),
      // A MaskingPolicy's name as a Guardrail's, and a Guardrail's as an access request's.
      gatewayRequestRefusal(scope, { database: 'orders', rules: [rule('pii')] }, NS),
      gatewayRequestRefusal(
        scope,
        { database: 'orders', rules: [rule('approvals', { rule: 'accessRequests' })] },
        NS,
      ),
      databaseRefusal(scope, 'billing'),
    ];
    for (const refusal of refusals) expect(refusal).toEqual(expect.any(String));
    expect(refusals[0]).toBe(
      'gateway "analysts" serves database "orders" (DatabaseAccess "analysts"), not "billing"',
    );
    expect(refusals[2]).toBe(
      `Guardrail ${NS}/others is not one DatabaseAccess "analysts" of gateway "analysts" names`,
    );
    expect(databaseRefusal(scope, 'orders')).toBeUndefined();
  });

  it("refuses, never takes for a sidecar, an account of a gateway's name that is not a live gateway's own", async () => {
    const refusedFor = async (scope: Promise<CallerScope>) => {
      const answer = await scope;
      return answer.kind === 'refused' ? answer.message : answer.kind;
    };
    const { api, callers, caller } = await world();
    // No such gateway.
    expect(await refusedFor(callers.scope(caller({ serviceAccount: 'gatehouse-gw-other' })))).toMatch(
      /has a DatabaseGateway's name, and no DatabaseGateway in its namespace owns it/,
    );
    // The account deleted and made again (another uid): the token is the old account's.
    expect(await refusedFor(callers.scope(caller({ uid: 'another-uid' })))).toMatch(/no DatabaseGateway/);
    // A token whose review named no uid.
    expect(await refusedFor(callers.scope(caller({ uid: undefined })))).toMatch(/no DatabaseGateway/);
    // An account of that name that no gateway owns.
    const { uid: _owned, ...stranger } = caller();
    const own = await api.create<KubeObject>(resourcePath('v1', 'serviceaccounts', NS), {
      metadata: { name: 'gatehouse-gw-stranger' },
    });
    expect(
      await refusedFor(
        callers.scope({ ...stranger, serviceAccount: 'gatehouse-gw-stranger', uid: own.metadata.uid! }),
      ),
    ).toMatch(/no DatabaseGateway/);
    // The gateway being deleted.
    await api.patch(gatehousePath('DatabaseGateway', NS, 'analysts'), { metadata: { finalizers: ['x'] } });
    await api.delete(gatehousePath('DatabaseGateway', NS, 'analysts'));
    expect(await refusedFor(callers.scope(caller()))).toMatch(/no DatabaseGateway/);
  });

  it('refuses a gateway whose DatabaseAccess names no database: what it asks for cannot be checked', async () => {
    const { callers, caller } = await world({});
    const scope = await callers.scope(caller());
    expect(scope).toEqual({
      kind: 'refused',
      message: `service account ${NS}/${ACCOUNT} has a DatabaseGateway's name, and its DatabaseAccess "analysts" names no spec.upstream.database: the operator cannot tell what its requests are for`,
    });
  });
});
