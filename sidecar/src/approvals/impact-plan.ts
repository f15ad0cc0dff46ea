import type { StatementFacts } from '../sql/analyze/statement-facts.ts';

/**
 * What the proxy measures of a held statement for its approver, the same for both protocols: the rows
 * a DELETE, UPDATE or MERGE changes (run under a transaction or savepoint that is always rolled back,
 * so it runs before anyone approved it: only what a rollback undoes completely may run), or the
 * objects that depend on what a DROP, ALTER or TRUNCATE acts on.
 */
export type ImpactPlan =
  /** Run it under a rollback and count; `explain` when the planner can estimate it too (one statement). */
  | { readonly measure: 'rows'; readonly explain: boolean }
  | { readonly measure: 'dependents'; readonly targets: readonly string[] }
  | { readonly measure: 'nothing' }
  | { readonly measure: 'impossible'; readonly reason: string };

const ROW_KINDS: ReadonlySet<string> = new Set(['update', 'delete', 'merge']);
const DDL_KINDS: ReadonlySet<string> = new Set(['drop', 'alter', 'truncate']);
/** Findings whose effects a rollback does not undo, or that Gatehouse cannot see the whole of. */
const OUTSIDE_ROLLBACK: ReadonlySet<string> = new Set([
  'file-access',
  'copy-program',
  'identity-change',
  'dynamic-sql',
  'unknown-statement',
  'grant',
]);
/**
 * Functions a measured statement may call: built-ins with no effect outside the transaction. Any other
 * (pg_terminate_backend, nextval, lo_export, a user's function) could act before anyone approved.
 */
const SIDE_EFFECT_FREE: ReadonlySet<string> = new Set(
  [
    'abs',
    'age',
    'btrim',
    'char_length',
    'coalesce',
    'concat',
    'date_part',
    'date_trunc',
    'extract',
    'greatest',
    'least',
    'length',
    'lower',
    'ltrim',
    'now',
    'nullif',
    'round',
    'rtrim',
    'substr',
    'substring',
    'to_char',
    'to_date',
    'to_timestamp',
    'trim',
    'upper',
    'curdate',
    'current_date',
    'current_timestamp',
    'date_sub',
    'date_add',
    'ifnull',
  ].map((f) => f.toLowerCase()),
);

/** Built-in operator symbols: one written otherwise (`###`, `s.=`) may run a user's function. */
const BUILTIN_OPERATORS: ReadonlySet<string> = new Set(
  '= <> != < > <= >= + - * / % || ~~ !~~ ~~* !~~* ~ !~ ~* !~* @> <@ && AND OR NOT'.split(' '),
);

/**
 * The plan for a held statement's facts (with the stored code it reaches). `uncountable` is the
 * protocol's reason its row count cannot be read (row-limits.ts uncountableChange on PostgreSQL,
 * row-measure.ts unmeasurable on MySQL), if any.
 */
export function impactPlan(facts: StatementFacts, uncountable?: string): ImpactPlan {
  if (!facts.parsed) return { measure: 'impossible', reason: 'the statement does not parse' };
  const top = facts.statements.filter((s) => s.via.length === 0);
  if (top.length === 0) return { measure: 'nothing' };
  if (top.every((s) => DDL_KINDS.has(s.kind))) {
    const targets = [...new Set(top.flatMap((s) => (s.objects.length > 0 ? s.objects : s.tablesWritten)))];
    return targets.length > 0 ? { measure: 'dependents', targets } : { measure: 'nothing' };
  }
  if (!top.some((s) => ROW_KINDS.has(s.kind))) return { measure: 'nothing' };
  if (!top.every((s) => ROW_KINDS.has(s.kind)))
    return { measure: 'impossible', reason: 'it runs other statements in the same text as the change' };
  const control = facts.statements.find((s) => s.kind === 'transaction');
  if (control)
    return { measure: 'impossible', reason: `it controls the transaction itself (${control.command})` };
  const outside = facts.findings.find((f) => OUTSIDE_ROLLBACK.has(f.kind));
  if (outside)
    return {
      measure: 'impossible',
      reason: `it has a ${outside.kind} finding, whose effects a rollback may not undo`,
    };
  if (uncountable) return { measure: 'impossible', reason: uncountable };
  const called = facts.functions.find(
    (f) => !SIDE_EFFECT_FREE.has(f.slice(f.lastIndexOf('.') + 1).toLowerCase()),
  );
  if (called)
    return {
      measure: 'impossible',
      reason: `it calls ${called}, which could act outside the transaction before anyone approved it`,
    };
  const operator = facts.statements
    .flatMap((st) => st.operators ?? [])
    .find((o) => !BUILTIN_OPERATORS.has(o));
  if (operator !== undefined)
    return {
      measure: 'impossible',
      reason: `it uses the operator ${operator}, which could run a function that acts outside the transaction`,
    };
  return { measure: 'rows', explain: facts.statementCount === 1 };
}

/** What a protocol measured, merged into what the policy already knew (the tables it names). */
export interface Measured {
  readonly affectedRows?: number;
  readonly estimatedRows?: number;
  readonly dependents?: readonly string[];
  /** Why the rows were not measured, for a statement that changes rows. */
  readonly notMeasured?: string;
}

/** The estimate in an EXPLAIN (FORMAT JSON) result: the rows the plan under its top ModifyTable reads. */
export function explainedRows(json: string): number | undefined {
  let plans: unknown;
  try {
    plans = JSON.parse(json);
  } catch {
    return undefined;
  }
  const top = (Array.isArray(plans) ? plans[0] : undefined) as { Plan?: PlanNode } | undefined;
  const plan = top?.Plan;
  if (!plan) return undefined;
  // A ModifyTable plans 0 rows out (without RETURNING): the rows it changes come from its input.
  const input = plan['Node Type'] === 'ModifyTable' ? plan.Plans?.[0] : plan;
  const rows = input?.['Plan Rows'];
  return typeof rows === 'number' && Number.isFinite(rows) && rows >= 0 ? Math.round(rows) : undefined;
}

interface PlanNode {
  readonly 'Node Type'?: string;
  readonly 'Plan Rows'?: number;
  readonly Plans?: readonly PlanNode[];
}
