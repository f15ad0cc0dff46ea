import { createHash } from 'node:crypto';
import type { ProxyConfig } from './config/load.ts';
import type { Policy } from './policy/load-policy.ts';

/**
 * The sentence a person reads when the proxy is ready: where it listens, what it fronts (never the
 * password) and which policy is in force, with a digest to tell one version of the policy from another.
 */
export function readyLine(
  config: Pick<ProxyConfig, 'upstream' | 'policyDocuments'>,
  policy: Policy | undefined,
  listen: { host: string; port: number },
  admin?: { host: string; port: number },
): string {
  const u = config.upstream;
  const parts = [
    `gatehouse proxy listening on ${hostPort(listen)}`,
    `fronting ${u.protocol === 'mysql' ? 'MySQL' : 'PostgreSQL'} ${hostPort(u)}/${u.database} as ${u.user}`,
    `policy ${describePolicy(config.policyDocuments, policy)}`,
  ];
  if (admin) parts.push(`metrics on http://${hostPort(admin)}/metrics`);
  return parts.join(', ');
}

export function describePolicy(documents: readonly unknown[], policy: Policy | undefined): string {
  if (!policy) return 'none (statements are audited, not checked)';
  const counts = [
    count(policy.grants.length, 'DatabaseAccess', 'DatabaseAccesses'),
    count(policy.guardrails.size, 'Guardrail', 'Guardrails'),
    count(policy.maskingPolicies.size, 'MaskingPolicy', 'MaskingPolicies'),
  ];
  return `${policyDigest(documents)} (${counts.join(', ')})`;
}

/** sha256 of the policy documents as read, shortened: equal digests, equal policies. */
export function policyDigest(documents: readonly unknown[]): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(documents)).digest('hex').slice(0, 12)}`;
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function hostPort({ host, port }: { host: string; port: number }): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
