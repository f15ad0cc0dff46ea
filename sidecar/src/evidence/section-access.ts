import { loadPolicyDocuments } from '../policy/load-policy.ts';
import type { EvidenceInput, EvidenceRecord } from './evidence-input.ts';
import { originOf, type RowOrigin, sorted, text, texts } from './record-fields.ts';
import type { SectionHeader } from './section.ts';

/** A policy put in force at a proxy: a `policy.change` record. */
export interface PolicyChangeRow extends RowOrigin {
  readonly event: string | null;
  readonly file: string | null;
  /** Who made the change, as the bundle said; null when nobody was recorded. */
  readonly changedBy: string | null;
  readonly before: string | null;
  readonly after: string | null;
  readonly summary: string | null;
  readonly documents: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
  readonly rules: { readonly added: string[]; readonly removed: string[]; readonly changed: string[] };
}

/** A DatabaseAccess of the bundle given with --policy: who has access to what. */
export interface GrantRow {
  readonly access: string;
  readonly subjects: readonly string[];
  readonly classes: readonly string[];
  readonly guardrails: readonly { readonly name: string; readonly rules: readonly string[] }[];
  readonly maskingPolicies: readonly {
    readonly name: string;
    readonly rules: number;
    readonly autoDetect: boolean;
  }[];
}

export interface AccessSection extends SectionHeader {
  /** Per source, the last policy put in force before the period ended. */
  readonly inForce: readonly PolicyChangeRow[];
  /** Every policy change in the period. */
  readonly changes: readonly PolicyChangeRow[];
  readonly bundle: {
    readonly file: string;
    readonly digest: string | null;
    /** The sources whose policy in force at the period's end has this digest. */
    readonly inForceAt: readonly string[];
    readonly grants: readonly GrantRow[];
  } | null;
}

export function buildAccessSection(input: EvidenceInput): AccessSection {
  const from = Date.parse(input.period.from);
  const latest = new Map<string, EvidenceRecord>();
  for (const record of input.policyHistory) {
    const seen = latest.get(record.source);
    if (!seen || Date.parse(record.time) >= Date.parse(seen.time)) latest.set(record.source, record);
  }
  const inForce = sorted(latest.values(), (r) => r.source).map(changeRow);
  const changes = input.policyHistory.filter((r) => Date.parse(r.time) >= from).map(changeRow);
  const bundle = input.policy
    ? {
        file: input.policy.file,
        digest: input.policy.digest ?? null,
        inForceAt: inForce
          .filter((r) => r.after !== null && r.after === input.policy!.digest)
          .map((r) => r.source),
        grants: grantRows(input.policy.documents, input.policy.file),
      }
    : null;
  return {
    section: 'access',
    title: 'Who has access to what, and every change to it',
    period: input.period,
    shows:
      'The policy in force at each source at the end of the period (its digest, and who put it in force when recorded), every policy change in the period with changedBy, and, given --policy, the subjects, statement classes, guardrails and masking of each DatabaseAccess of that bundle.',
    doesNotShow:
      'changedBy is what the bundle claimed (the proxy does not check it). The grants come from the bundle given to the builder: they are the policy in force only where its digest matches (bundle.inForceAt). Access that bypasses the proxy.',
    counts: { inForce: inForce.length, changes: changes.length, grants: bundle?.grants.length ?? 0 },
    inForce,
    changes,
    bundle,
  };
}

function changeRow(record: EvidenceRecord): PolicyChangeRow {
  const rules = record.fields['rules'] as Record<string, unknown> | undefined;
  const list = (value: unknown) =>
    Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  return {
    ...originOf(record),
    event: text(record, 'event'),
    file: text(record, 'file'),
    changedBy: text(record, 'changedBy'),
    before: text(record, 'before'),
    after: text(record, 'after'),
    summary: text(record, 'summary'),
    documents: {
      added: texts(record, 'added'),
      removed: texts(record, 'removed'),
      changed: texts(record, 'changed'),
    },
    rules: {
      added: list(rules?.['added']),
      removed: list(rules?.['removed']),
      changed: list(rules?.['changed']),
    },
  };
}

function grantRows(documents: readonly unknown[], file: string): GrantRow[] {
  if (documents.length === 0) return [];
  const policy = loadPolicyDocuments(documents, file);
  return policy.grants.map((grant) => {
    const meta = grant.access.metadata;
    return {
      access: meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name,
      subjects: grant.access.spec.subjects.map(subjectName),
      classes: [...grant.access.spec.allow],
      guardrails: grant.guardrails.map((g) => ({
        name: g.metadata.name,
        rules: (g.spec.rules ?? []).map((rule) => `${rule.name}: ${rule.action ?? 'block'}`),
      })),
      maskingPolicies: grant.maskingPolicies.map((m) => ({
        name: m.metadata.name,
        rules: (m.spec.rules ?? []).length,
        autoDetect: m.spec.autoDetect === true,
      })),
    };
  });
}

/** `User demo`, `Group approvers`, `ServiceAccount shop/orders`: as kubectl names them. */
function subjectName(subject: { kind: string; name: string; namespace?: string }): string {
  return `${subject.kind} ${subject.namespace ? `${subject.namespace}/` : ''}${subject.name}`;
}
