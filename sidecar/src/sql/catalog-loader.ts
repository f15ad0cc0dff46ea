import { type Catalog, type CatalogTable, createCatalog } from './lineage/catalog.ts';
import type { CatalogViewEntry } from './lineage/types.ts';

/** Runs read-only SQL on the upstream and returns one result set (text values) per statement. */
export type CatalogQuery = (sql: string) => Promise<(string | null)[][][]>;

const SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')";

/**
 * What lineage needs to know of the database, in one round trip: every relation's columns (system
 * relations included, so that they trace instead of turning opaque), user views with their
 * definitions (expanded by lineage, so a view cannot launder a column), the names of user routines
 * (opaque to lineage), and the search path.
 */
export const CATALOG_SQL = `
SELECT n.nspname, c.relname, c.relkind::text, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid::int
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
 ORDER BY n.nspname, c.relname, a.attnum;
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ${SYSTEM_SCHEMAS};
SELECT DISTINCT p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ${SYSTEM_SCHEMAS};
SELECT current_setting('search_path'), current_user;`;

export async function loadCatalog(query: CatalogQuery): Promise<Catalog> {
  const [columns = [], views = [], routines = [], settings = []] = await query(CATALOG_SQL);
  const viewKeys = new Set(views.map(([schema, name]) => `${schema}.${name}`));
  const tables = new Map<
    string,
    { schema: string; name: string; columns: CatalogTable['columns'][number][] }
  >();
  const viewColumns = new Map<string, string[]>();
  for (const [schema, name, kind, column, type, typeOid] of columns) {
    const key = `${schema}.${name}`;
    if ((kind === 'v' || kind === 'm') && viewKeys.has(key)) {
      viewColumns.set(key, [...(viewColumns.get(key) ?? []), column!]);
      continue;
    }
    let table = tables.get(key);
    if (!table) {
      table = { schema: schema!, name: name!, columns: [] };
      tables.set(key, table);
    }
    table.columns.push({ name: column!, type: type!, typeOid: Number(typeOid) });
  }
  const viewEntries: CatalogViewEntry[] = views.map(([schema, name, definition]) => ({
    schema: schema!,
    name: name!,
    columns: viewColumns.get(`${schema}.${name}`) ?? [],
    definition: definition!,
  }));
  const [searchPath = 'public', user = ''] = settings[0] ?? [];
  return createCatalog({
    tables: [...tables.values()],
    views: viewEntries,
    userRoutines: routines.map(([name]) => name!),
    searchPath: parseSearchPath(searchPath!, user!),
  });
}

/** `"$user", public` → [user, 'public'], as PostgreSQL reads the setting. */
export function parseSearchPath(setting: string, user: string): string[] {
  return setting
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) =>
      part.startsWith('"') && part.endsWith('"')
        ? part.slice(1, -1).replaceAll('""', '"')
        : part.toLowerCase(),
    )
    .map((part) => (part === '$user' ? user : part))
    .filter((part) => part.length > 0);
}
