import type { SqlClient } from './store-driver.ts';

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
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  readonly next?: string;
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
export async function queryStatements(db: SqlClient, filter: RecordFilter): Promise<Page<StatementView>> {
  const rows = await page(db, 'statement', filter, 'r.*');
  return paged(rows, filter, (r) => ({
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
  db: SqlClient,
  filter: RecordFilter & { readonly types?: readonly string[] },
): Promise<Page<RecordView>> {
  const rows = await page(
    db,
    filter.types ?? [],
    filter,
    'r.seq, r.time, r.type, r.verified, r.line, r.source_id',
  );
  return paged(rows, filter, (r) => ({
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
export async function querySessions(db: SqlClient, filter: RecordFilter): Promise<Page<SessionView>> {
  const rows = await page(
    db,
    'connection.start',
    filter,
    'r.*, e.time AS end_time, e.line AS end_line',
    `LEFT JOIN LATERAL (SELECT time, line FROM records e WHERE e.session = r.session AND e.source_id = r.source_id
       AND e.type = 'connection.end' AND e.time >= r.time LIMIT 1) e ON true`,
  );
  return paged(rows, filter, (r) => {
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
 * is one the indexes answer.
 */
async function page(
  db: SqlClient,
  type: string | readonly string[],
  filter: RecordFilter,
  columns: string,
  join = '',
): Promise<Record<string, unknown>[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (condition: (n: string) => string, value: unknown) => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (typeof type === 'string') add((n) => `r.type = ${n}`, type);
  else if (type.length > 0) add((n) => `r.type = ANY(${n}::text[])`, type);
  if (filter.session !== undefined) add((n) => `r.session = ${n}`, filter.session);
  if (filter.subject !== undefined) add((n) => `r.subject = ${n}`, filter.subject);
  if (filter.database !== undefined) add((n) => `r.database = ${n}`, filter.database);
  if (filter.outcome !== undefined) add((n) => `r.outcome = ${n}`, filter.outcome);
  if (filter.purpose !== undefined) add((n) => `r.purpose = ${n}`, filter.purpose);
  if (filter.runId !== undefined) add((n) => `r.run_id = ${n}`, filter.runId);
  // A substring, not a pattern: LIKE's wildcards in the text are matched as themselves.
  if (filter.text !== undefined) add((n) => `strpos(lower(r.statement), lower(${n}::text)) > 0`, filter.text);
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
  if (filter.cursor !== undefined) {
    const [time, source, seq] = decodeCursor(filter.cursor);
    params.push(time, source, seq);
    const n = params.length;
    where.push(`(r.time, r.source_id, r.seq) < ($${n - 2}::timestamptz, $${n - 1}::bigint, $${n}::bigint)`);
  }
  params.push(limitOf(filter) + 1);
  return db.query(
    `SELECT ${columns}, s.cluster AS source_cluster, s.namespace AS source_namespace, s.pod AS source_pod,
       s.database AS source_database, s.log_key_id AS source_log_key_id
     FROM records r JOIN sources s ON s.id = r.source_id ${join}
     WHERE ${where.length > 0 ? where.join(' AND ') : 'true'}
     ORDER BY r.time DESC, r.source_id DESC, r.seq DESC LIMIT $${params.length}`,
    params,
  );
}

function paged<T>(
  rows: Record<string, unknown>[],
  filter: RecordFilter,
  view: (r: Record<string, unknown>) => T,
): Page<T> {
  const limit = limitOf(filter);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  if (rows.length <= limit || !last) return { items: items.map(view) };
  return {
    items: items.map(view),
    next: encodeCursor(iso(last['time']), Number(last['source_id']), Number(last['seq'])),
  };
}

function limitOf(filter: RecordFilter): number {
  return Math.min(Math.max(1, Math.trunc(filter.limit ?? DEFAULT_LIMIT)), MAX_LIMIT);
}

export class CursorError extends Error {}

function encodeCursor(time: string, source: number, seq: number): string {
  return Buffer.from(JSON.stringify([time, source, seq])).toString('base64url');
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
