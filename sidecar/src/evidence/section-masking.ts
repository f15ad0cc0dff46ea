import type { ApprovalHistory } from './approval-history.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { columnsOf, sorted, text, texts } from './record-fields.ts';
import type { SectionHeader } from './section.ts';

export interface IdentitySight {
  readonly subject: string;
  /** Statements whose output came from the column masked, and in clear. */
  readonly masked: number;
  readonly clear: number;
  readonly methods: readonly string[];
}

export interface MaskingRow {
  /** `schema.table.column`, as statement records name source columns. */
  readonly column: string;
  readonly methods: readonly string[];
  readonly statementsMasked: number;
  readonly statementsClear: number;
  readonly identities: readonly IdentitySight[];
}

export interface MaskingSection extends SectionHeader {
  readonly rows: readonly MaskingRow[];
  /** Columns statements returned only in clear in the period (not known to be sensitive). */
  readonly clearOnlyColumns: readonly string[];
}

/**
 * Sensitive columns are those the period shows masked at least once, or named by an access request;
 * for each, which identities saw it masked (and how) or in clear, counted in statements.
 */
export function buildMaskingSection(
  input: EvidenceInput,
  approvals: ReadonlyMap<string, ApprovalHistory>,
): MaskingSection {
  const seen = new Map<string, Map<string, { masked: number; clear: number; methods: Set<string> }>>();
  let withoutDetail = 0;
  let analysed = 0;
  for (const record of input.records) {
    if (record.type !== 'statement') continue;
    const columns = Object.entries(columnsOf(record));
    if (columns.length === 0) {
      if (texts(record, 'masked').length > 0) withoutDetail++;
      continue;
    }
    analysed++;
    const subject = text(record, 'subject') ?? 'unknown';
    for (const [column, how] of columns) {
      const bySubject = seen.get(column) ?? new Map();
      const sight = bySubject.get(subject) ?? { masked: 0, clear: 0, methods: new Set<string>() };
      if (how === 'clear') sight.clear++;
      else {
        sight.masked++;
        sight.methods.add(how);
      }
      bySubject.set(subject, sight);
      seen.set(column, bySubject);
    }
  }
  const requested = [...approvals.values()].flatMap((h) => h.columns);
  const isRequested = (column: string) => requested.some((r) => column === r || column.endsWith(`.${r}`));
  const rows: MaskingRow[] = [];
  const clearOnly: string[] = [];
  for (const [column, bySubject] of seen) {
    const sights = [...bySubject.values()];
    const everMasked = sights.some((s) => s.masked > 0);
    if (!everMasked && !isRequested(column)) {
      clearOnly.push(column);
      continue;
    }
    rows.push({
      column,
      methods: [...new Set(sights.flatMap((s) => [...s.methods]))].sort(),
      statementsMasked: sights.reduce((n, s) => n + s.masked, 0),
      statementsClear: sights.reduce((n, s) => n + s.clear, 0),
      identities: sorted(bySubject.entries(), ([subject]) => subject).map(([subject, s]) => ({
        subject,
        masked: s.masked,
        clear: s.clear,
        methods: [...s.methods].sort(),
      })),
    });
  }
  const sortedRows = sorted(rows, (r) => r.column);
  return {
    section: 'masking',
    title: 'Masking coverage',
    period: input.period,
    shows:
      'Each sensitive source column the period shows (masked at least once, or named by an access request), the masking methods applied, and per identity how many statements returned it masked or in clear. clearOnlyColumns lists the columns statements returned only in clear.',
    doesNotShow:
      'Sensitive columns no statement read in the period; whether a clear-only column is sensitive (nothing masked it: review it); columns of statements the policy did not analyse (counted in counts.maskedWithoutColumnDetail when they masked something); the values.',
    counts: {
      rows: sortedRows.length,
      statementsWithColumns: analysed,
      identitiesClear: new Set(
        sortedRows.flatMap((r) => r.identities.filter((i) => i.clear > 0).map((i) => i.subject)),
      ).size,
      clearOnlyColumns: clearOnly.length,
      maskedWithoutColumnDetail: withoutDetail,
    },
    rows: sortedRows,
    clearOnlyColumns: clearOnly.sort(),
  };
}
