import { scanSync, type ViewStmt } from 'libpg-query';
import { parseCached } from './parse-cached.ts';
import { namesOf } from './query-lineage.ts';
import type { CatalogViewEntry } from './types.ts';

/**
 * The catalog entry a `CREATE [OR REPLACE] [TEMP] [RECURSIVE] VIEW` statement defines, so a session
 * can add the views it creates (`CREATE TEMP VIEW v AS SELECT email AS contact FROM customers`).
 * Temporary views go to schema pg_temp; unqualified ones to the first schema of `searchPath`.
 * Returns undefined when the text is not one CREATE VIEW statement.
 */
export function viewFromCreateView(
  sql: string,
  searchPath: readonly string[] = ['public'],
): CatalogViewEntry | undefined {
  const stmts = parseCached(sql);
  const node = stmts?.length === 1 ? stmts[0]!.stmt : undefined;
  if (!node || !('ViewStmt' in node)) return undefined;
  return viewFromStatement(node.ViewStmt, sql, searchPath);
}

/** The entry for a parsed CREATE VIEW, given the text of that one statement. */
export function viewFromStatement(
  stmt: ViewStmt,
  text: string,
  searchPath: readonly string[],
): CatalogViewEntry | undefined {
  const name = stmt.view?.relname;
  if (!name) return undefined;
  const query = queryText(
    text,
    stmt.withCheckOption !== undefined && stmt.withCheckOption !== 'NO_CHECK_OPTION',
  );
  if (!query) return undefined;
  const temporary = stmt.view?.relpersistence === 't';
  const schema = temporary
    ? 'pg_temp'
    : (stmt.view?.schemaname ??
      searchPath.find((entry) => entry !== '$user' && entry !== 'pg_temp') ??
      'public');
  const columns = namesOf(stmt.aliases);
  const definition = query.recursive ? recursiveDefinition(name, columns, query.text) : query.text;
  return {
    schema: schema.startsWith('pg_temp') ? 'pg_temp' : schema,
    name,
    ...(columns.length > 0 ? { columns } : {}),
    definition,
  };
}

/**
 * The query of a CREATE VIEW text: everything after its first top-level AS keyword, without a
 * trailing WITH CHECK OPTION. The parser gives no location for it, so the scanner finds it.
 */
function queryText(text: string, checkOption: boolean): { text: string; recursive: boolean } | undefined {
  let tokens: readonly { start: number; end: number; text: string; keywordKind: number }[];
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return undefined;
  }
  const keyword = (index: number): string | undefined => {
    const token = tokens[index];
    return token && token.keywordKind > 0 ? token.text.toUpperCase() : undefined;
  };
  let depth = 0;
  let as = -1;
  let recursive = false;
  for (let index = 0; index < tokens.length && as < 0; index++) {
    const token = tokens[index]!;
    if (token.text === '(') depth++;
    else if (token.text === ')') depth--;
    else if (depth === 0 && keyword(index) === 'RECURSIVE') recursive = true;
    else if (depth === 0 && keyword(index) === 'AS') as = index;
  }
  const first = tokens[as + 1];
  if (as < 0 || !first) return undefined;
  let end = tokens.length;
  if (checkOption) {
    depth = 0;
    let lastWith = -1;
    for (let index = as + 1; index < tokens.length; index++) {
      const token = tokens[index]!;
      if (token.text === '(') depth++;
      else if (token.text === ')') depth--;
      else if (depth === 0 && keyword(index) === 'WITH') lastWith = index;
    }
    if (lastWith < 0) return undefined;
    end = lastWith;
  }
  // Token offsets count UTF-8 bytes.
  const bytes = Buffer.from(text, 'utf8');
  const stop = end < tokens.length ? tokens[end]!.start : tokens[tokens.length - 1]!.end;
  return { text: bytes.toString('utf8', first.start, stop).trim(), recursive };
}

/** PostgreSQL turns `CREATE RECURSIVE VIEW v (a) AS q` into a view over `WITH RECURSIVE v (a) AS (q)`. */
function recursiveDefinition(name: string, columns: readonly string[], query: string): string {
  const list = columns.map(quoteIdentifier).join(', ');
  return `WITH RECURSIVE ${quoteIdentifier(name)} (${list}) AS (${query}) SELECT ${list} FROM ${quoteIdentifier(name)}`;
}

function quoteIdentifier(name: string): string {
  return '"' + name.replaceAll('"', '""') + '"';
}
