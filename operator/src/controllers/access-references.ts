import type { V1Secret } from '@kubernetes/client-node';
import type { DatabaseAccessSpecType } from '../../../crds/database-access.ts';
import type { GuardrailSpecType } from '../../../crds/guardrail.ts';
import type { MaskingPolicySpecType } from '../../../crds/masking-policy.ts';
import type { ObjectCache } from '../runtime/informer.ts';
import { type KubeClient, type KubeObject, resourcePath } from '../runtime/kube-api.ts';
import { UPSTREAM_CA_FILE } from '../sidecar-layout.ts';

export interface GuardrailObject extends KubeObject {
  spec: GuardrailSpecType;
}
export interface MaskingPolicyObject extends KubeObject {
  spec: MaskingPolicySpecType;
}

export type ResolvedReferences = {
  guardrails: GuardrailObject[];
  maskingPolicies: MaskingPolicyObject[];
  /** One sentence per missing reference, e.g. `Secret "db-creds" not found`. */
  missing: string[];
  /** A Secret is missing: Secrets are not watched, so the caller looks again later. */
  secretProblem: boolean;
};

/**
 * What a DatabaseAccess names, looked up in its namespace: the credentials and upstream CA Secrets
 * (that they and their keys exist; their values are never read) and every Guardrail and MaskingPolicy,
 * in the order named. Shared by the access's bundle and every gateway in front of it.
 */
export async function resolveAccessReferences(
  api: KubeClient,
  caches: {
    guardrails: ObjectCache<GuardrailObject>;
    maskingPolicies: ObjectCache<MaskingPolicyObject>;
  },
  namespace: string,
  spec: DatabaseAccessSpecType,
): Promise<ResolvedReferences> {
  const missing: string[] = [];
  const needKeys = async (name: string, keys: string[]) => {
    const secret = await api.getOptional<V1Secret>(resourcePath('v1', 'secrets', namespace, name));
    if (!secret) return missing.push(`Secret "${name}" not found`);
    for (const key of keys)
      if (secret.data?.[key] === undefined && secret.stringData?.[key] === undefined)
        missing.push(`Secret "${name}" has no key "${key}"`);
  };
  const credentials = spec.upstream?.credentialsSecretRef;
  if (credentials)
    await needKeys(credentials.name, [
      credentials.userKey ?? 'username',
      credentials.passwordKey ?? 'password',
    ]);
  const ca = spec.upstream?.tls?.caSecretRef;
  if (ca) await needKeys(ca.name, [ca.key ?? UPSTREAM_CA_FILE]);
  const secretProblem = missing.length > 0;

  const guardrails: GuardrailObject[] = [];
  for (const ref of spec.guardrails ?? []) {
    const found = caches.guardrails.get(namespace, ref);
    if (found) guardrails.push(found);
    else missing.push(`Guardrail "${ref}" not found`);
  }
  const maskingPolicies: MaskingPolicyObject[] = [];
  for (const ref of spec.maskingPolicies ?? []) {
    const found = caches.maskingPolicies.get(namespace, ref);
    if (found) maskingPolicies.push(found);
    else missing.push(`MaskingPolicy "${ref}" not found`);
  }
  return { guardrails, maskingPolicies, missing, secretProblem };
}
