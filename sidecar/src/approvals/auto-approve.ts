import {
  AUTO_APPROVE_TESTS,
  type AutoApproveConditionSpec,
  type GuardrailRuleKind,
} from '../../../crds/guardrail.ts';
import type { Identity } from '../identity/identity.ts';
import { globMatches, splitTableName } from '../policy/guardrails/glob.ts';
import { anySubjectMatches } from '../policy/subject-matches.ts';
import { withinWindow } from './approval-window.ts';

/**
 * What the conditions are judged on. `undefined` means the proxy could not establish the fact (the
 * rows were not measured, the tables could not be known): every test that reads it fails.
 */
export interface AutoApproveFacts {
  readonly requester: Identity;
  /** The Guardrail's namespace, for ServiceAccount subjects without one. */
  readonly namespace?: string;
  readonly at: Date;
  /** The kinds of the statement's findings. */
  readonly kinds: readonly GuardrailRuleKind[];
  /** The tables the statement names, as written (`schema.table` or `table`). */
  readonly tables: readonly string[] | undefined;
  readonly affectedRows: number | undefined;
  /** The masked or sensitive columns the statement reads or writes. */
  readonly sensitiveColumns: readonly string[] | undefined;
  /** Whether a request of the requester was denied at or after `since` (epoch ms). */
  readonly deniedSince: (since: number) => boolean;
}

/**
 * The first condition under which the statement is approved without a person, or undefined. Within a
 * condition every test given must hold; a condition with no test approves nothing (the CRD and the
 * policy loader refuse one, this is the last line).
 */
export function autoApproval(
  conditions: readonly AutoApproveConditionSpec[],
  facts: AutoApproveFacts,
): { condition: string } | undefined {
  const met = conditions.find((condition) => holds(condition, facts));
  return met && { condition: met.name };
}

function holds(condition: AutoApproveConditionSpec, facts: AutoApproveFacts): boolean {
  if (!AUTO_APPROVE_TESTS.some((test) => condition[test] !== undefined)) return false;
  const { subjects, windows, kinds, tables, maxAffectedRows, sensitiveColumns, noDenialForHours } = condition;
  if (subjects && !anySubjectMatches(subjects, facts.requester, facts.namespace)) return false;
  if (windows && !windows.some((window) => withinWindow(window, facts.at))) return false;
  if (kinds && !facts.kinds.every((kind) => kinds.includes(kind))) return false;
  if (tables) {
    if (facts.tables === undefined) return false;
    if (!facts.tables.every((table) => tables.some((pattern) => tableWithin(pattern, table)))) return false;
  }
  if (maxAffectedRows !== undefined) {
    if (facts.affectedRows === undefined || facts.affectedRows > maxAffectedRows) return false;
  }
  if (sensitiveColumns === 'none') {
    if (facts.sensitiveColumns === undefined || facts.sensitiveColumns.length > 0) return false;
  }
  if (noDenialForHours !== undefined) {
    if (facts.deniedSince(facts.at.getTime() - noDenialForHours * 3600 * 1000)) return false;
  }
  return true;
}

/**
 * Whether a table as the statement wrote it lies within a pattern, for an allow-list: unlike a
 * guardrail's `tables` (which matches an unqualified table against any schema, to catch more), a
 * pattern with a schema admits only tables written with a matching schema, since search_path could
 * resolve an unqualified name anywhere.
 */
export function tableWithin(pattern: string, table: string): boolean {
  const [patternSchema, patternName] = splitTableName(pattern);
  const [tableSchema, tableName] = splitTableName(table);
  if (!globMatches(patternName, tableName)) return false;
  if (patternSchema === undefined || patternSchema === '*') return true;
  return tableSchema !== undefined && globMatches(patternSchema, tableSchema);
}
