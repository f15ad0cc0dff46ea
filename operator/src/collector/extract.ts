/**
 * The columns the collector's questions filter on, read from a record's fields. The line itself is
 * stored too, unchanged: these are an index into it, never a replacement for it.
 */
export interface RecordColumns {
  readonly time: Date;
  readonly type: string;
  readonly session: string | undefined;
  readonly subject: string | undefined;
  readonly database: string | undefined;
  readonly namespace: string | undefined;
  readonly pod: string | undefined;
  readonly statement: string | undefined;
  readonly fingerprint: string | undefined;
  readonly outcome: string | undefined;
  readonly command: string | undefined;
  readonly rows: number | undefined;
  readonly durationMs: number | undefined;
  readonly reason: string | undefined;
  /** The masked output columns, as the proxy described each (source, why, method). */
  readonly masked: readonly string[] | undefined;
  /** What the session declared it is for (`gatehouse.purpose`, `gatehouse.run_id`). */
  readonly purpose: string | undefined;
  readonly runId: string | undefined;
  /** The tables it read or wrote, as keys (touchedKeys). */
  readonly tables: readonly string[] | undefined;
  /** The source columns of its output this identity saw in clear, and masked, as keys (touchedKeys). */
  readonly columnsClear: readonly string[] | undefined;
  readonly columnsMasked: readonly string[] | undefined;
}

/** `record` undefined: a line that is not a record (torn or malformed), kept under the time it arrived. */
export function extractColumns(record: Record<string, unknown> | undefined, receivedAt: Date): RecordColumns {
  const r = record ?? {};
  return {
    time: timeOf(r['time'], receivedAt),
    type: text(r['type']) ?? 'malformed',
    session: text(r['session']),
    subject: text(r['subject']),
    database: text(r['database']),
    namespace: text(r['namespace']),
    pod: text(r['pod']),
    statement: text(r['statement']),
    fingerprint: text(r['fingerprint']),
    outcome: text(r['outcome']),
    command: text(r['command']),
    rows: num(r['rows']),
    durationMs: num(r['durationMs']),
    reason: text(r['reason']),
    masked: strings(r['masked']),
    purpose: text(r['purpose']),
    runId: text(r['runId']),
    ...touchedColumns(r),
  };
}

/** A statement record's `tablesRead`, `tablesWritten` and `columns` as the store's keys. */
function touchedColumns(
  r: Record<string, unknown>,
): Pick<RecordColumns, 'tables' | 'columnsClear' | 'columnsMasked'> {
  const tables = touchedKeys([...(strings(r['tablesRead']) ?? []), ...(strings(r['tablesWritten']) ?? [])]);
  const clear: string[] = [];
  const masked: string[] = [];
  const columns = r['columns'];
  if (typeof columns === 'object' && columns !== null && !Array.isArray(columns))
    // `unknown` (schema.table.*): columns of that table, which not known, of an identity that sees
    // them in clear; kept among the clear ones, where a question about any of its columns finds it.
    for (const [column, how] of Object.entries(columns))
      if (typeof how === 'string') (how === 'clear' || how === 'unknown' ? clear : masked).push(column);
  return { tables, columnsClear: touchedKeys(clear), columnsMasked: touchedKeys(masked) };
}

/**
 * Each name as written and without its schema (`public.customers.ssn` also as `customers.ssn`), so
 * a question may name a table or column either way; undefined when there are none. The proxy names
 * tables `schema.table` (or `table` where only the text named it) and columns `schema.table.column`.
 */
export function touchedKeys(names: readonly string[]): string[] | undefined {
  if (names.length === 0) return undefined;
  const keys = new Set<string>();
  for (const name of names) {
    keys.add(name);
    const dot = name.indexOf('.');
    if (dot > 0) keys.add(name.slice(dot + 1));
  }
  return [...keys];
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((m): m is string => typeof m === 'string') : undefined;
}

/** A record's own time decides its partition; one that has none or an invalid one takes its arrival time. */
export function timeOf(value: unknown, receivedAt: Date): Date {
  if (typeof value !== 'string') return receivedAt;
  const time = new Date(value);
  const year = time.getUTCFullYear();
  // A partition per day is made on demand: a time outside these years would make one for nonsense.
  return Number.isNaN(year) || year < 2000 || year > 9999 ? receivedAt : time;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * The days a batch's rows will fall in, known before its chain is checked, so their partitions can
 * be made before the ingest transaction takes its locks. Every line gets the time `extractColumns`
 * will give it: its own (first key after `prev` in the writer's order, or read by parsing), or the
 * arrival time.
 */
export function daysOf(lines: readonly string[], receivedAt: Date): Set<string> {
  const days = new Set<string>([receivedAt.toISOString().slice(0, 10)]);
  for (const line of lines) {
    const match = LEADING_TIME.exec(line);
    let value: unknown = match?.[1];
    if (value === undefined) {
      try {
        value = (JSON.parse(line) as Record<string, unknown>)['time'];
      } catch {
        value = undefined;
      }
    }
    days.add(timeOf(value, receivedAt).toISOString().slice(0, 10));
  }
  return days;
}

const LEADING_TIME = /^\{"seq":\d+,"prev":"[0-9a-f]*","time":"([^"\\]*)"/;
