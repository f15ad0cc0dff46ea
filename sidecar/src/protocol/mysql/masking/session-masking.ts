import type { MaskingClassifier, MaskingPolicyDocumentType } from '../../../../../crds/masking-policy.ts';
import type { Identity } from '../../../identity/identity.ts';
import { globMatches } from '../../../policy/guardrails/glob.ts';
import type { Policy } from '../../../policy/load-policy.ts';
import { classifyColumn } from '../../../policy/masking/classify-column.ts';
import type { MaskMethod } from '../../../policy/masking/mask-methods.ts';
import type { MaskingKey } from '../../../policy/masking/masking-key.ts';
import type { PiiKind } from '../../../policy/masking/pii-kind.ts';
import { anySubjectMatches, subjectMatches } from '../../../policy/subject-matches.ts';

/** How one column's values are masked. */
export interface ColumnMask {
  readonly method: MaskMethod;
  /** The column's classification, which shapes partial masks; null when not known. */
  readonly kind: PiiKind | null;
}

/** The MaskingPolicies that apply to one session, resolved for the columns of the catalog. */
export interface SessionMasking {
  readonly key: MaskingKey;
  /** autoDetect: scan every text value that leaves, as a second line behind lineage. */
  readonly scanValues: boolean;
  /** Every policy allows predicates (WHERE, JOIN, ORDER BY...) over masked columns. */
  readonly allowPredicates: boolean;
  /** How a catalog column is masked; undefined when it is not sensitive. */
  columnMask(schema: string, table: string, column: string): ColumnMask | undefined;
}

/** What autoDetect does with a column it classifies, when no rule names a method. */
const AUTO_DETECT_METHOD: MaskMethod = 'partial';

const CLASSIFIER_OF: Readonly<Record<PiiKind, MaskingClassifier>> = {
  email: 'email',
  phone: 'phone',
  ssn: 'ssn',
  'national-id': 'national-id',
  card: 'card',
  iban: 'iban',
  ip: 'ip',
  'person-name': 'person-name',
  address: 'street-address',
  'birth-date': 'date-of-birth',
  secret: 'secret',
};

/**
 * The masking of one session: the MaskingPolicies of every grant of the identity on this database,
 * less those whose exemptions name the identity (until they expire). Grants add up for guardrails;
 * for masking the strictest wins: a column is masked when any applicable policy masks it.
 * Undefined when no policy applies.
 */
export function sessionMasking(
  policy: Policy | undefined,
  identity: Identity,
  database: string,
  key: MaskingKey,
  now = Date.now(),
): SessionMasking | undefined {
  if (!policy) return undefined;
  const policies: MaskingPolicyDocumentType[] = [];
  for (const grant of policy.grants) {
    const spec = grant.access.spec;
    if (!anySubjectMatches(spec.subjects, identity, grant.access.metadata.namespace)) continue;
    if (spec.upstream?.database !== undefined && spec.upstream.database !== database) continue;
    for (const masking of grant.maskingPolicies) {
      const exempt = (masking.spec.exemptions ?? []).some(
        (e) => subjectMatches(e.subject, identity, masking.metadata.namespace) && Date.parse(e.expires) > now,
      );
      if (!exempt && !policies.includes(masking)) policies.push(masking);
    }
  }
  if (policies.length === 0) return undefined;
  const cache = new Map<string, ColumnMask | undefined>();
  return {
    key,
    scanValues: policies.some((p) => p.spec.autoDetect !== false),
    allowPredicates: policies.every((p) => p.spec.allowPredicatesOnMasked === true),
    columnMask(schema, table, column) {
      const id = `${schema}\u0000${table}\u0000${column}`.toLowerCase();
      if (cache.has(id)) return cache.get(id);
      const mask = resolve(policies, schema.toLowerCase(), table.toLowerCase(), column.toLowerCase());
      cache.set(id, mask);
      return mask;
    },
  };
}

function resolve(
  policies: readonly MaskingPolicyDocumentType[],
  schema: string,
  table: string,
  column: string,
): ColumnMask | undefined {
  const kind = classifyColumn(column, table);
  for (const policy of policies) {
    for (const rule of policy.spec.rules ?? []) {
      const byColumn = (rule.columns ?? []).some((pattern) => columnMatches(pattern, schema, table, column));
      const byClass = kind !== null && (rule.classifiers ?? []).includes(CLASSIFIER_OF[kind]);
      if (byColumn || byClass) return { method: rule.method, kind };
    }
  }
  if (kind !== null && policies.some((p) => p.spec.autoDetect !== false))
    return { method: AUTO_DETECT_METHOD, kind };
  return undefined;
}

/** `table.column` or `schema.table.column`, with `*` and `?`; identifiers compare case-insensitively. */
function columnMatches(pattern: string, schema: string, table: string, column: string): boolean {
  const parts = pattern.toLowerCase().split('.');
  const [s, t, c] = parts.length === 3 ? parts : [undefined, parts[0], parts[1]];
  return (
    (s === undefined || globMatches(s, schema)) && globMatches(t ?? '', table) && globMatches(c ?? '', column)
  );
}
