import type { Identity } from '../../identity/identity.ts';
import { type Catalog, createCatalog } from '../../sql/lineage/catalog.ts';
import type { CatalogViewEntry } from '../../sql/lineage/types.ts';
import {
  isMetadataRelation,
  METADATA_RELATIONS,
  METADATA_SCHEMA,
} from '../../sql/mysql/metadata-relations.ts';

/**
 * What the proxy asks the server right after its upstream login, before the client's first command:
 * the identity tag, the table catalog (when the session masks) and the settings the session starts
 * with. The answers are read back by the name of the query that asked, so that adding a query cannot
 * shift which rows are taken for the catalog.
 */

/** The rows of one text result, as connectMysqlUpstream returns them. */
export type TextRows = readonly (readonly (string | null)[])[];

export type LoginQueryName = 'identity' | 'catalog' | 'session';

export interface LoginQuery {
  readonly name: LoginQueryName;
  readonly sql: string;
}

/** What the answers to the login queries say. */
export interface LoginFacts {
  /** The server's sql_mode for the session; null when the server did not say. */
  readonly sqlMode: string | null;
  readonly clientCharset: string | null;
  /** The tables of the session's database, when the session masks (the catalog was asked for). */
  readonly catalog: Catalog | undefined;
}

/**
 * The base tables of the session's database and their columns, for lineage, and the columns of the
 * information_schema relations that hold metadata (metadata-relations.ts). Views come from the
 * proxy's stored-code catalog instead (withViews), which is reloaded after DDL through the proxy: a
 * view redefined after this session logged in is read by its new definition.
 */
export const CATALOG_QUERY = `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME WHERE (c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE <> 'VIEW') OR (c.TABLE_SCHEMA = '${METADATA_SCHEMA}' AND c.TABLE_NAME IN (${METADATA_RELATIONS.map((name) => `'${name}'`).join(', ')})) ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`;

/** The settings a session starts with that decide how the server reads statement text. */
export const SESSION_SETTINGS_QUERY = 'SELECT @@SESSION.sql_mode, @@SESSION.character_set_client';

/**
 * Tags the upstream session with the identity, so the database's own logs (general log, processlist,
 * slow log) and queries see it in clear. The literal doubles quotes and backslashes: under either
 * backslash mode it stays one string, so no identity text can change the statement (at worst a
 * backslash shows twice). Run again after COM_RESET_CONNECTION, which drops user variables.
 */
export function identitySetup(identity: Identity, session: string): string[] {
  const literal = (text: string) => `_utf8mb4'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
  return [`SET @gatehouse_identity = ${literal(identity.subject)}, @gatehouse_session = ${literal(session)}`];
}

/** The login queries in the order they are sent: the identity tag, the catalog when masking, the settings. */
export function loginQueries(identity: readonly string[], withCatalog: boolean): LoginQuery[] {
  return [
    ...identity.map((sql) => ({ name: 'identity' as const, sql })),
    ...(withCatalog ? [{ name: 'catalog' as const, sql: CATALOG_QUERY }] : []),
    { name: 'session', sql: SESSION_SETTINGS_QUERY },
  ];
}

/**
 * Reads the answers to `queries` (one result each, in order) by the name of the query. Throws when
 * the number of results is not the number of queries: the rows could belong to another query.
 */
export function readLoginResults(
  queries: readonly LoginQuery[],
  results: readonly TextRows[],
  database: string,
): LoginFacts {
  if (results.length !== queries.length)
    throw new Error(`login queries: ${queries.length} sent, ${results.length} results read`);
  const rowsOf = (name: LoginQueryName): TextRows | undefined => {
    const at = queries.findIndex((q) => q.name === name);
    return at === -1 ? undefined : results[at];
  };
  const [sqlMode = null, clientCharset = null] = rowsOf('session')?.[0] ?? [];
  const catalogRows = rowsOf('catalog');
  return {
    sqlMode,
    clientCharset,
    catalog: catalogRows === undefined ? undefined : catalogOf(catalogRows, database),
  };
}

/** The catalog from the rows of CATALOG_QUERY: unqualified tables are in `database`. */
export function catalogOf(rows: TextRows, database: string): Catalog {
  const tables = new Map<string, { schema: string; name: string; columns: { name: string }[] }>();
  for (const [schema, table, column] of rows) {
    if (schema == null || table == null || column == null) continue;
    const metadata = isMetadataRelation(schema, table);
    const key = `${metadata ? METADATA_SCHEMA : ''}\u0000${table}`;
    let entry = tables.get(key);
    if (!entry) {
      entry = { schema: metadata ? METADATA_SCHEMA : database, name: table, columns: [] };
      tables.set(key, entry);
    }
    entry.columns.push({ name: column });
  }
  return createCatalog({ tables: [...tables.values()], searchPath: [database] });
}

/**
 * The session's lineage catalog: its tables from login, with the views as `views()` gives them now
 * (undefined while they may be outdated: views are then unknown, and what they return is masked). A
 * new Catalog is made only when the views change, since lineage caches its results per Catalog.
 */
export function withViews(
  tables: Catalog | undefined,
  views: () => readonly CatalogViewEntry[] | undefined,
): () => Catalog | undefined {
  let seen: readonly CatalogViewEntry[] | undefined;
  let catalog = tables;
  return () => {
    if (!tables) return undefined;
    const current = views();
    if (current !== seen) {
      seen = current;
      catalog = current
        ? createCatalog({
            tables: [...tables.tables.values()],
            views: current,
            userRoutines: tables.userRoutines,
            searchPath: tables.searchPath,
          })
        : tables;
    }
    return catalog;
  };
}
