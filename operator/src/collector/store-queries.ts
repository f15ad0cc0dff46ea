import type { SqlDriver } from './store-driver.ts';

/** The filters the API and `gatehouse audit query` share. */
export interface RecordFilter {
  /** One session's records (its id, as `connection.start` names it). */
  readonly session?: string;
  readonly subject?: string;
  readonly database?: string;
  readonly outcome?: string;
  /** Statements whose text (with placeholders) contains this, ignoring case. */
  readonly text?: string;
  /** Statements that read or wrote this table (`customers` or `public.customers`). */
  readonly table?: string;
  /** Statements whose output came from this column (`customers.ssn` or `public.customers.ssn`). */
  readonly column?: string;
  /** With `column`: only where this identity saw it in clear, or only masked. */
  readonly seen?: 'clear' | 'masked';
  /** What the session declared: `gatehouse.purpose`, `gatehouse.run_id`. */
  readonly purpose?: string;
  readonly runId?: string;
  readonly since?: Date;
  readonly until?: Date;
  /** Page size; at most MAX_LIMIT. */
  readonly limit?: number;
  /** From the previous page's `next`. */
  readonly cursor?: string;
  /** From the previous answer's `follow`: the records stored since, oldest first. */
  readonly follow?: string;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  readonly next?: string;
  /** Pass as `follow` for the records stored after this answer was made. */
  readonly follow: string;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface StatementView {
  readonly time: string;
  readonly source: { readonly cluster: string; readonly namespace: string; readonly pod: string };
  readonly seq: number;
  readonly verified: boolean;
  readonly session: string | null;
  readonly subject: string | null;
  readonly database: string | null;
  readonly statement: string | null;
  readonly fingerprint: string | null;
  readonly outcome: string | null;
  readonly command: string | null;
  readonly rows: number | null;
  readonly durationMs: number | null;
  readonly reason: string | null;
  readonly masked: readonly string[];
  readonly exemptions: readonly string[];
  readonly purpose: string | null;
  readonly runId: string | null;
  readonly tablesRead: readonly string[];
  readonly tablesWritten: readonly string[];
  /** Source columns of its output: `clear` or the masking method. */
  readonly columns: Readonly<Record<string, string>>;
}

export interface SessionView {
  readonly session: string;
  readonly source: { readonly cluster: string; readonly namespace: string; readonly pod: string };
  readonly started: string;
  readonly ended: string | null;
  readonly durationMs: number | null;
  readonly statements: number | null;
  readonly endReason: string | null;
  readonly subject: string | null;
  readonly groups: readonly string[];
  readonly method: string | null;
  readonly namespace: string | null;
  readonly serviceAccount: string | null;
  readonly pod: string | null;
  readonly clientAddress: string | null;
  readonly database: string | null;
  readonly protocol: string | null;
  readonly purpose: string | null;
  readonly runId: string | null;
}

/** Newest first, statement records only. */
export async function queryStatements(db: SqlDriver, filter: RecordFilter): Promise<Page<StatementView>> {
  return paged(await page(db, 'statement', filter, 'r.*'), (r) => ({
    time: iso(r['time']),
    source: sourceOf(r),
    seq: Number(r['seq']),
    verified: r['verified'] === true,
    session: str(r['session']),
    subject: str(r['subject']),
    database: str(r['database']),
    statement: str(r['statement']),
    fingerprint: str(r['fingerprint']),
    outcome: str(r['outcome']),
    command: str(r['command']),
    rows: r['rows'] === null ? null : Number(r['rows']),
    durationMs: r['duration_ms'] === null ? null : Number(r['duration_ms']),
    reason: str(r['reason']),
    masked: (r['masked'] as string[] | null) ?? [],
    ...touchedOf(String(r['line'])),
    purpose: str(r['purpose']),
    runId: str(r['run_id']),
  }));
}

/** The detail the columns index, read back from the record as written. */
function touchedOf(
  line: string,
): Pick<StatementView, 'exemptions' | 'tablesRead' | 'tablesWritten' | 'columns'> {
  let record: Record<string, unknown> = {};
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    // A torn line: nothing to show beyond its columns.
  }
  const list = (value: unknown) => (Array.isArray(value) ? (value as string[]) : []);
  const columns = record['columns'];
  return {
    exemptions: list(record['exemptions']),
    tablesRead: list(record['tablesRead']),
    tablesWritten: list(record['tablesWritten']),
    columns:
      typeof columns === 'object' && columns !== null && !Array.isArray(columns)
        ? (columns as Record<string, string>)
        : {},
  };
}

/** A record as written, with its source: what `gatehouse evidence build --server` reads. */
export interface RecordView {
  readonly source: {
    readonly cluster: string;
    readonly namespace: string;
    readonly pod: string;
    readonly database: string;
    readonly logKeyId: string;
  };
  readonly seq: number;
  readonly time: string;
  readonly type: string;
  readonly verified: boolean;
  readonly line: string;
}

/** Newest first, records of the given types (every type when none is given), as written. */
export async function queryRecords(
  db: SqlDriver,
  filter: RecordFilter & { readonly types?: readonly string[] },
): Promise<Page<RecordView>> {
  const result = await page(
    db,
    filter.types ?? [],
    filter,
    'r.seq, r.time, r.type, r.verified, r.line, r.source_id',
  );
  return paged(result, (r) => ({
    source: {
      ...sourceOf(r),
      database: String(r['source_database']),
      logKeyId: String(r['source_log_key_id']),
    },
    seq: Number(r['seq']),
    time: iso(r['time']),
    type: String(r['type']),
    verified: r['verified'] === true,
    line: String(r['line']),
  }));
}

/** Newest first, one per connection.start, with how its connection.end says it ended. */
export async function querySessions(db: SqlDriver, filter: RecordFilter): Promise<Page<SessionView>> {
  const result = await page(
    db,
    'connection.start',
    filter,
    'r.*, e.time AS end_time, e.line AS end_line',
    `LEFT JOIN LATERAL (SELECT time, line FROM records e WHERE e.session = r.session AND e.source_id = r.source_id
       AND e.type = 'connection.end' AND e.time >= r.time LIMIT 1) e ON true`,
  );
  return paged(result, (r) => {
    const start = JSON.parse(String(r['line'])) as Record<string, unknown>;
    const end = r['end_line'] ? (JSON.parse(String(r['end_line'])) as Record<string, unknown>) : {};
    return {
      session: String(r['session']),
      source: sourceOf(r),
      started: iso(r['time']),
      ended: r['end_time'] ? iso(r['end_time']) : null,
      durationMs: typeof end['durationMs'] === 'number' ? end['durationMs'] : null,
      statements: typeof end['statements'] === 'number' ? end['statements'] : null,
      endReason: str(end['reason']),
      subject: str(start['subject']),
      groups: Array.isArray(start['groups']) ? (start['groups'] as string[]) : [],
      method: str(start['method']),
      namespace: str(start['namespace']),
      serviceAccount: str(start['serviceAccount']),
      pod: str(start['pod']),
      clientAddress: str(start['clientAddress']),
      database: str(start['database']),
      protocol: str(start['protocol']),
      purpose: str(start['purpose']),
      runId: str(start['runId']),
    };
  });
}

/**
 * One page of records of `type`, newest first, keyed by (time, source, seq) so pages neither skip
 * nor repeat records while new ones arrive. Only the filters given become conditions, so each query
 * is one the indexes answer. With `follow`, the records stored since the answer that gave it
 * instead, oldest first (followPage).
 */
async function page(
  db: SqlDriver,
  type: string | readonly string[],
  filter: RecordFilter,
  columns: string,
  join = '',
): Promise<{ rows: Record<string, unknown>[]; next?: string; follow: string }> {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (condition: (n: string) => string, value: unknown) => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (typeof type === 'string') add((n) => `r.type = ${n}`, type);
  else if (type.length > 0) add((n) => `r.type = ANY(${n}::text[])`, type);
  else where.push('true');
  if (filter.session !== undefined) add((n) => `r.session = ${n}`, filter.session);
  if (filter.subject !== undefined) add((n) => `r.subject = ${n}`, filter.subject);
  if (filter.database !== undefined) add((n) => `r.database = ${n}`, filter.database);
  if (filter.outcome !== undefined) add((n) => `r.outcome = ${n}`, filter.outcome);
  // A substring, not a pattern: LIKE's wildcards in the text are matched as themselves.
  if (filter.text !== undefined) add((n) => `strpos(lower(r.statement), lower(${n}::text)) > 0`, filter.text);
  if (filter.purpose !== undefined) add((n) => `r.purpose = ${n}`, filter.purpose);
  if (filter.runId !== undefined) add((n) => `r.run_id = ${n}`, filter.runId);
  // Array containment, which the GIN indexes answer.
  if (filter.table !== undefined) add((n) => `r.tables @> ARRAY[${n}::text]`, filter.table);
  if (filter.column !== undefined) {
    const seen = filter.seen;
    add(
      (n) =>
        seen === 'clear'
          ? `r.columns_clear && ${n}::text[]`
          : seen === 'masked'
            ? `r.columns_masked && ${n}::text[]`
            : `(r.columns_clear && ${n}::text[] OR r.columns_masked && ${n}::text[])`,
      columnKeys(filter.column),
    );
  }
  if (filter.since !== undefined) add((n) => `r.time >= ${n}`, filter.since);
  if (filter.until !== undefined) add((n) => `r.time < ${n}`, filter.until);
  const select = `SELECT ${columns}, s.cluster AS source_cluster, s.namespace AS source_namespace, s.pod AS source_pod,
       s.database AS source_database, s.log_key_id AS source_log_key_id
     FROM records r JOIN sources s ON s.id = r.source_id ${join}`;
  if (filter.follow !== undefined) return followPage(db, select, where, params, filter);
  let anchor = filter.until ?? new Date();
  if (filter.cursor !== undefined) {
    const [time, source, seq] = decodeCursor(filter.cursor);
    params.push(time, source, seq);
    const n = params.length;
    // The row comparison alone is no index bound: `time <=` beside it lets the time indexes start
    // at the cursor and the planner skip the partitions of later days.
    where.push(
      `r.time <= $${n - 2}::timestamptz`,
      `(r.time, r.source_id, r.seq) < ($${n - 2}::timestamptz, $${n - 1}::bigint, $${n}::bigint)`,
    );
    if (Date.parse(time) < anchor.getTime()) anchor = new Date(time);
  }
  const limit = limitOf(filter);
  // One snapshot for the page and the `follow` it gives, so following from it neither repeats a
  // record of the page nor misses one stored meanwhile.
  const [snapshot, rows] = await db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const [{ snapshot }] = (await tx.query<{ snapshot: string }>(
      'SELECT pg_current_snapshot()::text AS snapshot',
    )) as [{ snapshot: string }];
    const rows: Record<string, unknown>[] = [];
    for (const window of pageWindows(anchor, filter.since)) {
      const bounded = [...where];
      const values = [...params];
      if (window.from !== undefined) {
        values.push(window.from);
        bounded.push(`r.time >= $${values.length}`);
      }
      if (window.before !== undefined) {
        values.push(window.before);
        bounded.push(`r.time < $${values.length}`);
      }
      values.push(limit + 1 - rows.length);
      rows.push(
        ...(await tx.query(
          `${select} WHERE ${bounded.join(' AND ')}
           ORDER BY r.time DESC, r.source_id DESC, r.seq DESC LIMIT $${values.length}`,
          values,
        )),
      );
      if (rows.length > limit) break;
    }
    return [snapshot, rows] as const;
  });
  const last = rows[limit - 1];
  return {
    rows: rows.slice(0, limit),
    ...(rows.length > limit && last
      ? { next: encodeCursor(iso(last['time']), Number(last['source_id']), Number(last['seq'])) }
      : {}),
    follow: encodeFollow({ from: snapshot }),
  };
}

/**
 * The time windows a page is read in, newest first: the day before `anchor` (the `until` or cursor
 * time, or now), the six before it, then the rest back to `since`. A selective filter answered by a
 * GIN index (a table, a column) finds its matches in every day partition and must sort them all
 * before the first row comes: over 30 days of a table read a few hundred times a day, that is
 * thousands of rows fetched for a page of 100 (0.5 s at 10 M records). Most pages fill from the first
 * window; one that does not reads the next, and the windows adjoin, so the order is the same.
 * The first window has no upper bound unless asked: a record from a clock a little ahead still shows.
 */
export function pageWindows(anchor: Date, since: Date | undefined): { from?: Date; before?: Date }[] {
  const out: { from?: Date; before?: Date }[] = [];
  let before: Date | undefined;
  for (const days of [1, 7]) {
    const from = new Date(anchor.getTime() - days * 86_400_000);
    if (since !== undefined && since >= from) break;
    out.push({ from, ...(before && { before }) });
    before = from;
  }
  out.push({ ...(since && { from: since }), ...(before && { before }) });
  return out;
}

/**
 * The records that became visible between two snapshots, in the order their transactions stored
 * them (ingest_xid, then source and seq). A record's own time cannot order this: a shipper catching
 * up after an outage stores records older than some already shown. A snapshot says exactly which
 * transactions had committed when it was taken, so `from` (the previous answer's) to `to` (taken
 * now, or kept while a long delta is paged through with `after`) misses and repeats nothing, however
 * transactions of several replicas interleave.
 */
async function followPage(
  db: SqlDriver,
  select: string,
  where: string[],
  params: unknown[],
  filter: RecordFilter,
): Promise<{ rows: Record<string, unknown>[]; follow: string }> {
  const cursor = decodeFollow(filter.follow!);
  const to =
    cursor.to ??
    (await db.query<{ snapshot: string }>('SELECT pg_current_snapshot()::text AS snapshot'))[0]!.snapshot;
  params.push(cursor.from, to);
  const from = `$${params.length - 1}::pg_snapshot`;
  const upTo = `$${params.length}::pg_snapshot`;
  where.push(
    `r.ingest_xid >= pg_snapshot_xmin(${from})`,
    `r.ingest_xid < pg_snapshot_xmax(${upTo})`,
    `NOT pg_visible_in_snapshot(r.ingest_xid, ${from})`,
    `pg_visible_in_snapshot(r.ingest_xid, ${upTo})`,
  );
  if (cursor.after !== undefined) {
    params.push(...cursor.after);
    const n = params.length;
    where.push(`(r.ingest_xid, r.source_id, r.seq) > ($${n - 2}::xid8, $${n - 1}::bigint, $${n}::bigint)`);
  }
  const limit = limitOf(filter);
  params.push(limit + 1);
  const rows = await db.query(
    `${select} WHERE ${where.join(' AND ')}
     ORDER BY r.ingest_xid, r.source_id, r.seq LIMIT $${params.length}`,
    params,
  );
  const last = rows[limit - 1];
  if (rows.length > limit && last)
    return {
      rows: rows.slice(0, limit),
      follow: encodeFollow({
        from: cursor.from,
        to,
        after: [String(last['ingest_xid']), Number(last['source_id']), Number(last['seq'])],
      }),
    };
  return { rows, follow: encodeFollow({ from: to }) };
}

function paged<T>(
  result: { rows: Record<string, unknown>[]; next?: string; follow: string },
  view: (r: Record<string, unknown>) => T,
): Page<T> {
  return {
    items: result.rows.map(view),
    ...(result.next === undefined ? {} : { next: result.next }),
    follow: result.follow,
  };
}

function limitOf(filter: RecordFilter): number {
  return Math.min(Math.max(1, Math.trunc(filter.limit ?? DEFAULT_LIMIT)), MAX_LIMIT);
}

export class CursorError extends Error {}

function encodeCursor(time: string, source: number, seq: number): string {
  return Buffer.from(JSON.stringify([time, source, seq])).toString('base64url');
}

interface FollowCursor {
  /** The snapshot (`pg_snapshot` text) whose records were already answered. */
  readonly from: string;
  /** While a delta is paged through: the snapshot it ends at, and the last record given. */
  readonly to?: string;
  readonly after?: [string, number, number];
}

function encodeFollow(cursor: FollowCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

const SNAPSHOT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/;

function decodeFollow(text: string): FollowCursor {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<FollowCursor>;
    const after = value.after;
    if (
      typeof value.from === 'string' &&
      SNAPSHOT.test(value.from) &&
      (value.to === undefined || (typeof value.to === 'string' && SNAPSHOT.test(value.to))) &&
      (after === undefined ||
        (value.to !== undefined &&
          Array.isArray(after) &&
          after.length === 3 &&
          typeof after[0] === 'string' &&
          /^\d{1,20}$/.test(after[0]) &&
          Number.isSafeInteger(after[1]) &&
          Number.isSafeInteger(after[2])))
    )
      return value as FollowCursor;
  } catch {
    // Reported below.
  }
  throw new CursorError('follow is not one this API gave out; pass the `follow` of the previous answer');
}

function decodeCursor(cursor: string): [string, number, number] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 3 &&
      typeof value[0] === 'string' &&
      !Number.isNaN(Date.parse(value[0])) &&
      Number.isSafeInteger(value[1]) &&
      Number.isSafeInteger(value[2])
    )
      return value as [string, number, number];
  } catch {
    // Reported below, as any other cursor that is not one of ours.
  }
  throw new CursorError('cursor is not one this API gave out; pass the `next` of the previous page');
}

function sourceOf(r: Record<string, unknown>) {
  return {
    cluster: String(r['source_cluster']),
    namespace: String(r['source_namespace']),
    pod: String(r['source_pod']),
  };
}

function iso(value: unknown): string {
  return new Date(value as string | Date).toISOString();
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * The stored names that answer a question about one column: the column, and its table's `.*`, under
 * which a statement whose output lineage could not tell its columns apart was recorded (extract.ts).
 */
export function columnKeys(column: string): string[] {
  const dot = column.lastIndexOf('.');
  return dot > 0 ? [column, `${column.slice(0, dot)}.*`] : [column];
}
