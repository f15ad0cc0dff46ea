import type { Identity } from '../identity/identity.ts';
import type { Refused } from '../policy/gates/session-gate.ts';
import { approvalKey } from '../policy/guardrails/decide.ts';
import { parametersHash } from './approval-request.ts';
import type { HeldStatement, HoldingRule } from './hold.ts';
import type { Measured } from './impact-plan.ts';

/**
 * The held statement a refusal describes, or undefined when no approval can release it: the refusal
 * is not one approval would lift, or a rule that holds it names no approvers. Both protocols build
 * theirs here, from the text as the client sent it and the parameters it bound.
 */
export function heldStatement(
  refused: Refused,
  statement: {
    readonly identity: Identity;
    readonly database: string;
    readonly sql: string;
    readonly parameters?: readonly (Buffer | null)[];
    readonly formats?: readonly number[];
    readonly fingerprint: string | null;
    readonly shape: string | null;
  },
): HeldStatement | undefined {
  const held = refused.held;
  if (!held || held.demands.length === 0) return undefined;
  const rules: HoldingRule[] = [];
  for (const demand of held.demands) {
    const settings = demand.settings;
    if (!settings) return undefined;
    rules.push({
      guardrail: demand.guardrail,
      rule: demand.rule,
      ...(demand.namespace !== undefined && { namespace: demand.namespace }),
      approvers: settings.approvers,
      allowSelfApproval: settings.allowSelfApproval ?? false,
      waitSeconds: settings.waitSeconds ?? 120,
      ttlSeconds: settings.ttlSeconds ?? 900,
      ...(settings.notify && { notify: settings.notify }),
      autoApprove: settings.autoApprove ?? [],
    });
  }
  return {
    binding: {
      subject: statement.identity.subject,
      database: statement.database,
      statement: statement.sql,
      parametersHash: parametersHash(statement.parameters ?? [], statement.formats),
    },
    fingerprint: statement.fingerprint,
    shape: statement.shape,
    requester: statement.identity,
    rules,
    impact: {
      ...(held.tables && { tables: held.tables }),
      ...(held.sensitiveColumns && { sensitiveColumns: held.sensitiveColumns }),
    },
    ...(held.facts && { statementFacts: held.facts }),
    // Until the protocol measures the rows, the conditions that read them do not hold.
    facts: {
      kinds: held.kinds,
      tables: held.tables,
      affectedRows: undefined,
      sensitiveColumns: held.sensitiveColumns,
    },
  };
}

/**
 * The held statement with what its protocol measured on the session's own connection: shown to the
 * approver, and the count `maxAffectedRows` conditions read (absent, they do not hold).
 */
export function withMeasured(held: HeldStatement, measured: Measured): HeldStatement {
  return {
    ...held,
    impact: { ...held.impact, ...measured },
    facts: { ...held.facts, affectedRows: measured.affectedRows },
  };
}

/** The rules to judge the statement past once it is released. */
export function releasedRules(held: HeldStatement): ReadonlySet<string> {
  return new Set(held.rules.map((rule) => approvalKey(rule.guardrail, rule.rule)));
}
