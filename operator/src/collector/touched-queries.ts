import type { SqlClient } from './store-driver.ts';
import { columnKeys, type RecordFilter } from './store-queries.ts';

/** The filters the data-touched summary takes: who, where, which table or column, over which period. */
export type TouchedFilter = Pick<
  RecordFilter,
  'subject' | 'database' | 'table' | 'column' | 'seen' | 'purpose' | 'runId' | 'since' | 'until'
>;

/** How often one identity's statements returned one source column, in clear and masked. */
export interface TouchedColumn {
  readonly subject: string | null;
  /** `schema.table.column`, as lineage named it. */
  readonly column: string;
  readonly clear: number;
  readonly masked: number;
  readonly lastTime: string;
}

/** How often one identity's statements read or wrote one table (columns known or not). */
export interface TouchedTable {
  readonly subject: string | null;
  /** Without its schema: a table is recorded as the statement named it when no policy traced it. */
  readonly table: string;
  readonly statements: number;
  readonly lastTime: string;
}

export interface TouchedSummary {
  readonly columns: TouchedColumn[];
  readonly tables: TouchedTable[];
}

/** Rows each list may hold: a summary, not a listing; statements answer the rest. */
export const TOUCHED_ROWS = 1000;

/**
 * Per identity, per table and per source column, read in clear or masked, over a period: the
 * statements' `columns_clear` / `columns_masked` / `tables` summed. With `column`, only that column's
 * rows: who read it, and how.
 */
export async function queryTouched(db: SqlClient, filter: TouchedFilter): Promise<TouchedSummary> {
  const params: unknown[] = [];
  const where = ["r.type = 'statement'"];
  const add = (condition: (n: string) => string, value: unknown) => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (filter.subject !== undefined) add((n) => `r.subject = ${n}`, filter.subject);
  if (filter.database !== undefined) add((n) => `r.database = ${n}`, filter.database);
  if (filter.purpose !== undefined) add((n) => `r.purpose = ${n}`, filter.purpose);
  if (filter.runId !== undefined) add((n) => `r.run_id = ${n}`, filter.runId);
  if (filter.table !== undefined) add((n) => `r.tables @> ARRAY[${n}::text]`, filter.table);
  if (filter.column !== undefined)
    add(
      (n) =>
        filter.seen === 'clear'
          ? `r.columns_clear && ${n}::text[]`
          : filter.seen === 'masked'
            ? `r.columns_masked && ${n}::text[]`
            : `(r.columns_clear && ${n}::text[] OR r.columns_masked && ${n}::text[])`,
      columnKeys(filter.column),
    );
  if (filter.since !== undefined) add((n) => `r.time >= ${n}`, filter.since);
  if (filter.until !== undefined) add((n) => `r.time < ${n}`, filter.until);
  const base = [...params];

  // Each column is stored with and without its schema; the summary counts the qualified name only.
  let columnCondition = "c.name LIKE '%.%.%'";
  if (filter.column !== undefined) {
    const named: string[] = [];
    for (const key of columnKeys(filter.column)) {
      params.push(key);
      const n = `$${params.length}`;
      named.push(`c.name = ${n}::text OR right(c.name, length(${n}::text) + 1) = '.' || ${n}::text`);
    }
    columnCondition += ` AND (${named.join(' OR ')})`;
  }
  if (filter.seen !== undefined) columnCondition += ` AND c.clear = ${filter.seen === 'clear'}`;
  const columns = await db.query(
    `SELECT r.subject, c.name, count(*) FILTER (WHERE c.clear) AS clear,
            count(*) FILTER (WHERE NOT c.clear) AS masked, max(r.time) AS last_time
     FROM records r
     CROSS JOIN LATERAL (SELECT x AS name, true AS clear FROM unnest(r.columns_clear) x
                         UNION ALL SELECT x, false FROM unnest(r.columns_masked) x) c
     WHERE ${where.join(' AND ')} AND ${columnCondition}
     GROUP BY r.subject, c.name ORDER BY r.subject, c.name LIMIT ${TOUCHED_ROWS}`,
    params,
  );
  // A table is stored as named and without its schema; one row per statement and unqualified name.
  const tables = await db.query(
    `SELECT r.subject, t.name, count(*) AS statements, max(r.time) AS last_time
     FROM records r
     CROSS JOIN LATERAL (SELECT DISTINCT regexp_replace(x, '^.*\\.', '') AS name FROM unnest(r.tables) x) t
     WHERE ${where.join(' AND ')}
     GROUP BY r.subject, t.name ORDER BY r.subject, t.name LIMIT ${TOUCHED_ROWS}`,
    base,
  );
  return {
    columns: columns.map((r) => ({
      subject: typeof r['subject'] === 'string' ? r['subject'] : null,
      column: String(r['name']),
      clear: Number(r['clear']),
      masked: Number(r['masked']),
      lastTime: new Date(r['last_time'] as string).toISOString(),
    })),
    tables: tables.map((r) => ({
      subject: typeof r['subject'] === 'string' ? r['subject'] : null,
      table: String(r['name']),
      statements: Number(r['statements']),
      lastTime: new Date(r['last_time'] as string).toISOString(),
    })),
  };
}
