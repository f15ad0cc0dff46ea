import type { StatementClass } from '../../../../crds/database-access.ts';
import type { GuardrailRuleKind } from '../../../../crds/guardrail.ts';

export type { GuardrailRuleKind, StatementClass };

/**
 * What one SQL text does, as far as the PostgreSQL parser lets us see it. Pure data, frozen, shared
 * between sessions through the analysis cache.
 */
export interface StatementFacts {
  /** False when the text does not parse: `statements` then holds one `unknown` statement. */
  readonly parsed: boolean;
  /** Top-level statements in the text (0 for an empty text: only blanks, comments or semicolons). */
  readonly statementCount: number;
  /**
   * Every statement the text would run, top-level and nested (CTE DML, EXPLAIN ANALYZE's statement,
   * COPY's query, PREPARE's body, DO and function bodies, rule actions...), each before the statement
   * that contains it (so the most specific comes first), in text order otherwise.
   */
  readonly statements: readonly StatementFact[];
  /** Union over `statements`. */
  readonly classes: readonly StatementClass[];
  readonly kinds: readonly StatementKind[];
  readonly tablesRead: readonly string[];
  readonly tablesWritten: readonly string[];
  readonly functions: readonly string[];
  /** Everything a guardrail rule can match, most specific first; `multi-statement` comes last. */
  readonly findings: readonly Finding[];
  /** PREPAREs in the text: the session keeps them so a later EXECUTE of the name is judged by them. */
  readonly prepared: readonly PreparedStatement[];
  /** Names of prepared statements EXECUTEd that this text does not PREPARE: see resolveExecutes. */
  readonly unresolvedExecutes: readonly string[];
  /** Names DEALLOCATEd, or '*' for DEALLOCATE ALL (and DISCARD ALL). */
  readonly deallocated: readonly string[];
  /** Cursors the text DECLAREs, with the index in `statements` of each cursor's query. */
  readonly cursors: readonly { readonly name: string; readonly query: number }[];
}

export interface StatementFact {
  /** Coarse statement kind, see StatementKind. */
  readonly kind: StatementKind;
  /** PostgreSQL's command tag for it (`DROP TABLE`, `DELETE`, `CREATE FUNCTION`...). */
  readonly command: string;
  /** The statement in a few words, for messages: `DROP TABLE public.customers`, `DELETE FROM orders`. */
  readonly summary: string;
  /** Index of the top-level statement this one is, or is part of. */
  readonly topLevel: number;
  /** How it is reached from the top level: `[]` there, else e.g. `['EXPLAIN ANALYZE']`, `['DO', 'EXECUTE']`. */
  readonly via: readonly string[];
  /** What it needs a grant for; empty for transaction control and ordinary session settings. */
  readonly classes: readonly StatementClass[];
  /** Tables (and views) read, schema-qualified when the text qualifies them; CTE names excluded. */
  readonly tablesRead: readonly string[];
  /** Tables inserted into, updated, deleted from, merged into, truncated, copied into or created by a query. */
  readonly tablesWritten: readonly string[];
  /** Objects a utility statement acts on: `public.customers` for DROP TABLE, a role for ALTER ROLE... */
  readonly objects: readonly string[];
  /** `table.column` read, where the column's table is plain to see (see ColumnsRead in analyze). */
  readonly columnsRead: readonly string[];
  /** `table.column` assigned by INSERT column lists, UPDATE SET and MERGE actions. */
  readonly columnsWritten: readonly string[];
  /** Functions called, as written with `pg_catalog.` stripped (`pg_read_file`, `myschema.f`). */
  readonly functions: readonly string[];
  /**
   * Operators written (`=`, `###`, `OPERATOR(s.###)` as `s.###`), where a user-defined operator runs
   * the function behind it; absent when none.
   */
  readonly operators?: readonly string[];
  /** Types cast to (`x::d`, `CAST(x AS d)`), where a domain's constraints or a user cast run code. */
  readonly types?: readonly string[];
  /** For EXECUTE: the name of the prepared statement it runs. */
  readonly executes?: string;
  /** UPDATE, DELETE and MERGE's update/delete actions: whether the rows are restricted (effective-where.ts). */
  readonly where?: 'effective' | 'ineffective' | 'absent';
  readonly findings: readonly Finding[];
}

/**
 * Something a guardrail rule can match. Its texts hold identifiers (tables, functions, settings,
 * prepared statement names) but never a literal value from the SQL text. When each kind is reported:
 *
 * - drop: DROP of anything (tables, schemas, databases, roles, DROP OWNED...), ALTER TABLE ... DROP
 *   COLUMN/CONSTRAINT.
 * - truncate: TRUNCATE.
 * - delete-without-where / update-without-where: DELETE or UPDATE (or MERGE ... THEN DELETE/UPDATE)
 *   whose WHERE (join or WHEN condition) does not restrict the rows, see effective-where.ts.
 * - alter: ALTER of anything, RENAME, ALTER SYSTEM, REASSIGN OWNED.
 * - grant: GRANT, REVOKE (privileges or roles), ALTER DEFAULT PRIVILEGES, CREATE ROLE, ALTER ROLE.
 * - multi-statement: see assemble-facts.ts; several statements that do something, one changing it.
 * - dynamic-sql: DO, functions that run SQL text (query_to_xml, dblink..., ts_stat), EXECUTE of
 *   strings built at run time, bodies in languages or shapes that cannot be analysed; and, once the
 *   catalog's stored code is reached (sql/code-reach.ts), calls of routines it does not know.
 * - file-access: COPY to or from a server file or program, file functions (pg_read_file, lo_import,
 *   lo_export, pg_ls_dir...), views of configuration files, LOAD, CREATE TABLESPACE, C-language
 *   functions, foreign tables and servers with a filename or program option.
 * - copy-program: COPY ... PROGRAM, and program options of foreign tables (also file-access).
 * - identity-change: SET ROLE and SESSION AUTHORIZATION (in any spelling, also as a function's SET
 *   clause), set_config() of role or session_authorization or of a name not known until run time
 *   (pg_dump's `set_config(name, ...) FROM pg_settings WHERE name = 'x'` names x, and passes only for
 *   the harmless settings of function-catalog.ts), SECURITY DEFINER functions. RESET ROLE, RESET SESSION AUTHORIZATION and DISCARD ALL are not:
 *   they return to the login identity, which every other change away from is refused.
 * - unknown-statement: text the parser rejects or that nests too deeply to parse safely, statement
 *   types Gatehouse does not know, EXECUTE of a prepared statement it has not seen prepared.
 */
export interface Finding {
  readonly kind: GuardrailRuleKind;
  /** Index in StatementFacts.statements. */
  readonly statement: number;
  /** Why the statement matches, as a clause: `it has no WHERE clause`. */
  readonly detail: string;
  /**
   * The tables this finding concerns, for rules restricted by `tables`; absent when they cannot be
   * known (dynamic SQL, identity changes, file access, DROP SCHEMA...), which matches any pattern.
   */
  readonly tables?: readonly string[];
}

export interface PreparedStatement {
  readonly name: string;
  /** What EXECUTE of the name runs. */
  readonly facts: StatementFacts;
}

export type StatementKind =
  | 'select'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'truncate'
  | 'copy'
  | 'explain'
  | 'create'
  | 'alter'
  | 'drop'
  | 'grant'
  | 'revoke'
  | 'comment'
  | 'set'
  | 'reset'
  | 'show'
  | 'transaction'
  | 'prepare'
  | 'execute'
  | 'deallocate'
  | 'declare-cursor'
  | 'fetch'
  | 'close-cursor'
  | 'do'
  | 'call'
  | 'lock'
  | 'listen'
  | 'notify'
  | 'load'
  | 'maintenance'
  | 'discard'
  | 'refresh'
  | 'unknown';
