import { describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../config/load.ts';
import { describePolicyChange, policyChange, reloadPolicy } from './policy-reload.ts';

const PROXY =
  'upstream:\n  url: postgres://app:app@127.0.0.1:5432/app\nidentity:\n  mode: local\n  local:\n    users: [{name: demo, password: demo}]\n';
const GUARDRAIL =
  'apiVersion: gatehouse.dev/v1alpha1\nkind: Guardrail\nmetadata: {name: defaults}\nspec:\n  rules: [{name: d, kinds: [drop], action: block}]\n';
const MASKING =
  'apiVersion: gatehouse.dev/v1alpha1\nkind: MaskingPolicy\nmetadata: {name: pii}\nspec:\n  autoDetect: true\n';
const ACCESS =
  'apiVersion: gatehouse.dev/v1alpha1\nkind: DatabaseAccess\nmetadata: {name: demo}\nspec:\n  subjects: [{kind: User, name: "local:demo"}]\n  allow: [read]\n  guardrails: [defaults]\n  maskingPolicies: [pii]\n';

const file = (...documents: string[]) => documents.join('---\n');
const documentsOf = (text: string) => parseProxyConfig(text, 'g.yaml').policyDocuments;
const FULL = file(PROXY, GUARDRAIL, MASKING, ACCESS);

describe('reloadPolicy', () => {
  it('refuses a file whose policy documents were all deleted, naming what it held', () => {
    const reload = reloadPolicy(documentsOf(FULL), PROXY, 'g.yaml');
    expect(reload).toEqual({
      accepted: false,
      reason:
        'g.yaml now holds no policy documents (it held Guardrail defaults, MaskingPolicy pii, DatabaseAccess demo); to run without any policy on purpose, set policy.none: true in its proxy settings',
    });
  });

  it('accepts a file that says it holds no policy on purpose', () => {
    const reload = reloadPolicy(documentsOf(FULL), `${PROXY}policy:\n  none: true\n`, 'g.yaml');
    expect(reload).toMatchObject({
      accepted: true,
      policy: undefined,
      documents: [],
      change: { added: [], removed: ['Guardrail defaults', 'MaskingPolicy pii', 'DatabaseAccess demo'] },
    });
  });

  it('accepts a file that had no policy and still has none', () => {
    expect(reloadPolicy([], `${PROXY}# a comment\n`, 'g.yaml')).toMatchObject({ accepted: true });
  });

  it('refuses a file that does not load, with the loader reason', () => {
    const reload = reloadPolicy(documentsOf(FULL), file(PROXY, GUARDRAIL.replace('drop', 'nope')), 'g.yaml');
    expect(reload.accepted).toBe(false);
    expect(!reload.accepted && reload.reason).toMatch(/^g\.yaml: Guardrail "defaults"/);
  });

  it('refuses policy.none beside policy documents', () => {
    const reload = reloadPolicy([], file(`${PROXY}policy: {none: true}\n`, GUARDRAIL), 'g.yaml');
    expect(!reload.accepted && reload.reason).toMatch(
      /policy\.none: is true, but the file holds 1 policy document/,
    );
  });

  it('accepts a partial removal and says what changed', () => {
    const edited = file(
      PROXY,
      GUARDRAIL.replace('[drop]', '[drop, truncate]'),
      ACCESS.replace('  maskingPolicies: [pii]\n', ''),
    );
    const reload = reloadPolicy(documentsOf(FULL), edited, 'g.yaml');
    expect(reload).toMatchObject({
      accepted: true,
      change: {
        added: [],
        removed: ['MaskingPolicy pii'],
        changed: ['Guardrail defaults', 'DatabaseAccess demo'],
      },
    });
  });
});

describe('describePolicyChange', () => {
  it.each([
    [{ added: [], removed: [], changed: [] }, 'no policy document changed'],
    [{ added: ['Guardrail a'], removed: [], changed: [] }, 'added Guardrail a'],
    [
      {
        added: ['Guardrail a'],
        removed: ['MaskingPolicy b', 'MaskingPolicy c'],
        changed: ['DatabaseAccess d'],
      },
      'added Guardrail a; removed MaskingPolicy b, MaskingPolicy c; changed DatabaseAccess d',
    ],
  ])('%j reads %s', (change, text) => {
    expect(describePolicyChange(change)).toBe(text);
  });

  it('ignores the order of keys, and names namespaced documents with their namespace', () => {
    const a = {
      kind: 'Guardrail',
      metadata: { name: 'g', namespace: 'shop' },
      spec: { mode: 'enforce', rules: [] },
    };
    const b = {
      spec: { rules: [], mode: 'enforce' },
      metadata: { namespace: 'shop', name: 'g' },
      kind: 'Guardrail',
    };
    expect(policyChange([a], [b])).toEqual({ added: [], removed: [], changed: [] });
    expect(policyChange([a], [])).toEqual({ added: [], removed: ['Guardrail shop/g'], changed: [] });
  });
});
