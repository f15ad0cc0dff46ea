import type { RowJudgement } from '../../policy/guardrails/row-limits.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import { ServerStatus } from './constants.ts';
import { PayloadReader } from './packet-io.ts';

/**
 * How the MySQL side measures what a statement changed, for Guardrail row limits (row-limits.ts).
 *
 * The count is the session's `Handler_update` + `Handler_delete` before and after the statement: the
 * server bumps them for every row an UPDATE, DELETE, REPLACE or ON DUPLICATE KEY UPDATE really changed,
 * in the statement and in the triggers it fires (MariaDB keeps its internal temporary tables apart in
 * `Handler_tmp_*`). Measured on MariaDB 10.11, they miss two things, which are therefore refused under
 * an enforcing limit instead of counted:
 * - rows InnoDB changes for a foreign key's ON DELETE/UPDATE CASCADE or SET NULL (the handler sees only
 *   the parent row): a write that reaches a table other tables reference with such an action;
 * - non-transactional engines (MyISAM, Aria, MEMORY...): MyISAM empties a table without counting a row,
 *   and none of them can be rolled back when a count is over the limit.
 * `information_schema.INNODB_TRX.trx_rows_modified` does count cascades, but it counts inserts too,
 * needs the PROCESS privilege, and is a cache refreshed at most every 100 ms: read right after a
 * statement it may not show it at all, which no limit can rest on.
 */

/** The counters, read in the text protocol as one row with one column. */
export function counterQuery(mariadb: boolean): string {
  const table = mariadb ? 'information_schema.SESSION_STATUS' : 'performance_schema.session_status';
  return `SELECT CAST(SUM(VARIABLE_VALUE) AS CHAR) FROM ${table} WHERE VARIABLE_NAME IN ('HANDLER_UPDATE', 'HANDLER_DELETE', 'Handler_update', 'Handler_delete')`;
}

/** The savepoint a statement in the client's transaction runs under; no client names one so. */
export const SAVEPOINT = '`gatehouse row limit`';

/** The counter value of a text-protocol row of counterQuery, or undefined for NULL or garbage. */
export function counterValue(row: Buffer): number | undefined {
  if (row[0] === 0xfb) return undefined;
  const text = new PayloadReader(row).lenencBytes().toString('latin1');
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** The tables of the server, as far as row limits need them. */
export interface MysqlTableCatalog {
  /** `schema.table` → whether its engine is transactional. */
  readonly transactional: ReadonlyMap<string, boolean>;
  /** `schema.table` of tables that a foreign key with a cascading action (CASCADE, SET NULL/DEFAULT) references. */
  readonly cascadeParents: ReadonlySet<string>;
}

/** Base tables with their engine's transactionality, outside the server's own schemas. */
export const TABLES_QUERY =
  "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, e.TRANSACTIONS FROM information_schema.TABLES t LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE WHERE t.TABLE_TYPE <> 'VIEW' AND t.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')";

/** Tables a foreign key with a cascading action references. */
export const CASCADES_QUERY =
  "SELECT UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION')";

type Rows = readonly (readonly (string | null)[])[];

export function buildTableCatalog(tables: Rows, cascades: Rows): MysqlTableCatalog {
  const transactional = new Map<string, boolean>();
  for (const [schema, name, transactions] of tables)
    if (schema != null && name != null) transactional.set(`${schema}.${name}`, transactions === 'YES');
  const cascadeParents = new Set<string>();
  for (const [schema, name] of cascades)
    if (schema != null && name != null) cascadeParents.add(`${schema}.${name}`);
  return { transactional, cascadeParents };
}

/** Statement kinds that commit or end a transaction in MySQL (implicitly or not), or may. */
const ENDS_TRANSACTION: ReadonlySet<string> = new Set([
  'transaction',
  'create',
  'alter',
  'drop',
  'truncate',
  'grant',
  'revoke',
  'lock',
  'maintenance',
  'unknown',
]);

/** Kinds of statement that may update or delete rows when they run (INSERT: REPLACE, ON DUPLICATE KEY UPDATE, triggers). */
const CHANGING_KINDS: ReadonlySet<string> = new Set([
  'update',
  'delete',
  'insert',
  'merge',
  'truncate',
  'call',
  'execute',
  'load',
  'copy',
  'unknown',
]);

/** A statement inside a definition (CREATE PROCEDURE, TRIGGER, EVENT, VIEW...) that does not run now. */
function defined(s: StatementFacts['statements'][number]): boolean {
  const outer = s.via[0];
  return (
    outer !== undefined && /^(CREATE|ALTER)\b/i.test(outer) && !/^CREATE (TEMPORARY )?TABLE\b/i.test(outer)
  );
}

/**
 * Whether the statement, run now, may update or delete existing rows: what needs counting. A CREATE
 * PROCEDURE whose body deletes changes no row yet; the body is counted when a CALL runs it. A CREATE
 * TABLE fills a new table (inserts are not counted); DROP, ALTER and TRUNCATE do change existing rows.
 */
export function needsCount(facts: StatementFacts): boolean {
  if (!facts.parsed || facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement'))
    return true;
  return facts.statements.some(
    (s) => !defined(s) && (CHANGING_KINDS.has(s.kind) || (s.kind !== 'create' && s.tablesWritten.length > 0)),
  );
}

/**
 * Why the rows the statement changes cannot be counted before they are kept, or undefined when they
 * can. `facts` are the statement's with the stored code it runs; unqualified names are in `database`.
 * `unknown` is set when a written table is not in the catalog (a reload may tell).
 */
export function unmeasurable(
  facts: StatementFacts,
  catalog: MysqlTableCatalog | undefined,
  database: string,
): { reason: string; unknown?: true } | undefined {
  if (!facts.parsed || facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement'))
    return { reason: 'it runs SQL Gatehouse cannot see, whose tables it cannot check' };
  for (const s of facts.statements) {
    if (defined(s)) continue;
    const autocommit = s.kind === 'set' && /autocommit|completion_type/i.test(s.summary);
    if (ENDS_TRANSACTION.has(s.kind) || autocommit)
      return {
        reason: `it ends or commits the transaction (${s.command}) in the same text, before its count could be checked`,
      };
  }
  if (!catalog) return { reason: 'no catalog of the tables could be loaded' };
  // Only updates and deletes of a parent cascade: a plain INSERT (no REPLACE, no ON DUPLICATE KEY
  // UPDATE) adds rows and changes none of its children.
  const changingExisting = new Set<string>();
  for (const s of facts.statements)
    if (!defined(s) && !(s.kind === 'insert' && s.command === 'INSERT'))
      for (const table of s.tablesWritten) changingExisting.add(qualified(table, database));
  for (const table of facts.tablesWritten) {
    const key = qualified(table, database);
    const transactional = catalog.transactional.get(key);
    if (transactional === undefined)
      return { reason: `it writes ${table}, which is no base table Gatehouse knows`, unknown: true };
    if (!transactional)
      return {
        reason: `it writes ${table}, whose storage engine is not transactional, so nothing it changed could be rolled back`,
      };
    if (catalog.cascadeParents.has(key) && changingExisting.has(key))
      return {
        reason: `it writes ${table}, which foreign keys reference with ON DELETE/UPDATE CASCADE or SET NULL, and the database does not count the rows a cascade changes`,
      };
  }
  return undefined;
}

function qualified(table: string, database: string): string {
  return table.includes('.') ? table : `${database}.${table}`;
}

/** The OK or EOF payload with the status flags given, for a result the client sees after the proxy's COMMIT. */
export function withStatus(payload: Buffer, status: number): Buffer {
  const copy = Buffer.from(payload);
  if (copy[0] === 0xfe && copy.length === 5) {
    copy.writeUInt16LE(status, 3);
    return copy;
  }
  const r = new PayloadReader(copy, 1);
  r.lenenc();
  r.lenenc();
  const at = copy.length - r.remaining;
  if (r.remaining >= 2) copy.writeUInt16LE(status, at);
  return copy;
}

/** The status flags the client sees once the proxy's own transaction has committed. */
export function outsideTransaction(status: number): number {
  return status & ~ServerStatus.IN_TRANS;
}

/** The statement for a row-limit message: its top-level statements in a few words, never values. */
export function describeWrite(facts: StatementFacts): string {
  const summaries = facts.statements.filter((s) => s.via.length === 0).map((s) => s.summary);
  if (summaries.length === 0) return 'the statement';
  return summaries.length > 3 ? `${summaries.slice(0, 3).join('; ')}; ...` : summaries.join('; ');
}

/** The audit notes of limits a count passed over without refusing: warnings and dry runs. */
export function limitNotes(judged: RowJudgement): string[] {
  const over = (h: RowJudgement['warnings'][number]) =>
    `${h.count} rows ${h.scope === 'minute' ? 'in a minute ' : ''}over ${h.max}`;
  return [
    ...judged.warnings.map((h) => `warning: ${h.limit.guardrail}/${h.limit.rule}: ${over(h)}`),
    ...judged.dryRun.map(
      (h) => `dry run: ${h.limit.guardrail}/${h.limit.rule} would ${h.limit.action}: ${over(h)}`,
    ),
  ];
}
