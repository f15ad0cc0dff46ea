import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import type { StatementKind } from '../sql/analyze/statement-facts.ts';

/** Longest SQL argument a tool takes: an agent's statement, not a dump. */
export const MAX_SQL_CHARS = 100_000;

/** A tool argument the MCP server refuses before anything is sent to the proxy. */
export class ToolArgumentError extends Error {
  override readonly name = 'ToolArgumentError';
}

/** Top-level statements `query` runs: reads, answered in a READ ONLY transaction. */
const READ_KINDS: ReadonlySet<StatementKind> = new Set(['select', 'show']);
/** Statements `explain` plans (never runs: EXPLAIN without ANALYZE). */
const PLANNABLE_KINDS: ReadonlySet<StatementKind> = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'merge',
]);

/**
 * The `sql` argument of `query`, checked with the proxy's own PostgreSQL analyser: exactly one
 * statement, a SELECT (or SHOW) that needs no class but `read`, nothing nested that writes, locks or
 * runs code Gatehouse cannot see. This is the tool's promise ("reads only"), kept before sending;
 * the proxy then judges the statement again for this identity, and the READ ONLY transaction it runs
 * in is a third line. Returns the text unchanged.
 */
export function readOnlySql(sql: string): string {
  const facts = oneStatement(sql, 'query');
  const top = facts.statements.filter((s) => s.via.length === 0);
  for (const statement of facts.statements) {
    if (!READ_KINDS.has(statement.kind))
      throw new ToolArgumentError(
        `query runs reads only, and this is ${describe(statement.command)}${top.includes(statement) ? '' : ' inside a read'}: use execute for changes`,
      );
  }
  // set_config changes the session (its transaction's mode included) while reading like a SELECT.
  if (facts.functions.some((f) => f.toLowerCase().endsWith('set_config')))
    throw new ToolArgumentError('query runs reads only, and set_config changes a setting: use execute');
  const other = facts.classes.filter((c) => c !== 'read');
  if (other.length > 0)
    throw new ToolArgumentError(
      `query runs reads only, and this statement needs ${other.join(', ')} (${facts.findings.map((f) => f.kind).join(', ') || 'it calls code that may change data'}): use execute`,
    );
  return sql;
}

/** The `sql` argument of `explain`: one SELECT, INSERT, UPDATE, DELETE or MERGE; returns `EXPLAIN sql`. */
export function explainSql(sql: string): string {
  const facts = oneStatement(sql, 'explain');
  const top = facts.statements.find((s) => s.via.length === 0);
  if (!top || !PLANNABLE_KINDS.has(top.kind))
    throw new ToolArgumentError(
      `explain plans one SELECT, INSERT, UPDATE, DELETE or MERGE, not ${describe(top?.command)}`,
    );
  const explain = `EXPLAIN ${sql}`;
  // The composed text is judged too: it must still be one plain EXPLAIN (never ANALYZE, which runs).
  const composed = analyzeStatement(explain);
  const head = composed.statements.find((s) => s.via.length === 0);
  if (!composed.parsed || composed.statementCount !== 1 || head?.kind !== 'explain')
    throw new ToolArgumentError('explain could not compose one EXPLAIN statement from this text');
  return explain;
}

/**
 * The `sql` argument of `execute`: any text the proxy may judge, within the size bound; `single`
 * when it is one statement (sent alone, through the extended protocol).
 */
export function executableSql(sql: string): { sql: string; single: boolean } {
  checkSize(sql);
  if (sql.trim() === '') throw new ToolArgumentError('sql is empty');
  const facts = analyzeStatement(sql);
  return { sql, single: facts.parsed && facts.statementCount === 1 };
}

/** `table` or `schema.table`, each part a plain identifier or a double-quoted one. */
export interface TableName {
  readonly schema?: string;
  readonly name: string;
}

const PART = String.raw`(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*|"(?:[^"]|"")+")`;
const TABLE = new RegExp(`^(${PART})(?:\\.(${PART}))?$`, 'u');

export function tableName(text: string): TableName {
  const match = TABLE.exec(text.trim());
  if (!match || text.length > 200)
    throw new ToolArgumentError(
      'table must be a table name, or schema.table (double-quote a name with other characters)',
    );
  const first = identifier(match[1]!);
  return match[2] === undefined ? { name: first } : { schema: first, name: identifier(match[2]) };
}

function identifier(part: string): string {
  // PostgreSQL folds unquoted names to lower case; quoted ones are taken as written.
  return part.startsWith('"') ? part.slice(1, -1).replaceAll('""', '"') : part.toLowerCase();
}

function oneStatement(sql: string, tool: string) {
  checkSize(sql);
  const facts = analyzeStatement(sql);
  if (!facts.parsed)
    throw new ToolArgumentError(`${tool}: the statement does not parse as PostgreSQL, so it is not sent`);
  if (facts.statementCount !== 1)
    throw new ToolArgumentError(
      `${tool} takes exactly one statement, and this text has ${facts.statementCount}`,
    );
  return facts;
}

function checkSize(sql: string): void {
  if (sql.length > MAX_SQL_CHARS)
    throw new ToolArgumentError(`sql is longer than ${MAX_SQL_CHARS} characters`);
}

function describe(command: string | undefined): string {
  return command ? `a ${command} statement` : 'this statement';
}
