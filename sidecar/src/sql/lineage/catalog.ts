import type { CatalogViewEntry } from './types.ts';

export interface CatalogColumn {
  readonly name: string;
  /** Type name as `format_type` prints it, and its OID; lineage does not need them, maskers may. */
  readonly type?: string;
  readonly typeOid?: number;
}

export interface CatalogTable {
  readonly schema: string;
  readonly name: string;
  /** In attnum order, dropped columns left out. */
  readonly columns: readonly CatalogColumn[];
}

/**
 * What lineage knows of the upstream database, filled from information_schema/pg_catalog. Build it
 * with `createCatalog`; treat it as immutable (results are cached per Catalog object, so a refresh
 * makes a new one).
 *
 * Relations of pg_catalog and information_schema belong in `tables` too (their columns, not their view
 * definitions): a relation that is in no list cannot be traced and makes its columns opaque.
 */
export interface Catalog {
  /** Tables, partitioned and foreign tables, sequences and system relations, by `qualifiedName`. */
  readonly tables: ReadonlyMap<string, CatalogTable>;
  /** Views and materialized views outside the system schemas, expanded through their definitions. */
  readonly views: ReadonlyMap<string, CatalogViewEntry>;
  /**
   * Names (without schema) of every function, procedure, aggregate and operator defined outside
   * pg_catalog: a call of such a name may not reach the built-in, so it is not trusted.
   */
  readonly userRoutines: ReadonlySet<string>;
  /** The session's search_path at connection time; `$user` entries are resolved by the caller. */
  readonly searchPath: readonly string[];
}

export interface CatalogInput {
  readonly tables?: readonly CatalogTable[];
  readonly views?: readonly CatalogViewEntry[];
  readonly userRoutines?: Iterable<string>;
  readonly searchPath?: readonly string[];
}

export function createCatalog(input: CatalogInput): Catalog {
  const tables = new Map<string, CatalogTable>();
  for (const table of input.tables ?? []) tables.set(qualifiedName(table.schema, table.name), table);
  const views = new Map<string, CatalogViewEntry>();
  for (const view of input.views ?? []) views.set(qualifiedName(view.schema, view.name), view);
  return Object.freeze({
    tables,
    views,
    userRoutines: new Set(input.userRoutines ?? []),
    searchPath: Object.freeze([...(input.searchPath ?? ['public'])]),
  });
}

/** Map key of a relation: identifiers may hold dots, never NUL. */
export function qualifiedName(schema: string, name: string): string {
  return schema + '\u0000' + name;
}
