import { API_VERSION } from '../../../crds/common.ts';
import { resourcePath } from '../runtime/kube-api.ts';

/** The plural (REST) names of our kinds. */
export const PLURALS = {
  DatabaseAccess: 'databaseaccesses',
  DatabaseGateway: 'databasegateways',
  Guardrail: 'guardrails',
  MaskingPolicy: 'maskingpolicies',
} as const;

export type GatehouseKind = keyof typeof PLURALS;

export function gatehousePath(kind: GatehouseKind, namespace?: string, name?: string): string {
  return resourcePath(API_VERSION, PLURALS[kind], namespace, name);
}
