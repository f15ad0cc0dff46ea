import { describe, expect, it } from 'vitest';
import type { ProxyConfig } from './config/load.ts';
import { loadPolicyDocuments } from './policy/load-policy.ts';
import { policyDigest, readyLine } from './ready-line.ts';

const upstream = (protocol: 'postgres' | 'mysql', host: string): ProxyConfig['upstream'] => ({
  protocol,
  host,
  port: protocol === 'mysql' ? 3306 : 5432,
  database: 'shop',
  user: 'app',
  password: 'hunter2',
  tls: { mode: 'disable' },
  connectTimeoutMs: 10_000,
});

const guardrail = (name: string) => ({
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'Guardrail',
  metadata: { name },
  spec: { rules: [{ name: 'r', kinds: ['drop'], action: 'block' }] },
});

describe('readyLine', () => {
  it('names the listener, the database (never the password) and the policy', () => {
    const documents = [guardrail('a'), guardrail('b')];
    const line = readyLine(
      { upstream: upstream('postgres', 'db.internal'), policyDocuments: documents },
      loadPolicyDocuments(documents, 'test'),
      { host: '127.0.0.1', port: 6432 },
      { host: '0.0.0.0', port: 9090 },
    );
    expect(line).toBe(
      `gatehouse proxy listening on 127.0.0.1:6432, fronting PostgreSQL db.internal:5432/shop as app, policy ${policyDigest(documents)} (0 DatabaseAccesses, 2 Guardrails, 0 MaskingPolicies), metrics on http://0.0.0.0:9090/metrics`,
    );
    expect(line).not.toContain('hunter2');
  });

  it('says when no policy is in force, and brackets IPv6 addresses', () => {
    expect(
      readyLine({ upstream: upstream('mysql', '::1'), policyDocuments: [] }, undefined, {
        host: '::1',
        port: 3307,
      }),
    ).toBe(
      'gatehouse proxy listening on [::1]:3307, fronting MySQL [::1]:3306/shop as app, policy none (statements are audited, not checked)',
    );
  });

  it('gives different digests to different policies and equal ones to equal policies', () => {
    expect(policyDigest([guardrail('a')])).toBe(policyDigest([guardrail('a')]));
    expect(policyDigest([guardrail('a')])).not.toBe(policyDigest([guardrail('b')]));
    expect(policyDigest([guardrail('a')])).toMatch(/^sha256:[0-9a-f]{12}$/);
  });
});
