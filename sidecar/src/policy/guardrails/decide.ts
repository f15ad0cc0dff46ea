import type {
  ApprovalSettingsSpec,
  GuardrailAction,
  GuardrailDocumentType,
  GuardrailRuleSpec,
} from '../../../../crds/guardrail.ts';
import type { Identity } from '../../identity/identity.ts';
import type { Finding, GuardrailRuleKind, StatementFacts } from '../../sql/analyze/statement-facts.ts';
import { grantsFor } from '../grants-for.ts';
import type { Grant, Policy } from '../load-policy.ts';
import { anySubjectMatches } from '../subject-matches.ts';
import { globMatches, tableMatches } from './glob.ts';
import { mayChangeRows, type RowLimit, uncountableChange } from './row-limits.ts';
import { type ShapeContext, shapeCoverable, unknownShape } from './unknown-shape.ts';

export interface DecisionContext {
  /** The upstream database the session is connected to. */
  readonly database: string;
  /**
   * requireApproval rules an approval released for this statement, as `guardrail/rule` (see
   * approvalKey): their hits no longer hold it. Blocks and other rules still apply.
   */
  readonly released?: ReadonlySet<string>;
  /** The text's shape, for `unknown-shape` rules; absent: it has none, and no approval can cover it. */
  readonly shape?: ShapeContext;
  /**
   * The session is a call of this MCP tool, as the proxy knows from the connection's origin (never
   * from the client): its statements need no class beyond `classes`, whatever the grants allow.
   */
  readonly tool?: { readonly name: string; readonly classes: readonly string[] };
}

/** How a requireApproval rule is named in DecisionContext.released. */
export function approvalKey(guardrail: string, rule: string): string {
  return `${guardrail}/${rule}`;
}

/** One guardrail rule matching one finding. */
export interface GuardrailHit {
  readonly guardrail: string;
  readonly rule: string;
  readonly kind: GuardrailRuleKind;
  readonly action: GuardrailAction;
  /** Index in StatementFacts.statements. */
  readonly statement: number;
  readonly message: string;
}

export interface Allow {
  readonly outcome: 'allow';
  /** requireApproval rules it matched that an approval released (DecisionContext.released). */
  readonly approved?: readonly GuardrailHit[];
  /** What rules of guardrails in dryRun mode would have done. */
  readonly dryRun: readonly GuardrailHit[];
  /**
   * Row limits the statement runs under (see row-limits.ts): not empty only when it may change rows
   * and a rule with maxAffectedRows or maxAffectedRowsPerMinute applies. The protocol must measure.
   */
  readonly rowLimits: readonly RowLimit[];
  /** With row limits: the statement in a few words, for the message when a count goes over. */
  readonly rowsWhat?: string;
}

export interface AllowWithWarnings {
  readonly outcome: 'allow-with-warnings';
  readonly approved?: readonly GuardrailHit[];
  readonly warnings: readonly GuardrailHit[];
  readonly dryRun: readonly GuardrailHit[];
  readonly rowLimits: readonly RowLimit[];
  readonly rowsWhat?: string;
}

/** A requireApproval rule that holds a statement, and who may release it (see docs/approvals.md). */
export interface ApprovalDemand {
  readonly guardrail: string;
  readonly namespace?: string;
  readonly rule: string;
  /** Absent: the rule names no approvers, so nobody can release the statement. */
  readonly settings?: ApprovalSettingsSpec;
}

export interface Refusal {
  readonly outcome: 'refuse';
  readonly action: 'block' | 'requireApproval';
  /**
   * With action requireApproval: every requireApproval rule the statement matched, once each. An
   * approval must satisfy all of them: releasing it past one rule's approvers would let another
   * rule's be skipped.
   */
  readonly approvals?: readonly ApprovalDemand[];
  /**
   * With approvals: the kinds the holding rules matched, which may include one no finding has
   * (`unknown-shape`), so that an auto-approval condition's `kinds` sees it.
   */
  readonly heldKinds?: readonly GuardrailRuleKind[];
  /** A Guardrail's rule refused it, or a DatabaseAccess does not allow it (or no DatabaseAccess grants the subject). */
  readonly policyKind: 'Guardrail' | 'DatabaseAccess';
  /** The Guardrail's name, or the DatabaseAccess's ('' when none grants the subject). */
  readonly guardrail: string;
  /** The rule's name; `allow` for a statement class the DatabaseAccess does not allow; `subjects` for no grant. */
  readonly rule: string;
  readonly kind?: GuardrailRuleKind;
  readonly statement?: number;
  /** For the client: names the policy and the reason; identifiers only, never values from the SQL. */
  readonly message: string;
  readonly sqlstate: '42501';
  readonly warnings: readonly GuardrailHit[];
  readonly dryRun: readonly GuardrailHit[];
}

export type Decision = Allow | AllowWithWarnings | Refusal;

/**
 * What to do with a statement: pure, from its facts, who sent it and the policy.
 *
 * Every DatabaseAccess whose subjects include the identity (and whose upstream database, if it names
 * one, is this one) is a grant; grants add up, so the statement runs if one grant allows it. A grant
 * allows it when its `allow` has every class the statement needs, and no enforcing rule of its
 * guardrails blocks it or asks for approval. When every grant refuses, the refusal reported is an
 * approval request if some grant asks for one (approval would let it run), else the first block.
 */
export function decide(
  facts: StatementFacts,
  identity: Identity,
  policy: Policy,
  context: DecisionContext,
): Decision {
  const grants = grantsFor(identity, policy, context.database);
  if (grants.length === 0) {
    return refusal({
      policyKind: 'DatabaseAccess',
      guardrail: '',
      rule: 'subjects',
      message: `Gatehouse: no DatabaseAccess grants ${identity.subject} access to database "${context.database}"`,
    });
  }
  const tool = context.tool;
  const beyondTool = tool ? facts.classes.filter((c) => !tool.classes.includes(c)) : [];
  if (tool && beyondTool.length > 0) {
    const statement = facts.statements.findIndex((s) => s.classes.some((c) => !tool.classes.includes(c)));
    const needing = facts.statements[statement];
    return refusal({
      policyKind: 'DatabaseAccess',
      guardrail: '',
      rule: 'mcp-tool',
      statement,
      message: `Gatehouse: the MCP tool ${tool.name} runs ${tool.classes.join(', ')} only, and ${
        needing ? describe(needing) : 'this statement'
      } needs ${beyondTool.join(', ')}: use execute, if a DatabaseAccess grants it`,
    });
  }
  const decisions = grants.map((grant) => decideForGrant(facts, identity, grant, context));
  return (
    decisions.find((d) => d.outcome === 'allow') ??
    decisions.find((d) => d.outcome === 'allow-with-warnings') ??
    decisions.find((d) => d.outcome === 'refuse' && d.action === 'requireApproval') ??
    decisions[0]!
  );
}

function decideForGrant(
  facts: StatementFacts,
  identity: Identity,
  grant: Grant,
  context: DecisionContext,
): Decision {
  const access = grant.access;
  const allowed = new Set(access.spec.allow);
  const missing = facts.classes.filter((c) => !allowed.has(c));
  if (missing.length > 0) {
    const statement = facts.statements.findIndex((s) => s.classes.some((c) => !allowed.has(c)));
    const needing = facts.statements[statement];
    return refusal({
      policyKind: 'DatabaseAccess',
      guardrail: access.metadata.name,
      rule: 'allow',
      statement,
      message: `Gatehouse: DatabaseAccess "${access.metadata.name}" does not allow ${missing.join(', ')}, which ${
        needing ? describe(needing) : 'this statement'
      } needs (it allows ${access.spec.allow.join(', ')})`,
    });
  }

  const blocks: GuardrailHit[] = [];
  const approvals: GuardrailHit[] = [];
  const approved: GuardrailHit[] = [];
  const warnings: GuardrailHit[] = [];
  const dryRun: GuardrailHit[] = [];
  const rowLimits: RowLimit[] = [];
  const changesRows = mayChangeRows(facts);
  // Asked at most once per text: null when its shape is approved, undefined until asked.
  let shapeFinding: Finding | null | undefined;
  for (const guardrail of grant.guardrails) {
    for (const rule of guardrail.spec.rules) {
      if (rule.kinds === undefined) {
        if (changesRows && limitApplies(rule, facts, identity, guardrail, context))
          rowLimits.push(rowLimitOf(guardrail, rule));
        continue;
      }
      const findings: Finding[] = facts.findings.filter((f) =>
        ruleMatches(rule, f, identity, guardrail, context),
      );
      if (rule.kinds.includes('unknown-shape')) {
        if (shapeFinding === undefined)
          shapeFinding = unknownShape(facts, identity, context.database, context.shape);
        if (shapeFinding && ruleMatches(rule, shapeFinding, identity, guardrail, context)) {
          findings.push(shapeFinding);
          // Learned only where approving the shape would cover the text.
          if (shapeCoverable(facts))
            context.shape?.unknown({
              guardrail: guardrail.metadata.name,
              rule: rule.name,
              ...(guardrail.metadata.namespace !== undefined && { namespace: guardrail.metadata.namespace }),
              ...(rule.approval !== undefined && { approval: rule.approval }),
            });
        }
      }
      for (const finding of findings) {
        const hit = hitOf(guardrail, rule, finding, facts);
        if (inDryRun(guardrail, rule)) dryRun.push(hit);
        else if (hit.action === 'block') blocks.push(hit);
        else if (hit.action === 'requireApproval')
          (context.released?.has(approvalKey(hit.guardrail, hit.rule)) ? approved : approvals).push(hit);
        else warnings.push(hit);
      }
    }
  }
  const first = blocks[0] ?? approvals[0];
  if (first) {
    const demands = blocks.length === 0 ? approvalDemands(approvals, grant) : undefined;
    return {
      outcome: 'refuse',
      action: first.action === 'requireApproval' ? 'requireApproval' : 'block',
      ...(demands && { approvals: demands, heldKinds: [...new Set(approvals.map((h) => h.kind))] }),
      policyKind: 'Guardrail',
      guardrail: first.guardrail,
      rule: first.rule,
      kind: first.kind,
      statement: first.statement,
      message: first.message,
      sqlstate: '42501',
      warnings,
      dryRun,
    };
  }
  const enforcing = rowLimits.find((l) => !l.dryRun && l.action !== 'warn');
  const uncountable = enforcing && uncountableChange(facts);
  if (enforcing && uncountable) {
    return {
      outcome: 'refuse',
      action: enforcing.action === 'requireApproval' ? 'requireApproval' : 'block',
      policyKind: 'Guardrail',
      guardrail: enforcing.guardrail,
      rule: enforcing.rule,
      message: `Gatehouse guardrail "${enforcing.guardrail}" (rule ${enforcing.rule}) limits the rows a transaction may change, and cannot count them for ${rowsWhat(facts)}: ${uncountable}.`,
      sqlstate: '42501',
      warnings,
      dryRun,
    };
  }
  const what = {
    ...(rowLimits.length > 0 && { rowsWhat: rowsWhat(facts) }),
    ...(approved.length > 0 && { approved }),
  };
  return warnings.length > 0
    ? { outcome: 'allow-with-warnings', warnings, dryRun, rowLimits, ...what }
    : { outcome: 'allow', dryRun, rowLimits, ...what };
}

/** The statement a row count is about: the first that writes, else the first. */
function rowsWhat(facts: StatementFacts): string {
  const writing = facts.statements.find((s) => s.tablesWritten.length > 0) ?? facts.statements[0];
  return writing ? describe(writing) : 'the statement';
}

/** A row-limit rule applies to a statement writing a table it names, or whose writes cannot all be named. */
function limitApplies(
  rule: GuardrailRuleSpec,
  facts: StatementFacts,
  identity: Identity,
  guardrail: GuardrailDocumentType,
  context: DecisionContext,
): boolean {
  if (!selectorsMatch(rule, identity, guardrail, context)) return false;
  if (rule.tables === undefined) return true;
  const patterns = rule.tables;
  const opaque =
    !facts.parsed ||
    facts.tablesWritten.length === 0 ||
    facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement');
  return opaque || facts.tablesWritten.some((table) => patterns.some((p) => tableMatches(p, table)));
}

function rowLimitOf(guardrail: GuardrailDocumentType, rule: GuardrailRuleSpec): RowLimit {
  return {
    guardrail: guardrail.metadata.name,
    rule: rule.name,
    action: rule.action ?? 'block',
    dryRun: inDryRun(guardrail, rule),
    ...(rule.maxAffectedRows !== undefined && { perTransaction: rule.maxAffectedRows }),
    ...(rule.maxAffectedRowsPerMinute !== undefined && { perMinute: rule.maxAffectedRowsPerMinute }),
    ...(rule.message !== undefined && { advice: rule.message }),
  };
}

/** A rule records without acting when it, or its whole Guardrail, is in dryRun. */
function inDryRun(guardrail: GuardrailDocumentType, rule: GuardrailRuleSpec): boolean {
  return guardrail.spec.mode === 'dryRun' || rule.mode === 'dryRun';
}

function ruleMatches(
  rule: GuardrailRuleSpec,
  finding: Finding,
  identity: Identity,
  guardrail: GuardrailDocumentType,
  context: DecisionContext,
): boolean {
  if (!rule.kinds?.includes(finding.kind)) return false;
  // Findings whose tables cannot be known match every table pattern.
  if (rule.tables !== undefined && finding.tables !== undefined) {
    const tables = finding.tables;
    if (!rule.tables.some((pattern) => tables.some((table) => tableMatches(pattern, table)))) return false;
  }
  return selectorsMatch(rule, identity, guardrail, context);
}

function selectorsMatch(
  rule: GuardrailRuleSpec,
  identity: Identity,
  guardrail: GuardrailDocumentType,
  context: DecisionContext,
): boolean {
  if (
    rule.subjects !== undefined &&
    !anySubjectMatches(rule.subjects, identity, guardrail.metadata.namespace)
  )
    return false;
  if (
    rule.databases !== undefined &&
    !rule.databases.some((pattern) => globMatches(pattern, context.database))
  )
    return false;
  return true;
}

const VERBS: Record<GuardrailAction, string> = {
  block: 'blocked',
  requireApproval: 'requires approval for',
  warn: 'warns about',
};

function approvalDemands(hits: readonly GuardrailHit[], grant: Grant): ApprovalDemand[] {
  const demands: ApprovalDemand[] = [];
  for (const hit of hits) {
    if (demands.some((d) => d.guardrail === hit.guardrail && d.rule === hit.rule)) continue;
    const guardrail = grant.guardrails.find((g) => g.metadata.name === hit.guardrail);
    const rule = guardrail?.spec.rules.find((r) => r.name === hit.rule);
    const namespace = guardrail?.metadata.namespace;
    demands.push({
      guardrail: hit.guardrail,
      rule: hit.rule,
      ...(namespace !== undefined && { namespace }),
      ...(rule?.approval !== undefined && { settings: rule.approval }),
    });
  }
  return demands;
}

function hitOf(
  guardrail: GuardrailDocumentType,
  rule: GuardrailRuleSpec,
  finding: Finding,
  facts: StatementFacts,
): GuardrailHit {
  const action = rule.action ?? 'block';
  const statement = facts.statements[finding.statement];
  const what = statement ? describe(statement) : 'the statement';
  const advice = rule.message ? ` ${rule.message}` : '';
  return {
    guardrail: guardrail.metadata.name,
    rule: rule.name,
    kind: finding.kind,
    action,
    statement: finding.statement,
    message: `Gatehouse guardrail "${guardrail.metadata.name}" (rule ${rule.name}) ${VERBS[action]} ${what}: ${finding.detail}.${advice}`,
  };
}

function describe(statement: StatementFacts['statements'][number]): string {
  return statement.via.length > 0
    ? `${statement.summary} (inside ${statement.via.join(' > ')})`
    : statement.summary;
}

function refusal(
  fields: Pick<Refusal, 'policyKind' | 'guardrail' | 'rule' | 'message'> & { statement?: number },
): Refusal {
  return { outcome: 'refuse', action: 'block', sqlstate: '42501', warnings: [], dryRun: [], ...fields };
}
