import { API_VERSION } from '../../crds/common.ts';

export type PolicyKind = 'DatabaseAccess' | 'Guardrail' | 'MaskingPolicy';

/** A policy document of the gatehouse.dev API, as the tests put them beside the proxy settings. */
export function policyDocument(kind: PolicyKind, name: string, spec: Record<string, unknown>) {
  return { apiVersion: API_VERSION, kind, metadata: { name }, spec };
}

/** A local user (identity mode `local`) as a DatabaseAccess subject. */
export function localUser(name: string) {
  return { kind: 'User', name: `local:${name}` };
}
