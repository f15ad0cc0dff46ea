import { resolveExecutes } from '../analyze/assemble-facts.ts';
import { fromLineage, toLineage, union } from '../lineage/trace.ts';
import type { Lineage } from '../lineage/types.ts';
import type { MysqlStatementFacts } from './analyze-mysql.ts';
import type { MysqlLineageResult } from './lineage-mysql.ts';
import type { MysqlSessionState } from './session-state.ts';

const UNTRACED: Lineage = Object.freeze({ sources: [], wholeRows: [], transformed: true, opaque: true });

/**
 * The session after `facts`' text ran: its sql_mode, prepared statements, handlers, and what its
 * user variables may hold. Pass the text's lineage when it was computed: without it, variables the
 * text assigns are untraceable (and masked wherever they are read).
 */
export function applyMysqlSessionEffects(
  state: MysqlSessionState,
  facts: MysqlStatementFacts,
  lineage?: MysqlLineageResult,
): MysqlSessionState {
  const sqlMode = facts.sqlModeAfter === undefined ? state.sqlMode : facts.sqlModeAfter;
  let userVariables = state.userVariables;
  const assigned = new Map<string, Lineage>();
  if (lineage && !lineage.parseError) {
    for (const statement of lineage.statements)
      for (const v of statement.userVariables) assigned.set(v.name, merge(assigned.get(v.name), v.lineage));
  }
  for (const name of facts.userVariables) if (!assigned.has(name)) assigned.set(name, UNTRACED);
  if (assigned.size > 0) {
    const next = new Map(userVariables);
    for (const [name, value] of assigned) next.set(name, merge(next.get(name), value));
    userVariables = next;
  }
  let prepared = state.prepared;
  if (facts.deallocated.length > 0 || facts.prepared.length > 0) {
    const next = new Map(prepared);
    for (const name of facts.deallocated) next.delete(name);
    for (const p of facts.prepared) next.set(p.name, p);
    prepared = next;
  }
  let handlers = state.handlers;
  if (facts.handlers.length > 0) {
    const next = new Map(handlers);
    for (const h of facts.handlers) next.set(h.name, h.table);
    handlers = next;
  }
  const database = facts.databaseAfter ?? state.database;
  return Object.freeze({ sqlMode, userVariables, prepared, handlers, database });
}

/** Judges EXECUTE of statements PREPAREd in earlier messages of the session by what they prepared. */
export function resolveMysqlExecutes(
  facts: MysqlStatementFacts,
  state: MysqlSessionState,
): MysqlStatementFacts {
  if (facts.unresolvedExecutes.length === 0) return facts;
  const resolved = resolveExecutes(facts, (name) => state.prepared.get(name)?.facts);
  return Object.freeze({ ...facts, ...resolved, prepared: facts.prepared });
}

function merge(seen: Lineage | undefined, added: Lineage): Lineage {
  return seen === undefined ? added : toLineage(union(fromLineage(seen), fromLineage(added)));
}
