import type { StatementKind } from '../sql/analyze/statement-facts.ts';
import type { ToolDialect } from './dialects.ts';

/** Longest SQL argument a tool takes: an agent's statement, not a dump. */
export const MAX_SQL_CHARS = 100_000;

/** A tool argument the MCP server refuses before anything is sent to the proxy. */
export class ToolArgumentError extends Error {
  override readonly name = 'ToolArgumentError';
}

/** Top-level statements `query` runs: reads, answered in a READ ONLY transaction. */
const READ_KINDS: ReadonlySet<StatementKind> = new Set(['select', 'show']);

/**
 * The `sql` argument of `query`, checked with the proxy's own analyser of the database's language: exactly one
 * statement, a SELECT (or SHOW) that needs no class but `read`, nothing nested that writes, locks or
 * runs code Gatehouse cannot see. This is the tool's promise ("reads only"), kept before sending;
 * the proxy then judges the statement again for this identity, and the READ ONLY transaction it runs
 * in is a third line. Returns the text unchanged.
 */
export function readOnlySql(sql: string, dialect: ToolDialect): string {
  const facts = oneStatement(sql, 'query', dialect);
  const top = facts.statements.filter((s) => s.via.length === 0);
  for (const statement of facts.statements) {
    if (!READ_KINDS.has(statement.kind))
      throw new ToolArgumentError(
        `query runs reads only, and this is ${describe(statement.command)}${top.includes(statement) ? '' : ' inside a read'}: use execute for changes`,
      );
  }
  const refusal = dialect.readRefusal(facts, 'query');
  if (refusal) throw new ToolArgumentError(refusal);
  const other = facts.classes.filter((c) => c !== 'read');
  if (other.length > 0)
    throw new ToolArgumentError(
      `query runs reads only, and this statement needs ${other.join(', ')} (${facts.findings.map((f) => f.kind).join(', ') || 'it calls code that may change data'}): use execute`,
    );
  return sql;
}

/**
 * The `sql` argument of `explain`: one SELECT, INSERT, UPDATE, DELETE (or MERGE); returns `EXPLAIN sql`,
 * and whether the statement reads only (so it may be planned in a READ ONLY transaction on any database).
 */
export function explainSql(sql: string, dialect: ToolDialect): { sql: string; read: boolean } {
  const facts = oneStatement(sql, 'explain', dialect);
  const top = facts.statements.find((s) => s.via.length === 0);
  if (!top || !dialect.plannable.has(top.kind))
    throw new ToolArgumentError(
      `explain plans one ${[...dialect.plannable].map((k) => k.toUpperCase()).join(', ')}, not ${describe(top?.command)}`,
    );
  const refusal = dialect.readRefusal(facts, 'explain');
  if (refusal) throw new ToolArgumentError(refusal);
  const explain = `EXPLAIN ${sql}`;
  // The composed text is judged too: it must still be one plain EXPLAIN (never ANALYZE, which runs).
  const composed = dialect.analyse(explain);
  if (!composed.parsed || composed.statementCount !== 1 || !dialect.plainExplain(composed))
    throw new ToolArgumentError('explain could not compose one EXPLAIN statement from this text');
  return { sql: explain, read: top.kind === 'select' };
}

/**
 * The `sql` argument of `execute`: any text the proxy may judge, within the size bound; `single`
 * when it is one statement (sent alone, through the extended protocol).
 */
export function executableSql(sql: string, dialect: ToolDialect): { sql: string; single: boolean } {
  checkSize(sql);
  if (sql.trim() === '') throw new ToolArgumentError('sql is empty');
  const facts = dialect.analyse(sql);
  return { sql, single: facts.parsed && facts.statementCount === 1 };
}

/** `table` or `schema.table`, each part a plain identifier or a quoted one (`"` or `` ` ``, as the database quotes). */
export interface TableName {
  readonly schema?: string;
  readonly name: string;
}

const PLAIN = String.raw`[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*`;
const TABLE = {
  '"': new RegExp(`^(${PLAIN}|"(?:[^"]|"")+")(?:\\.(${PLAIN}|"(?:[^"]|"")+"))?$`, 'u'),
  '`': new RegExp(`^(${PLAIN}|\`(?:[^\`]|\`\`)+\`)(?:\\.(${PLAIN}|\`(?:[^\`]|\`\`)+\`))?$`, 'u'),
};

export function tableName(text: string, dialect: ToolDialect): TableName {
  const match = TABLE[dialect.quote].exec(text.trim());
  if (!match || text.length > 200)
    throw new ToolArgumentError(
      `table must be a table name, or schema.table (quote a name with other characters in ${dialect.quote})`,
    );
  const first = identifier(match[1]!, dialect);
  return match[2] === undefined ? { name: first } : { schema: first, name: identifier(match[2], dialect) };
}

function identifier(part: string, dialect: ToolDialect): string {
  // PostgreSQL folds unquoted names to lower case; quoted ones are taken as written.
  const q = dialect.quote;
  return part.startsWith(q) ? part.slice(1, -1).replaceAll(q + q, q) : dialect.fold(part);
}

function oneStatement(sql: string, tool: string, dialect: ToolDialect) {
  checkSize(sql);
  const facts = dialect.analyse(sql);
  if (!facts.parsed)
    throw new ToolArgumentError(
      `${tool}: the statement does not parse as ${dialect.name}, so it is not sent`,
    );
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
