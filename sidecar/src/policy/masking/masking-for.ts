import type { MaskingMethod, MaskingPolicyDocumentType } from '../../../../crds/masking-policy.ts';
import type { Identity } from '../../identity/identity.ts';
import { grantsFor } from '../grants-for.ts';
import type { Policy } from '../load-policy.ts';
import { subjectMatches } from '../subject-matches.ts';
import type { PiiKind } from './pii-kind.ts';

/** One explicit rule of a MaskingPolicy, ready to match columns. */
export interface MaskingRuleSettings {
  /** `Policy/index`, for the audit record's reason. */
  readonly source: string;
  readonly columns: readonly string[];
  readonly kinds: readonly PiiKind[];
  readonly method: MaskingMethod;
}

/**
 * An approved access request (`gatehouse request-access`): these columns pass through in clear for
 * the identity it names, on its database, until `until`. See docs/approvals.md.
 */
export interface AccessExemption {
  /** The approval request that granted it, named in the audit record of each statement it clears. */
  readonly request: string;
  /** `table.column` or `schema.table.column`, exact names. */
  readonly columns: readonly string[];
  /** Epoch ms; the exemption ends then. */
  readonly until: number;
}

/** What masking means for one identity on one database: the MaskingPolicies of its grants, merged. */
export interface MaskingSettings {
  readonly autoDetect: boolean;
  /** In policy order, then rule order: the first rule that matches a column decides its method. */
  readonly rules: readonly MaskingRuleSettings[];
  readonly allowPredicatesOnMasked: boolean;
  /** Names of the MaskingPolicies in force, for logs. */
  readonly policies: readonly string[];
  /** Approved access requests of the identity in force now; only unchanged pass-throughs turn clear. */
  readonly exemptions: readonly AccessExemption[];
}

/**
 * The masking in force for `identity`, or undefined when it sees clear values: no grant of it names a
 * MaskingPolicy, or every MaskingPolicy its grants name exempts it (until the exemption expires).
 * Several policies add up: autoDetect if any asks for it, every rule of every policy, and predicates
 * over masked columns only if every policy allows them.
 */
export function maskingFor(
  identity: Identity,
  policy: Policy,
  database: string,
  now: number = Date.now(),
  access: readonly AccessExemption[] = [],
): MaskingSettings | undefined {
  const applying = applyingMaskingPolicies(identity, policy, database, now);
  if (applying.length === 0) return undefined;
  const rules: MaskingRuleSettings[] = [];
  for (const masking of applying) {
    (masking.spec.rules ?? []).forEach((rule, index) => {
      rules.push({
        source: `${masking.metadata.name}/rules[${index}]`,
        columns: rule.columns ?? [],
        kinds: [...(rule.classifiers ?? [])],
        method: rule.method,
      });
    });
  }
  return Object.freeze({
    autoDetect: applying.some((masking) => masking.spec.autoDetect !== false),
    rules,
    allowPredicatesOnMasked: applying.every((masking) => masking.spec.allowPredicatesOnMasked === true),
    policies: applying.map((masking) => masking.metadata.name),
    exemptions: Object.freeze(access.filter((exemption) => exemption.until > now)),
  });
}

/** The MaskingPolicies of the identity's grants on the database, less those whose exemptions name it. */
export function applyingMaskingPolicies(
  identity: Identity,
  policy: Policy,
  database: string,
  now: number = Date.now(),
): MaskingPolicyDocumentType[] {
  const seen = new Set<MaskingPolicyDocumentType>();
  for (const grant of grantsFor(identity, policy, database))
    for (const masking of grant.maskingPolicies) seen.add(masking);
  return [...seen].filter((masking) => !exempt(masking, identity, now));
}

function exempt(masking: MaskingPolicyDocumentType, identity: Identity, now: number): boolean {
  return (masking.spec.exemptions ?? []).some(
    (exemption) =>
      Date.parse(exemption.expires) > now &&
      subjectMatches(exemption.subject, identity, masking.metadata.namespace),
  );
}

/** The earliest exemption expiry still ahead for `identity`: its masking changes then. */
export function nextExemptionExpiry(
  identity: Identity,
  policy: Policy,
  database: string,
  now: number = Date.now(),
): number | undefined {
  let next: number | undefined;
  for (const grant of grantsFor(identity, policy, database))
    for (const masking of grant.maskingPolicies)
      for (const exemption of masking.spec.exemptions ?? []) {
        const at = Date.parse(exemption.expires);
        if (at > now && subjectMatches(exemption.subject, identity, masking.metadata.namespace))
          next = next === undefined ? at : Math.min(next, at);
      }
  return next;
}
