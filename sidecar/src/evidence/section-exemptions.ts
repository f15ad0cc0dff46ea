import type { ApprovalHistory, ApprovalStep } from './approval-history.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { columnsOf, originOf, type RowOrigin, text, texts } from './record-fields.ts';
import type { SectionHeader } from './section.ts';

/** A statement that returned clear values of masked columns under an access request. */
export interface ExemptionUse extends RowOrigin {
  readonly subject: string | null;
  readonly statement: string | null;
  /** Source columns of its output it returned in clear. */
  readonly clearColumns: readonly string[];
}

export interface ExemptionRow {
  readonly request: string;
  readonly requestedBy: string | null;
  readonly database: string | null;
  readonly columns: readonly string[];
  readonly forSeconds: number | null;
  readonly until: string | null;
  readonly decision: string | null;
  readonly decidedBy: string | null;
  readonly reason: string | null;
  readonly steps: readonly ApprovalStep[];
  /** False when the statements name it but its own records are not in the period. */
  readonly recorded: boolean;
  readonly uses: readonly ExemptionUse[];
  /** Who saw clear values under it. */
  readonly sawClear: readonly string[];
}

export interface ExemptionsSection extends SectionHeader {
  readonly rows: readonly ExemptionRow[];
}

/** Access requests (approval records with columns) and every statement that ran under one. */
export function buildExemptionsSection(
  input: EvidenceInput,
  approvals: ReadonlyMap<string, ApprovalHistory>,
): ExemptionsSection {
  const uses = new Map<string, ExemptionUse[]>();
  for (const record of input.records) {
    if (record.type !== 'statement') continue;
    for (const request of texts(record, 'exemptions')) {
      const list = uses.get(request) ?? [];
      list.push({
        ...originOf(record),
        subject: text(record, 'subject'),
        statement: text(record, 'statement'),
        clearColumns: Object.entries(columnsOf(record))
          .filter(([, how]) => how === 'clear')
          .map(([column]) => column),
      });
      uses.set(request, list);
    }
  }
  const requests = new Set([
    ...[...approvals.values()].filter((h) => h.columns.length > 0).map((h) => h.request),
    ...uses.keys(),
  ]);
  const rows = [...requests].sort().map((request): ExemptionRow => {
    const history = approvals.get(request);
    const used = uses.get(request) ?? [];
    return {
      request,
      requestedBy: history?.requestedBy ?? null,
      database: history?.database ?? null,
      columns: history?.columns ?? [],
      forSeconds: history?.forSeconds ?? null,
      until: history?.until ?? null,
      decision: history?.decision?.event ?? null,
      decidedBy: history?.decision?.by ?? null,
      reason: history?.decision?.reason ?? null,
      steps: history?.steps ?? [],
      recorded: history !== undefined,
      uses: used,
      sawClear: [...new Set(used.map((u) => u.subject ?? 'unknown'))].sort(),
    };
  });
  return {
    section: 'exemptions',
    title: 'Exemptions: access requests and who saw clear values under them',
    period: input.period,
    shows:
      'Every access request (gatehouse request-access) with a record in the period: who asked for which columns, for how long, who decided and why, each step; and every statement that returned clear values under one, with who ran it and which source columns it returned in clear.',
    doesNotShow:
      'Values themselves; clear values seen without an exemption (for columns no masking rule covers: see masking.json); requests decided before the period whose statements ran in it show only as request ids (recorded: false).',
    counts: {
      rows: rows.length,
      approved: rows.filter((r) => r.decision === 'approved').length,
      uses: rows.reduce((n, r) => n + r.uses.length, 0),
    },
    rows,
  };
}
