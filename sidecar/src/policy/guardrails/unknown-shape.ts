import type { ApprovalSettingsSpec } from '../../../../crds/guardrail.ts';
import type { Identity } from '../../identity/identity.ts';
import type {
  Finding,
  GuardrailRuleKind,
  StatementFacts,
  StatementKind,
} from '../../sql/analyze/statement-facts.ts';

/** What an `unknown-shape` rule asks of the text's shape (see docs/approvals.md). */
export interface ShapeContext {
  /**
   * Whether a person approved this text's shape (its fingerprint) for this identity and database;
   * undefined when the text has no fingerprint.
   */
  approved(): boolean | undefined;
  /** An unknown-shape rule matched the text: it is recorded for people to approve (the rule's learning). */
  unknown(rule: {
    guardrail: string;
    namespace?: string;
    rule: string;
    approval?: ApprovalSettingsSpec;
  }): void;
}

/**
 * Findings whose meaning a literal can steer: SQL text in a string (dblink, query_to_xml, EXECUTE),
 * role and setting names, file paths, programs, and WHERE clauses a literal comparison makes always
 * true. A shape holds literals as placeholders, so approving one cannot cover these: each such text
 * asks for itself.
 */
const LITERAL_STEERED: ReadonlySet<GuardrailRuleKind> = new Set([
  'dynamic-sql',
  'identity-change',
  'file-access',
  'copy-program',
  'unknown-statement',
  'delete-without-where',
  'update-without-where',
]);

/**
 * Functions whose literal arguments name what they act on: set_config('role', ...) and
 * set_config('search_path', ...), nextval('a') and nextval('b') share a shape.
 */
const VALUE_STEERED_FUNCTIONS: ReadonlySet<string> = new Set(['set_config', 'nextval', 'setval']);

/**
 * Statements whose literals are part of what they do, not data: a setting's value (`SET
 * search_path = secret` is normalised to `SET search_path = $1`), a function's body, a default, a
 * comment, a library's path.
 */
const LITERAL_GRAMMAR: ReadonlySet<StatementKind> = new Set([
  'set',
  'create',
  'alter',
  'drop',
  'grant',
  'revoke',
  'comment',
  'do',
  'load',
  'unknown',
]);

/** Whether an approval of the text's shape may stand for this text (see LITERAL_STEERED). */
export function shapeCoverable(facts: StatementFacts): boolean {
  return (
    facts.parsed &&
    !facts.findings.some((f) => LITERAL_STEERED.has(f.kind)) &&
    !facts.statements.some((s) => LITERAL_GRAMMAR.has(s.kind)) &&
    !facts.functions.some((f) => VALUE_STEERED_FUNCTIONS.has(f.slice(f.lastIndexOf('.') + 1).toLowerCase()))
  );
}

/**
 * The finding of an `unknown-shape` rule, about the tables the text names (when they can be known);
 * null when a person approved the text's shape and no literal in it can change what it does.
 */
export function unknownShape(
  facts: StatementFacts,
  identity: Identity,
  database: string,
  shape: ShapeContext | undefined,
): Finding | null {
  const approved = shape?.approved();
  const coverable = shapeCoverable(facts);
  if (approved === true && coverable) return null;
  const tables =
    facts.parsed && !facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement')
      ? [...new Set([...facts.tablesRead, ...facts.tablesWritten])]
      : undefined;
  const detail =
    approved === undefined
      ? 'it has no shape an approval could cover (Gatehouse cannot fingerprint it)'
      : !coverable
        ? 'a literal in it can change what it does (SQL or names in strings, a setting, a WHERE a literal makes always true), so only an approval of this very text covers it'
        : `no person approved its shape for ${identity.subject} on database "${database}"`;
  return { kind: 'unknown-shape', statement: 0, detail, ...(tables && { tables }) };
}
