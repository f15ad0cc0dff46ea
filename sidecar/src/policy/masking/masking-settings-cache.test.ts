import { describe, expect, it } from 'vitest';
import { policyDocument } from '../../../../test/support/policy-documents.ts';
import type { Identity } from '../../identity/identity.ts';
import { loadPolicyDocuments } from '../load-policy.ts';
import { MaskingSettingsCache } from './masking-settings-cache.ts';

const ANN: Identity = { subject: 'local:ann', groups: [], method: 'local' };
const EXPIRES = Date.parse('2026-06-01T00:00:00Z');

function policyWith(expires: number) {
  return loadPolicyDocuments(
    [
      policyDocument('MaskingPolicy', 'pii', {
        exemptions: [
          { subject: { kind: 'User', name: 'local:ann' }, expires: new Date(expires).toISOString() },
        ],
      }),
      policyDocument('DatabaseAccess', 'app', {
        subjects: [{ kind: 'User', name: 'local:ann' }],
        allow: ['read'],
        maskingPolicies: ['pii'],
      }),
    ],
    'test',
  );
}

describe('MaskingSettingsCache', () => {
  it('reuses what it derived until the exemption expires, then masks from that instant on', () => {
    const policy = policyWith(EXPIRES);
    let derived = 0;
    const cache = new MaskingSettingsCache(ANN, 'app', (settings) => ({ n: ++derived, settings }));
    expect(cache.get(policy, EXPIRES - 60_000)).toBe(undefined);
    expect(cache.get(policy, EXPIRES - 1)).toBe(undefined);
    const masked = cache.get(policy, EXPIRES);
    expect(masked?.settings.policies).toEqual(['pii']);
    expect(cache.get(policy, EXPIRES + 3_600_000)).toBe(masked);
    expect(derived).toBe(1);
  });

  it('works the settings out again for a new policy (a reload), and gives nothing without one', () => {
    const cache = new MaskingSettingsCache(ANN, 'app', (settings) => settings);
    expect(cache.get(policyWith(EXPIRES), EXPIRES + 1)?.policies).toEqual(['pii']);
    expect(cache.get(policyWith(EXPIRES + 10_000), EXPIRES + 1)).toBe(undefined);
    expect(cache.get(undefined, EXPIRES + 1)).toBe(undefined);
  });
});
