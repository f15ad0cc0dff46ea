/**
 * How `gatehouse audit query` prints answers in a terminal: plain columns, each as wide as its widest
 * cell up to WIDEST, longer cells ending in an ellipsis. `--follow` keeps the widths its first
 * answer set for the lines that come after.
 */

export const KINDS = ['statements', 'sessions', 'sources', 'touched', 'approvals'] as const;
export type Kind = (typeof KINDS)[number];

/** `touched` answers two tables: per column, and per table (`tables`). */
const COLUMNS: Record<Kind | 'tables', readonly string[]> = {
  touched: ['subject', 'column', 'clear', 'masked', 'lastTime'],
  tables: ['subject', 'table', 'statements', 'lastTime'],
  approvals: ['request', 'phase', 'requester', 'database', 'statement', 'decidedBy', 'updatedAt'],
  statements: ['time', 'subject', 'database', 'outcome', 'rows', 'statement', 'touched', 'reason'],
  sessions: ['started', 'subject', 'database', 'pod', 'statements', 'durationMs', 'endReason'],
  sources: ['id', 'cluster', 'namespace', 'pod', 'database', 'status', 'lastSeq', 'checkpointSeq', 'reason'],
};
const WIDEST = 60;
/** What a follow's columns are at least, since later rows may be wider than its first. */
const FOLLOW_WIDTHS: Record<string, number> = {
  time: 24,
  started: 24,
  subject: 32,
  database: 12,
  outcome: 8,
  pod: 24,
  statement: 48,
  touched: 40,
  reason: 32,
  endReason: 12,
};

export function table(kind: Kind | 'tables', items: readonly Record<string, unknown>[]): string {
  if (items.length === 0) return `no ${kind}`;
  const columns = COLUMNS[kind];
  const widths = widthsOf(columns, rows(kind, items), {});
  return [formatRow(columns, widths), ...rows(kind, items).map((row) => formatRow(row, widths))].join('\n');
}

/** A table printed a few rows at a time: the header and widths come from the first rows. */
export class FollowTable {
  readonly #kind: Kind;
  #widths: number[] | undefined;

  constructor(kind: Kind) {
    this.#kind = kind;
  }

  /** The lines to print for these items (the header first, the first time). */
  lines(items: readonly Record<string, unknown>[]): string[] {
    const columns = COLUMNS[this.#kind];
    const cells = rows(this.#kind, items);
    const out: string[] = [];
    if (this.#widths === undefined) {
      this.#widths = widthsOf(columns, cells, FOLLOW_WIDTHS);
      out.push(formatRow(columns, this.#widths));
    }
    for (const row of cells) out.push(formatRow(row, this.#widths));
    return out;
  }
}

function rows(kind: Kind | 'tables', items: readonly Record<string, unknown>[]): string[][] {
  const columns = COLUMNS[kind];
  return items.map((item) =>
    columns.map((c) =>
      cell(
        kind === 'statements' && c === 'touched'
          ? touched(item)
          : kind === 'approvals' && c === 'decidedBy'
            ? (item['decision'] as { by?: string } | null)?.by
            : item[c],
      ),
    ),
  );
}

function widthsOf(
  columns: readonly string[],
  cells: readonly string[][],
  minimum: Readonly<Record<string, number>>,
): number[] {
  return columns.map((c, i) =>
    Math.min(WIDEST, Math.max(minimum[c] ?? 0, c.length, ...cells.map((row) => row[i]!.length))),
  );
}

function formatRow(row: readonly string[], widths: readonly number[]): string {
  return row
    .map((value, i) =>
      value.length > widths[i]! ? `${value.slice(0, widths[i]! - 1)}…` : value.padEnd(widths[i]!),
    )
    .join('  ')
    .trimEnd();
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/\s+/g, ' ');
}

/** A statement's source columns as a terminal reads them: `public.customers.ssn (redact), …`. */
function touched(item: Record<string, unknown>): string {
  const columns = (item['columns'] ?? {}) as Record<string, string>;
  const names = Object.entries(columns).map(([column, how]) => `${column} (${how})`);
  if (names.length > 0) return names.join(', ');
  return [...((item['tablesRead'] as string[]) ?? []), ...((item['tablesWritten'] as string[]) ?? [])].join(
    ', ',
  );
}
