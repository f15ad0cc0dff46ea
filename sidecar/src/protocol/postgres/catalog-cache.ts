import type { Logger } from 'pino';
import type { CatalogSnapshot } from '../../policy/gates/postgres-masking.ts';
import { classifyValue } from '../../policy/masking/classify-value.ts';
import { typeFamily } from '../../policy/masking/pg-types.ts';
import type { PiiKind } from '../../policy/masking/pii-kind.ts';
import { loadPgCodeCatalog } from '../../sql/analyze/pg-code-catalog.ts';
import { loadCatalog } from '../../sql/catalog-loader.ts';
import type { Catalog, CatalogTable } from '../../sql/lineage/catalog.ts';
import { columnKey } from '../../sql/lineage/trace.ts';
import type { UpstreamConnection } from './upstream.ts';
import { runUpstreamQuery } from './upstream-query.ts';

export interface CatalogCacheOptions {
  /** Opens a fresh upstream connection with the proxy's own credentials. */
  readonly connect: () => Promise<UpstreamConnection>;
  readonly logger: Logger;
  /** A catalog older than this is reloaded in the background (changes made outside the proxy). */
  readonly refreshMs: number;
  /** Rows read per table to classify columns by value; 0 turns sampling off. */
  readonly sampleRows: number;
  /** Tables sampled at most, largest catalogs first come first served. */
  readonly maxSampledTables: number;
  readonly queryTimeoutMs: number;
}

/** How soon a failed first load is tried again when a statement needs the catalog. */
const RETRY_MS = 2000;
const SKIPPED_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast']);
/** Types whose values cannot be PII on their own (numbers, dates are only PII by name or lineage). */
const UNSAMPLED_FAMILIES = new Set(['integer', 'numeric', 'float', 'bool', 'date', 'timestamp', 'uuid']);

/**
 * The upstream's catalog for masking, shared by the proxy's sessions: loaded on first need over a
 * connection of its own, reloaded after DDL and periodically. Sessions read `current()` per
 * statement; a statement judged against an older catalog sees new relations as unknown, whose
 * columns are then masked (never shown), so a late refresh costs clarity, not safety.
 */
export class CatalogCache {
  private snapshot: CatalogSnapshot | undefined;
  private loadedAt = 0;
  private loading: Promise<void> | undefined;
  /** Events in order (a counter, not a clock: two in one millisecond stay ordered). */
  private events = 0;
  private loadStartedAt = 0;
  private snapshotStartedAt = 0;
  private codeInvalidatedAt = 0;
  private stale = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly options: CatalogCacheOptions;

  constructor(options: CatalogCacheOptions) {
    this.options = options;
  }

  current(): CatalogSnapshot | undefined {
    const age = Date.now() - this.loadedAt;
    const due = this.snapshot ? this.stale || age > this.options.refreshMs : age > RETRY_MS;
    if (due) void this.load();
    return this.snapshot;
  }

  /** DDL that changes stored code ran since the catalog in force started loading. */
  get outdated(): boolean {
    return this.codeInvalidatedAt > this.snapshotStartedAt;
  }

  /**
   * After a statement that changed stored code (functions, triggers, rules, views...): reload soon,
   * and until a catalog loaded since is in force, guardrail decisions wait for it (see `outdated`).
   */
  invalidateCode(): void {
    this.codeInvalidatedAt = ++this.events;
    this.invalidate();
  }

  /** Waits for a first catalog (a session's first statement should not be judged without one). */
  async ready(): Promise<void> {
    if (!this.snapshot) await this.load();
  }

  /**
   * Reloads now, unless a load that started after this call was made has finished meanwhile: for a
   * statement that names something the catalog does not know (created directly on the database).
   * Concurrent callers share one load.
   */
  async refresh(): Promise<void> {
    const requested = ++this.events;
    if (this.loading) await this.loading;
    // A load that started since (someone else's) is as good, and load() joins it if it still runs.
    if (this.loadStartedAt > requested && !this.loading) return;
    await this.load();
  }

  /** After DDL: reload soon (coalescing bursts of DDL into one reload). */
  invalidate(): void {
    this.stale = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.load();
    }, 100);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private load(): Promise<void> {
    this.loading ??= this.loadOnce().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async loadOnce(): Promise<void> {
    const { logger } = this.options;
    const started = performance.now();
    const startedAt = ++this.events;
    this.loadStartedAt = startedAt;
    this.stale = false;
    let upstream: UpstreamConnection | undefined;
    try {
      upstream = await this.options.connect();
      const socket = upstream.socket;
      const query = async (sql: string) =>
        (await runUpstreamQuery(socket, sql, this.options.queryTimeoutMs)).results;
      const catalog = await loadCatalog(query);
      const code = await loadPgCodeCatalog(query);
      const samples = await this.sample(catalog, query);
      this.snapshot = Object.freeze({ catalog, samples, code });
      this.snapshotStartedAt = startedAt;
      this.loadedAt = Date.now();
      logger.info(
        {
          relations: catalog.tables.size + catalog.views.size,
          sampledColumnsFlagged: samples.size,
          ms: Math.round(performance.now() - started),
        },
        'catalog loaded for masking and guardrails',
      );
    } catch (error) {
      // Keep the previous catalog if there is one; without any, masking masks every column.
      logger.error(
        { err: error instanceof Error ? error.message : String(error) },
        this.snapshot
          ? 'catalog reload failed; masking keeps the previous catalog'
          : 'catalog could not be loaded; masked sessions see every column masked, and guarded sessions are refused calls of functions and access to tables, until it can',
      );
      this.loadedAt = Date.now();
    } finally {
      upstream?.socket.destroy();
    }
  }

  /**
   * Reads a few rows of each user table and classifies each text column by its values: a column
   * whose sampled values are mostly of one kind (emails in a column named `contact`) is that kind.
   * Values are held only while classified, never logged.
   */
  private async sample(
    catalog: Catalog,
    query: (sql: string) => Promise<(string | null)[][][]>,
  ): Promise<Map<string, PiiKind>> {
    const found = new Map<string, PiiKind>();
    const { sampleRows, maxSampledTables } = this.options;
    if (sampleRows <= 0) return found;
    const tables = [...catalog.tables.values()].filter(
      (table) => !SKIPPED_SCHEMAS.has(table.schema) && sampledColumns(table).length > 0,
    );
    for (const table of tables.slice(0, maxSampledTables)) {
      const columns = sampledColumns(table);
      const list = columns.map((c) => `${quoteIdent(c.name)}::text`).join(', ');
      let rows: (string | null)[][];
      try {
        [rows = []] = await query(
          `SELECT ${list} FROM ${quoteIdent(table.schema)}.${quoteIdent(table.name)} LIMIT ${sampleRows}`,
        );
      } catch {
        continue; // no privilege, a foreign table that is down...: lineage and the value scan remain
      }
      columns.forEach((column, i) => {
        const kind = majorityKind(rows.map((row) => row[i] ?? null));
        if (kind)
          found.set(columnKey({ schema: table.schema, table: table.name, column: column.name }), kind);
      });
    }
    return found;
  }
}

function sampledColumns(table: CatalogTable): CatalogTable['columns'] {
  return table.columns.filter(
    (c) => c.typeOid === undefined || !UNSAMPLED_FAMILIES.has(typeFamily(c.typeOid)),
  );
}

/** The kind at least half of the non-null values have; none for fewer than one value. */
function majorityKind(values: readonly (string | null)[]): PiiKind | undefined {
  const counts = new Map<PiiKind, number>();
  let total = 0;
  for (const value of values) {
    if (value === null || value.length === 0) continue;
    total++;
    const kind = classifyValue(value);
    if (kind) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  for (const [kind, count] of counts) if (count * 2 >= total && total > 0) return kind;
  return undefined;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
