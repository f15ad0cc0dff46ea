import type { Logger } from 'pino';
import type { CodeCatalog } from '../../sql/code-reach.ts';
import type { CatalogViewEntry } from '../../sql/lineage/types.ts';
import {
  buildMysqlCodeCatalog,
  MYSQL_CODE_CATALOG_QUERIES,
  type MysqlCodeCatalogRows,
} from '../../sql/mysql/mysql-code-catalog.ts';
import { buildTableCatalog, CASCADES_QUERY, type MysqlTableCatalog, TABLES_QUERY } from './row-measure.ts';

export interface MysqlCodeCatalogCacheOptions {
  /** Runs MYSQL_CODE_CATALOG_QUERIES over a connection of its own, with the proxy's credentials. */
  readonly load: (
    queries: readonly string[],
  ) => Promise<readonly (readonly (readonly (string | null)[])[])[]>;
  readonly logger: Logger;
  /** A catalog older than this is reloaded in the background (code changed outside the proxy). */
  readonly refreshMs: number;
}

/**
 * The column names of every view, in order: a view defined with a column list (`CREATE VIEW v (a, b)`)
 * names its columns apart from its query, which VIEW_DEFINITION holds without the list.
 */
export const VIEW_COLUMNS_QUERY =
  'SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = c.TABLE_SCHEMA AND v.TABLE_NAME = c.TABLE_NAME ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION';

/** Names assumed to be the server's own functions at most (each came from an unknown call). */
const MAX_ASSUMED = 4096;

/**
 * The MySQL server's stored code (routines, triggers, views) for the guardrails, shared by the proxy's
 * sessions: loaded on first need, reloaded after DDL through the proxy, periodically, and before a
 * decision on a statement that names a function it does not know.
 */
export class MysqlCodeCatalogCache {
  private catalog: CodeCatalog | undefined;
  private tableCatalog: MysqlTableCatalog | undefined;
  private rows: MysqlCodeCatalogRows | undefined;
  private views: readonly CatalogViewEntry[] | undefined;
  private readonly assumed = new Set<string>();
  private loading: Promise<void> | undefined;
  private loadedAt = 0;
  private events = 0;
  private loadStartedAt = 0;
  private snapshotStartedAt = 0;
  private invalidatedAt = 0;
  private readonly options: MysqlCodeCatalogCacheOptions;

  constructor(options: MysqlCodeCatalogCacheOptions) {
    this.options = options;
  }

  current(): CodeCatalog | undefined {
    if (Date.now() - this.loadedAt > this.options.refreshMs) void this.load();
    return this.catalog;
  }

  /** The tables' engines and cascading foreign keys, for row limits; loaded and refreshed with the code. */
  tables(): MysqlTableCatalog | undefined {
    return this.tableCatalog;
  }

  async ready(): Promise<void> {
    if (!this.catalog) await this.load();
  }

  /**
   * The views with their definitions and column names, for lineage, as of the catalog in force;
   * undefined before one is loaded and while DDL through the proxy has made it outdated (a view may
   * have been redefined: untraced, its columns are masked until the reload).
   */
  lineageViews(): readonly CatalogViewEntry[] | undefined {
    return this.outdated ? undefined : this.views;
  }

  /** DDL ran since the catalog in force started loading. */
  get outdated(): boolean {
    return this.invalidatedAt > this.snapshotStartedAt;
  }

  invalidate(): void {
    this.invalidatedAt = ++this.events;
  }

  /**
   * Reloads now (joining a load that started since), then takes `unknown` names that are still no
   * stored routine to be the server's own functions (built-ins this proxy does not list, loadable
   * functions): MySQL resolves those before stored functions.
   */
  async refresh(unknown: readonly string[] = []): Promise<void> {
    const requested = ++this.events;
    if (this.loading) await this.loading;
    if (!(this.loadStartedAt > requested && !this.loading)) await this.load();
    let added = false;
    for (const name of unknown) {
      if (name.includes('.') || this.assumed.size >= MAX_ASSUMED) continue;
      if (!this.assumed.has(name.toLowerCase())) {
        this.assumed.add(name.toLowerCase());
        added = true;
      }
    }
    if (added && this.rows) this.catalog = buildMysqlCodeCatalog(this.rows, new Set(this.assumed));
  }

  private load(): Promise<void> {
    this.loading ??= this.loadOnce().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async loadOnce(): Promise<void> {
    const started = ++this.events;
    this.loadStartedAt = started;
    const at = performance.now();
    try {
      const [
        routines = [],
        parameters = [],
        triggers = [],
        views = [],
        tables = [],
        cascades = [],
        viewColumns = [],
      ] = await this.options.load([
        ...MYSQL_CODE_CATALOG_QUERIES,
        TABLES_QUERY,
        CASCADES_QUERY,
        VIEW_COLUMNS_QUERY,
      ]);
      this.rows = { routines, parameters, triggers, views };
      this.views = lineageViewsOf(views, viewColumns);
      this.tableCatalog = buildTableCatalog(tables, cascades);
      this.catalog = buildMysqlCodeCatalog(this.rows, new Set(this.assumed));
      this.snapshotStartedAt = started;
      this.options.logger.info(
        {
          routines: routines.length,
          triggers: triggers.length,
          views: views.length,
          ms: Math.round(performance.now() - at),
        },
        'stored-code catalog loaded for the guardrails',
      );
    } catch (error) {
      this.options.logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        this.catalog
          ? 'stored-code catalog reload failed; the guardrails keep the previous one'
          : 'stored-code catalog could not be loaded; calls of stored code and access to tables are refused until it can',
      );
    } finally {
      this.loadedAt = Date.now();
    }
  }
}

/**
 * Views for lineage from the rows of the views query (schema, name, definition) and VIEW_COLUMNS_QUERY.
 * A definition the account may not read comes back empty (no SHOW VIEW): kept, so that lineage finds
 * the view and, unable to parse it, masks what it returns.
 */
export function lineageViewsOf(
  views: readonly (readonly (string | null)[])[],
  columns: readonly (readonly (string | null)[])[],
): readonly CatalogViewEntry[] {
  const names = new Map<string, string[]>();
  for (const [schema, name, column] of columns) {
    if (schema == null || name == null || column == null) continue;
    const key = `${schema}\u0000${name}`;
    const list = names.get(key);
    if (list) list.push(column);
    else names.set(key, [column]);
  }
  const out: CatalogViewEntry[] = [];
  for (const [schema, name, definition] of views) {
    if (schema == null || name == null) continue;
    const listed = names.get(`${schema}\u0000${name}`);
    out.push({ schema, name, definition: definition ?? '', ...(listed && { columns: listed }) });
  }
  return Object.freeze(out);
}
