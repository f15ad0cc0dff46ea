import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { API_VERSION } from '../../../crds/common.ts';
import { DatabaseAccessDocument, type DatabaseAccessDocumentType } from '../../../crds/database-access.ts';
import {
  AUTO_APPROVE_CHECKS,
  AUTO_APPROVE_TESTS,
  GUARDRAIL_RULE_CHECKS,
  GuardrailDocument,
  type GuardrailDocumentType,
  type GuardrailRuleSpec,
  NOTIFY_CHECKS,
  TABLE_RULE_KINDS,
} from '../../../crds/guardrail.ts';
import { MaskingPolicyDocument, type MaskingPolicyDocumentType } from '../../../crds/masking-policy.ts';
import { DEFAULT_MAX_ACCESS_SECONDS } from '../approvals/access-limits.ts';
import { isTimeZone } from '../approvals/approval-window.ts';
import { schemaProblems } from '../config/validate.ts';
import { ConfigError } from '../errors.ts';
import type { SubjectSpec } from './subject-matches.ts';

/** A DatabaseAccess with the Guardrails and MaskingPolicies it names, in the order it names them. */
export interface Grant {
  readonly access: DatabaseAccessDocumentType;
  readonly guardrails: readonly GuardrailDocumentType[];
  readonly maskingPolicies: readonly MaskingPolicyDocumentType[];
}

/** Every policy document of a source, validated, defaults applied, references resolved. */
export interface Policy {
  readonly source: string;
  readonly grants: readonly Grant[];
  /** By policyKey(namespace, name). */
  readonly guardrails: ReadonlyMap<string, GuardrailDocumentType>;
  readonly maskingPolicies: ReadonlyMap<string, MaskingPolicyDocumentType>;
}

export interface PolicyProblem {
  /** `Guardrail "no-destructive" (document 2)`, or `document 2` when the kind or name is unusable. */
  readonly document: string;
  /** Dotted path inside the document: `spec.rules[0].kinds[1]`. */
  readonly field: string;
  readonly problem: string;
}

/** All problems of a set of policy documents; the message lists every one, a line each. */
export class PolicyError extends ConfigError {
  readonly problems: readonly PolicyProblem[];
  constructor(source: string, problems: readonly PolicyProblem[]) {
    const first = problems[0] ?? { document: 'policy', field: '', problem: 'is invalid' };
    super(source, `${first.document}: ${first.field}`, first.problem);
    this.problems = problems;
    this.message = problems.map((p) => `${source}: ${p.document}: ${p.field}: ${p.problem}`).join('\n');
  }
}

const SCHEMAS: Record<string, TSchema> = {
  DatabaseAccess: DatabaseAccessDocument,
  Guardrail: GuardrailDocument,
  MaskingPolicy: MaskingPolicyDocument,
};
const KINDS = Object.keys(SCHEMAS);

export function policyKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/**
 * Validates policy documents (DatabaseAccess, Guardrail, MaskingPolicy, as in a config file or a
 * compiled bundle) and resolves the references between them. Throws PolicyError naming every
 * problem: the document (kind, name, position), the field and what is allowed there.
 * `documentNumbers` gives each document's position in its file (counted from 1, as an editor shows
 * it); without it, the documents are numbered as given.
 */
export function loadPolicyDocuments(
  docs: readonly unknown[],
  source: string,
  documentNumbers?: readonly number[],
): Policy {
  const problems: PolicyProblem[] = [];
  const accesses: { doc: DatabaseAccessDocumentType; label: string }[] = [];
  const guardrails = new Map<string, GuardrailDocumentType>();
  const maskingPolicies = new Map<string, MaskingPolicyDocumentType>();
  /** Documents with problems, so that references to them are not reported again. */
  const invalid = new Set<string>();

  docs.forEach((raw, index) => {
    const position = `document ${documentNumbers?.[index] ?? index + 1}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push({ document: position, field: '(document)', problem: 'must be a mapping' });
      return;
    }
    const record = raw as Record<string, unknown>;
    const kind = record['kind'];
    if (typeof kind !== 'string' || !(kind in SCHEMAS)) {
      problems.push({
        document: position,
        field: 'kind',
        problem:
          kind === undefined
            ? `is required: one of ${KINDS.join(', ')}`
            : `is ${JSON.stringify(kind)}; must be one of ${KINDS.join(', ')}`,
      });
      return;
    }
    const label = documentLabel(kind, record, position);
    const schema = SCHEMAS[kind]!;
    const found = schemaProblems(schema, record).map((p) => ({
      document: label,
      field: p.field,
      problem: p.field === 'apiVersion' ? `must be ${API_VERSION}` : withForm(p.problem, schema, p.field),
    }));
    if (found.length > 0) {
      problems.push(...found);
      const name = (record['metadata'] as Record<string, unknown> | undefined)?.['name'];
      const namespace = (record['metadata'] as Record<string, unknown> | undefined)?.['namespace'];
      if (typeof name === 'string')
        invalid.add(`${kind}:${policyKey(typeof namespace === 'string' ? namespace : undefined, name)}`);
      return;
    }
    const doc = Value.Default(schema, structuredClone(record)) as {
      metadata: { name: string; namespace?: string };
    };
    const key = policyKey(doc.metadata.namespace, doc.metadata.name);
    const add = <T>(map: Map<string, T>) => {
      if (map.has(key))
        problems.push({ document: label, field: 'metadata.name', problem: `another ${kind} has this name` });
      else map.set(key, doc as T);
    };
    if (kind === 'DatabaseAccess') {
      const access = doc as DatabaseAccessDocumentType;
      if (accesses.some((a) => policyKey(a.doc.metadata.namespace, a.doc.metadata.name) === key))
        problems.push({
          document: label,
          field: 'metadata.name',
          problem: 'another DatabaseAccess has this name',
        });
      accesses.push({ doc: access, label });
      checkSubjects(
        access.spec.subjects,
        (i) => `spec.subjects[${i}]`,
        access.metadata.namespace,
        label,
        problems,
      );
    } else if (kind === 'Guardrail') {
      const guardrail = doc as GuardrailDocumentType;
      add(guardrails);
      checkGuardrail(guardrail, label, problems);
    } else {
      const masking = doc as MaskingPolicyDocumentType;
      add(maskingPolicies);
      checkMaskingPolicy(masking, label, problems);
    }
  });

  const grants: Grant[] = accesses.map(({ doc, label }) => {
    const namespace = doc.metadata.namespace;
    const resolve = <T>(
      names: readonly string[] | undefined,
      map: ReadonlyMap<string, T>,
      kind: string,
      field: string,
    ) =>
      (names ?? []).flatMap((name, i) => {
        const found = map.get(policyKey(namespace, name));
        if (!found && !invalid.has(`${kind}:${policyKey(namespace, name)}`))
          problems.push({
            document: label,
            field: `${field}[${i}]`,
            problem: `names ${kind} "${name}", which is not defined${namespace ? ` in namespace ${namespace}` : ''}`,
          });
        return found ? [found] : [];
      });
    return {
      access: doc,
      guardrails: resolve(doc.spec.guardrails, guardrails, 'Guardrail', 'spec.guardrails'),
      maskingPolicies: resolve(
        doc.spec.maskingPolicies,
        maskingPolicies,
        'MaskingPolicy',
        'spec.maskingPolicies',
      ),
    };
  });

  if (problems.length > 0) throw new PolicyError(source, problems);
  return { source, grants, guardrails, maskingPolicies };
}

/** Says which form is expected: for a pattern, from the schema's description of the field. */
function withForm(problem: string, schema: TSchema, field: string): string {
  if (problem === 'must match format "date-time"')
    return 'must be an RFC 3339 time, such as 2030-01-31T18:00:00Z';
  if (problem !== 'is not in the expected form') return problem;
  let node: unknown = schema;
  for (const part of field.split(/\.|(?=\[)/)) {
    if (typeof node !== 'object' || node === null) return problem;
    const record = node as Record<string, unknown>;
    node = part.startsWith('[')
      ? record['items']
      : (record['properties'] as Record<string, unknown> | undefined)?.[part];
  }
  const description =
    typeof node === 'object' && node !== null ? (node as Record<string, unknown>)['description'] : undefined;
  return typeof description === 'string' ? `${problem}: ${description}` : problem;
}

function documentLabel(kind: string, record: Record<string, unknown>, position: string): string {
  const metadata = record['metadata'];
  const name =
    typeof metadata === 'object' && metadata !== null
      ? (metadata as Record<string, unknown>)['name']
      : undefined;
  const namespace =
    typeof metadata === 'object' && metadata !== null
      ? (metadata as Record<string, unknown>)['namespace']
      : undefined;
  if (typeof name !== 'string') return `${kind} (${position})`;
  return `${kind} "${typeof namespace === 'string' ? `${namespace}/` : ''}${name}" (${position})`;
}

function checkSubjects(
  subjects: readonly SubjectSpec[] | undefined,
  fieldOf: (index: number) => string,
  namespace: string | undefined,
  label: string,
  problems: PolicyProblem[],
): void {
  (subjects ?? []).forEach((subject, i) => {
    if (subject.kind !== 'ServiceAccount' && subject.namespace !== undefined)
      problems.push({
        document: label,
        field: `${fieldOf(i)}.namespace`,
        problem: 'is only for kind ServiceAccount',
      });
    if (subject.kind === 'ServiceAccount' && subject.namespace === undefined && namespace === undefined)
      problems.push({
        document: label,
        field: `${fieldOf(i)}.namespace`,
        problem: 'is required for a ServiceAccount when the document has no metadata.namespace',
      });
  });
}

function checkGuardrail(guardrail: GuardrailDocumentType, label: string, problems: PolicyProblem[]): void {
  const seen = new Set<string>();
  guardrail.spec.rules.forEach((rule, i) => {
    if (seen.has(rule.name))
      problems.push({
        document: label,
        field: `spec.rules[${i}].name`,
        problem: 'is the name of an earlier rule too',
      });
    seen.add(rule.name);
    for (const { field, problem } of guardrailRuleProblems(rule))
      problems.push({ document: label, field: `spec.rules[${i}]${field}`, problem });
    checkSubjects(
      rule.subjects,
      (j) => `spec.rules[${i}].subjects[${j}]`,
      guardrail.metadata.namespace,
      label,
      problems,
    );
    checkSubjects(
      rule.approval?.approvers,
      (j) => `spec.rules[${i}].approval.approvers[${j}]`,
      guardrail.metadata.namespace,
      label,
      problems,
    );
    rule.approval?.autoApprove?.forEach((condition, j) => {
      checkSubjects(
        condition.subjects,
        (k) => `spec.rules[${i}].approval.autoApprove[${j}].subjects[${k}]`,
        guardrail.metadata.namespace,
        label,
        problems,
      );
    });
  });
}

/** The API server's CEL rules of a guardrail rule (GUARDRAIL_RULE_CHECKS), for local files. */
function guardrailRuleProblems(rule: GuardrailRuleSpec): { field: string; problem: string }[] {
  const found: { field: string; problem: string }[] = [];
  const tableKinds: readonly string[] = TABLE_RULE_KINDS;
  const kinds = rule.kinds;
  const limits = rule.maxAffectedRows !== undefined || rule.maxAffectedRowsPerMinute !== undefined;
  if ((kinds !== undefined) === limits)
    found.push({ field: '', problem: GUARDRAIL_RULE_CHECKS.kindsOrRowLimit.message });
  const duplicate = kinds?.find((kind, i) => kinds.indexOf(kind) !== i);
  if (duplicate !== undefined) found.push({ field: '.kinds', problem: `names ${duplicate} twice` });
  if (rule.tables !== undefined && rule.tables.length === 0)
    found.push({ field: '.tables', problem: GUARDRAIL_RULE_CHECKS.tablesNotEmpty.message });
  else if (
    rule.tables !== undefined &&
    kinds !== undefined &&
    !kinds.some((kind) => tableKinds.includes(kind))
  )
    found.push({ field: '.tables', problem: GUARDRAIL_RULE_CHECKS.tablesNeedTableKind.message });
  if (rule.subjects !== undefined && rule.subjects.length === 0)
    found.push({ field: '.subjects', problem: GUARDRAIL_RULE_CHECKS.subjectsNotEmpty.message });
  if (rule.databases !== undefined && rule.databases.length === 0)
    found.push({ field: '.databases', problem: GUARDRAIL_RULE_CHECKS.databasesNotEmpty.message });
  if (rule.approval !== undefined && rule.action !== 'requireApproval' && !kinds?.includes('unknown-shape'))
    found.push({ field: '.approval', problem: GUARDRAIL_RULE_CHECKS.approvalNeedsRequireApproval.message });
  rule.approval?.notify?.forEach((target, i) => {
    if ((target.url === undefined) === (target.urlSecretRef === undefined))
      found.push({ field: `.approval.notify[${i}]`, problem: NOTIFY_CHECKS.urlOrSecret.message });
  });
  rule.approval?.autoApprove?.forEach((condition, i) => {
    if (!AUTO_APPROVE_TESTS.some((test) => condition[test] !== undefined))
      found.push({ field: `.approval.autoApprove[${i}]`, problem: AUTO_APPROVE_CHECKS.someTest.message });
    const names = rule.approval?.autoApprove?.map((c) => c.name) ?? [];
    if (names.indexOf(condition.name) !== i)
      found.push({
        field: `.approval.autoApprove[${i}].name`,
        problem: 'is the name of an earlier condition too',
      });
    condition.windows?.forEach((window, j) => {
      if (window.timeZone !== undefined && !isTimeZone(window.timeZone))
        found.push({
          field: `.approval.autoApprove[${i}].windows[${j}].timeZone`,
          problem: `${JSON.stringify(window.timeZone)} is not an IANA time zone this runtime knows (such as Europe/Paris)`,
        });
    });
  });
  return found;
}

function checkMaskingPolicy(
  policy: MaskingPolicyDocumentType,
  label: string,
  problems: PolicyProblem[],
): void {
  (policy.spec.rules ?? []).forEach((rule, i) => {
    if ((rule.columns ?? []).length === 0 && (rule.classifiers ?? []).length === 0)
      problems.push({
        document: label,
        field: `spec.rules[${i}]`,
        problem: 'needs columns, classifiers or both',
      });
  });
  (policy.spec.exemptions ?? []).forEach((exemption, i) => {
    checkSubjects(
      [exemption.subject],
      () => `spec.exemptions[${i}].subject`,
      policy.metadata.namespace,
      label,
      problems,
    );
  });
  const access = policy.spec.accessRequests;
  if (access) {
    if (access.approvers.length === 0)
      problems.push({
        document: label,
        field: 'spec.accessRequests.approvers',
        problem: 'needs at least one approver',
      });
    checkSubjects(
      access.approvers,
      (i) => `spec.accessRequests.approvers[${i}]`,
      policy.metadata.namespace,
      label,
      problems,
    );
    if (
      access.openOnRefusalSeconds !== undefined &&
      access.openOnRefusalSeconds > (access.maxDurationSeconds ?? DEFAULT_MAX_ACCESS_SECONDS)
    )
      problems.push({
        document: label,
        field: 'spec.accessRequests.openOnRefusalSeconds',
        problem: 'may not exceed maxDurationSeconds',
      });
  }
}
