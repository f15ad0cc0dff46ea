import { describe, expect, it } from 'vitest';
import type { Identity } from '../../identity/identity.ts';
import { loadPolicyDocuments } from '../load-policy.ts';
import { maskingFor, nextExemptionExpiry } from './masking-for.ts';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const identity = (subject: string, groups: string[] = []): Identity => ({ subject, groups, method: 'local' });
const doc = (kind: string, name: string, spec: unknown) => ({
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind,
  metadata: { name },
  spec,
});

const policy = loadPolicyDocuments(
  [
    doc('MaskingPolicy', 'pii', {
      rules: [{ columns: ['users.email'], method: 'hash' }],
      exemptions: [
        { subject: { kind: 'User', name: 'dpo' }, expires: '2026-07-01T00:00:00Z' },
        { subject: { kind: 'Group', name: 'contractors' }, expires: '2026-05-01T00:00:00Z' },
      ],
    }),
    doc('MaskingPolicy', 'cards', {
      autoDetect: false,
      allowPredicatesOnMasked: true,
      rules: [{ classifiers: ['card', 'street-address'], method: 'partial' }],
    }),
    doc('DatabaseAccess', 'analysts', {
      subjects: [
        { kind: 'Group', name: 'analysts' },
        { kind: 'User', name: 'dpo' },
        { kind: 'Group', name: 'contractors' },
      ],
      allow: ['read'],
      maskingPolicies: ['pii', 'cards'],
    }),
    doc('DatabaseAccess', 'billing', {
      subjects: [{ kind: 'User', name: 'dpo' }],
      allow: ['read'],
      maskingPolicies: ['cards'],
      upstream: { host: 'db', database: 'billing' },
    }),
    doc('DatabaseAccess', 'ops', { subjects: [{ kind: 'User', name: 'ops' }], allow: ['read', 'ddl'] }),
  ],
  'test.yaml',
);

describe('maskingFor', () => {
  it('merges the MaskingPolicies of every grant: rules in order, autoDetect if any, predicates only if all allow', () => {
    const settings = maskingFor(identity('ann', ['analysts']), policy, 'app', NOW);
    expect(settings).toMatchObject({
      autoDetect: true,
      allowPredicatesOnMasked: false,
      policies: ['pii', 'cards'],
    });
    expect(settings?.rules.map((r) => [r.source, r.method, r.kinds])).toEqual([
      ['pii/rules[0]', 'hash', []],
      ['cards/rules[0]', 'partial', ['card', 'street-address']],
    ]);
  });

  it('gives clear values to grants without a MaskingPolicy and to subjects exempt from every policy in force', () => {
    expect(maskingFor(identity('ops'), policy, 'app', NOW)).toBeUndefined();
    // dpo is exempt from pii; cards still applies to it.
    expect(maskingFor(identity('dpo'), policy, 'app', NOW)?.policies).toEqual(['cards']);
  });

  it('ends an exemption at its expiry, and says when the next one ends', () => {
    expect(maskingFor(identity('cy', ['contractors']), policy, 'app', NOW)?.policies).toEqual([
      'pii',
      'cards',
    ]);
    expect(nextExemptionExpiry(identity('dpo'), policy, 'app', NOW)).toBe(Date.parse('2026-07-01T00:00:00Z'));
    expect(maskingFor(identity('dpo'), policy, 'app', Date.parse('2026-07-02T00:00:00Z'))?.policies).toEqual([
      'pii',
      'cards',
    ]);
  });

  it('applies a grant only on the database it names', () => {
    expect(maskingFor(identity('dpo'), policy, 'billing', NOW)?.policies).toEqual(['cards']);
  });
});
