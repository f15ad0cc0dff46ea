import type { StatementFact, StatementFacts } from '../../sql/analyze/statement-facts.ts';

/**
 * What masking must know of a statement beyond its result: whether it moves masked values somewhere
 * the rules that mask them no longer reach. Lineage answers this for the statement's own writes
 * (`INSERT ... SELECT`, `UPDATE ... SET`); what it cannot see is the schema and the stored code:
 *
 * - DDL on a table that holds masked columns. A MaskingPolicy names columns (`customers.ssn`):
 *   renaming the column or the table, moving it to another schema, retyping it with a USING
 *   expression or adding a generated column over it takes its values out of the rule that names them,
 *   and an index, constraint, trigger, rule or row policy over it computes on the values (an error
 *   or a failed insert then answers a question about them). Refused, whatever the change: a schema
 *   change to such a table is for an identity that sees its values in clear.
 * - Stored code that runs with masked values in reach: a trigger of a table the statement writes sees
 *   its rows (NEW, OLD), and code that reads a masked table sees that table. Such code may only read:
 *   a write, a call Gatehouse cannot see into, or a function not known to be free of side effects
 *   (`pg_notify`, `set_config`) could carry the values where they are shown in clear.
 * - DDL that keeps a query or code reading a table with masked columns: a view or rule over it, a
 *   function or trigger body, a column default or index expression calling a function that reads it.
 *   What the schema keeps runs later without the masks: a default fills a clear column, and a
 *   statement prepared before a view was redefined keeps the old definition's masks. Where lineage
 *   does not trace CREATE TABLE ... SELECT (MySQL), a new table filled from such a table as well.
 * - Server files and programs (COPY TO a file or PROGRAM, pg_read_binary_file, INTO OUTFILE): any
 *   statement with such a finding, whatever it reads, since a program or the database's own files hold
 *   every value in clear.
 */

/** Whether a relation, as the analysis names it (`t`, `s.t`), may hold columns this identity sees masked. */
export type MaybeMasked = (relation: string) => boolean;

export interface MoveChecks {
  readonly maybeMasked: MaybeMasked;
  /** Functions known to have no effect but their result (the dialect's list, lower case). */
  readonly pureFunctions: ReadonlySet<string>;
  /** Whether lineage traces CREATE TABLE ... AS SELECT into the new table's columns (PostgreSQL's does). */
  readonly ctasTraced: boolean;
}

/** PostgreSQL's commands that make a table from a query, which its lineage traces column by column. */
const TRACED_CREATES: ReadonlySet<string> = new Set(['CREATE TABLE AS', 'SELECT INTO']);

/** Kinds of DDL that cannot move or compute on a table's values: removing it, or a comment on it. */
const DDL_WITHOUT_VALUES: ReadonlySet<string> = new Set(['drop', 'comment']);

/** Server files and programs: what reaches them leaves every mask behind. */
const OUTSIDE_THE_DATABASE: ReadonlySet<string> = new Set(['file-access', 'copy-program']);

/** Why the statement must not run for an identity that sees masked values; undefined when it may. */
export function maskedDataMove(facts: StatementFacts, checks: MoveChecks): string | undefined {
  const { maybeMasked } = checks;
  const byTopLevel = new Map<number, StatementFact[]>();
  for (const fact of facts.statements) {
    const outside = fact.findings.find((f) => OUTSIDE_THE_DATABASE.has(f.kind));
    // A server file or program can hold anything the server can read, its data files included.
    if (outside !== undefined)
      return `${outside.detail}, which no mask reaches (${fact.summary}); this identity sees some columns masked`;
    const group = byTopLevel.get(fact.topLevel);
    if (group) group.push(fact);
    else byTopLevel.set(fact.topLevel, [fact]);
  }
  for (const group of byTopLevel.values()) {
    const topLevel = group.filter((fact) => fact.via.length === 0);
    const code = group.filter((fact) => fact.via.length > 0);
    // Nested too: DDL a DO block or a body runs is as much a schema change as DDL sent as text.
    const schemaChanges = group.filter(
      (fact) => fact.classes.includes('ddl') && !DDL_WITHOUT_VALUES.has(fact.kind),
    );
    for (const fact of schemaChanges) {
      const table = [...fact.objects, ...fact.tablesWritten].find(maybeMasked);
      if (table !== undefined)
        return `it changes ${table}, whose columns this identity sees masked (${fact.summary}): a schema change can move masked values out of the rules that mask them or compute on them; make schema changes as an identity that sees the table in clear`;
    }
    const traced = (fact: StatementFact) => checks.ctasTraced && TRACED_CREATES.has(fact.command);
    // MySQL's CREATE TEMPORARY TABLE ... SELECT is no DDL by class, yet its table may take a base
    // table's name for the session (lineage would then read it as that table): it counts too.
    const keeps = [
      ...schemaChanges,
      ...group.filter((fact) => fact.kind === 'create' && fact.tablesWritten.length > 0),
    ].find((fact) => !traced(fact));
    if (keeps) {
      // What the schema keeps (a view's or rule's query, a body, a default or an index expression and
      // the functions they call) runs later, for anyone, under masks planned before or not at all.
      const source = code.flatMap((fact) => fact.tablesRead).find(maybeMasked);
      if (source !== undefined)
        // A table filled from a query (MySQL's CREATE TABLE ... SELECT; views are queries kept, not copies).
        return /\bTABLE\b/.test(keeps.command) &&
          code.some((fact) => fact.kind === 'select' && fact.via[0] === keeps.command)
          ? `it would fill ${keeps.tablesWritten.join(', ')} from ${source}, whose columns this identity sees masked, and the new table would show them in clear; select the columns instead, which masks them`
          : `it keeps in the schema a query or code that reads ${source}, whose columns this identity sees masked (${keeps.summary}): it would run later without those masks; define it as an identity that sees the table in clear`;
    }
    if (code.length === 0) continue;
    const inReach =
      code.flatMap((fact) => fact.tablesRead).find(maybeMasked) ??
      topLevel.flatMap((fact) => fact.tablesWritten).find(maybeMasked);
    if (inReach === undefined) continue;
    for (const fact of code) {
      const effect = sideEffect(fact, checks.pureFunctions);
      if (effect !== undefined)
        return `it runs ${fact.via.join(' → ')}, which has masked values of ${inReach} in reach and ${effect}: the code could carry them where they are shown in clear`;
    }
  }
  return undefined;
}

/** What a statement of stored code does besides reading, in a few words; undefined when it only reads. */
function sideEffect(fact: StatementFact, pure: ReadonlySet<string>): string | undefined {
  if (fact.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement'))
    return 'runs code Gatehouse cannot see into';
  if (fact.tablesWritten.length > 0) return `writes ${fact.tablesWritten.join(', ')}`;
  const impure = fact.functions.find((name) => !pure.has(unqualified(name)));
  if (impure !== undefined) return `calls ${impure}(), which is not known to be free of side effects`;
  if (fact.classes.some((c) => c !== 'read')) return `runs ${fact.summary}`;
  return undefined;
}

function unqualified(name: string): string {
  const lower = name.toLowerCase();
  return lower.startsWith('pg_catalog.') ? lower.slice('pg_catalog.'.length) : lower;
}

/**
 * The MaybeMasked of the names of the tables with masked columns, compared without regard to case or
 * schema: a name the analysis gives qualified or not matches any schema's table of that name, which
 * may refuse more than needed but never less. `tables` is asked once, on the first question (most
 * statements ask none); undefined there (no catalog yet) makes every relation maybe masked.
 */
export function maybeMaskedAmong(tables: () => Iterable<string> | undefined): MaybeMasked {
  let names: readonly string[] | undefined | null = null;
  return (relation) => {
    if (names === null) {
      const listed = tables();
      names = listed && [...new Set([...listed].map((table) => table.toLowerCase()))];
    }
    if (names === undefined) return true;
    const written = relation.toLowerCase().replaceAll('"', '').replaceAll('`', '');
    // A quoted name may hold dots itself: compare whole trailing parts rather than split.
    return names.some((name) => written === name || written.endsWith(`.${name}`));
  };
}
