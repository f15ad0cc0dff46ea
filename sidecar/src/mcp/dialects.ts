import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import type { StatementFacts, StatementKind } from '../sql/analyze/statement-facts.ts';
import { analyzeMysql } from '../sql/mysql/analyze-mysql.ts';
import { MYSQL_PURE_FUNCTIONS } from '../sql/mysql/builtins.ts';

/**
 * What the tools need to know of the database's language: the proxy's own analyser for it, the
 * catalog queries, how names are quoted, and what more `query` must refuse there. Everything else
 * (the tools, the bounds, the answers) is one module for both protocols.
 */
export interface ToolDialect {
  /** For messages: `PostgreSQL`, `MySQL`. */
  readonly name: string;
  analyse(sql: string): StatementFacts;
  /** Reads (`query`, `explain`, the catalog tools) run in this transaction, then are rolled back. */
  readonly beginReadOnly: string;
  /** Tables and views: schema, name, type. */
  readonly listTables: string;
  /** A table's columns, the first column its schema; parameters: the table's name, its schema or null. */
  readonly describeColumns: string;
  /** The statement kinds `explain` plans. */
  readonly plannable: ReadonlySet<StatementKind>;
  /** The quote character of identifiers. */
  readonly quote: '"' | '`';
  /** An unquoted name as the database reads it. */
  fold(name: string): string;
  /** Why `tool` refuses a read the common checks let through (side effects the kinds do not show). */
  readRefusal(facts: StatementFacts, tool: 'query' | 'explain'): string | undefined;
  /**
   * Whether `explain` of an INSERT, UPDATE or DELETE runs in the READ ONLY transaction too. MySQL
   * and MariaDB refuse even EXPLAIN of a write there (error 1792), so on MySQL it runs without one,
   * after the same side-effect checks as `query` (EXPLAIN may evaluate a constant subquery).
   */
  readonly explainWritesReadOnly: boolean;
  /** The composed `EXPLAIN sql` is one plain EXPLAIN, never one that runs the statement. */
  plainExplain(facts: StatementFacts): boolean;
}

export function quoteIdentifier(dialect: ToolDialect, name: string): string {
  const q = dialect.quote;
  return `${q}${name.replaceAll(q, q + q)}${q}`;
}

export const POSTGRES_DIALECT: ToolDialect = {
  name: 'PostgreSQL',
  analyse: (sql) => analyzeStatement(sql),
  beginReadOnly: 'BEGIN TRANSACTION READ ONLY',
  listTables: `SELECT table_schema, table_name, table_type FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  // Without a schema, the table search_path finds, as the probe (and any query) would.
  describeColumns: `SELECT table_schema, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_name = $1 AND table_schema = coalesce($2::text,
  (SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident($1))))
ORDER BY ordinal_position`,
  plannable: new Set(['select', 'insert', 'update', 'delete', 'merge']),
  quote: '"',
  fold: (name) => name.toLowerCase(),
  readRefusal: (facts, tool) =>
    // set_config changes the session (its transaction's mode included) while reading like a SELECT.
    facts.functions.some((f) => f.toLowerCase().endsWith('set_config'))
      ? `${tool} runs reads only, and set_config changes a setting: use execute`
      : undefined,
  explainWritesReadOnly: true,
  plainExplain: (facts) => facts.statements.find((s) => s.via.length === 0)?.kind === 'explain',
};

export const MYSQL_DIALECT: ToolDialect = {
  name: 'MySQL',
  // The session's sql_mode is not known here: text that reads differently under some mode is unknown.
  analyse: (sql) => analyzeMysql(sql, { sqlMode: null }),
  beginReadOnly: 'START TRANSACTION READ ONLY',
  listTables: `SELECT table_schema, table_name, table_type FROM information_schema.tables
WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1, 2`,
  describeColumns: `SELECT table_schema, column_name, column_type, is_nullable, column_default
FROM information_schema.columns WHERE table_name = ? AND table_schema = coalesce(?, DATABASE())
ORDER BY ordinal_position`,
  plannable: new Set(['select', 'insert', 'update', 'delete']),
  quote: '`',
  fold: (name) => name,
  explainWritesReadOnly: false,
  readRefusal: (facts, tool) => {
    const variables = (facts as { userVariables?: readonly string[] }).userVariables ?? [];
    if (variables.length > 0)
      return `${tool} runs reads only, and this assigns user variables (@${variables.join(', @')}): use execute`;
    // Stored functions, GET_LOCK, NEXTVAL, SLEEP...: the kinds cannot show what a function does, so
    // only built-ins known to compute from their arguments are taken as reads.
    const other = facts.functions.filter((f) => !MYSQL_PURE_FUNCTIONS.has(f.toLowerCase()));
    return other.length > 0
      ? `${tool} runs reads only, and it calls ${other.join(', ')}, which may change data, lock or wait: use execute`
      : undefined;
  },
  // ANALYZE and EXPLAIN ANALYZE run the statement.
  plainExplain: (facts) => {
    const head = facts.statements.find((s) => s.via.length === 0);
    return head?.kind === 'explain' && head.command === 'EXPLAIN';
  },
};
