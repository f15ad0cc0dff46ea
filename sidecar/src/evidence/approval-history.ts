import type { EvidenceRecord } from './evidence-input.ts';
import { originOf, type RowOrigin, text, texts } from './record-fields.ts';

/** One step of an approval request, as its `approval` record tells it. */
export interface ApprovalStep extends RowOrigin {
  readonly event: string;
  readonly by: string | null;
  readonly reason: string | null;
  readonly condition: string | null;
}

/** An approval request (a held statement, or an access request) from all its records in the period. */
export interface ApprovalHistory {
  readonly request: string;
  readonly requestedBy: string | null;
  readonly database: string | null;
  readonly statement: string | null;
  readonly rules: readonly string[];
  /** An access request: the columns asked for in clear, for how long, until when. */
  readonly columns: readonly string[];
  readonly forSeconds: number | null;
  readonly until: string | null;
  /** approved or denied, by whom and why: the last decision recorded. */
  readonly decision: ApprovalStep | null;
  readonly steps: readonly ApprovalStep[];
}

/** Every request the period's `approval` records name, by request id. */
export function approvalHistories(records: readonly EvidenceRecord[]): Map<string, ApprovalHistory> {
  const byRequest = new Map<string, EvidenceRecord[]>();
  for (const record of records) {
    if (record.type !== 'approval') continue;
    const request = text(record, 'request');
    if (request === null) continue;
    const list = byRequest.get(request) ?? [];
    list.push(record);
    byRequest.set(request, list);
  }
  const histories = new Map<string, ApprovalHistory>();
  for (const [request, list] of byRequest) {
    const steps = list.map((record) => ({
      ...originOf(record),
      event: text(record, 'event') ?? 'unknown',
      by: text(record, 'by'),
      reason: text(record, 'reason'),
      condition: text(record, 'condition'),
    }));
    const first = list.find((r) => text(r, 'event') === 'requested') ?? list[0]!;
    const columns = list.flatMap((r) => texts(r, 'columns'));
    const forSeconds = list.map((r) => r.fields['forSeconds']).find((v) => typeof v === 'number');
    histories.set(request, {
      request,
      requestedBy: text(first, 'subject'),
      database: text(first, 'database'),
      statement: text(first, 'statement'),
      rules: texts(first, 'rules'),
      columns: [...new Set(columns)],
      forSeconds: typeof forSeconds === 'number' ? forSeconds : null,
      until: list.map((r) => text(r, 'until')).find((v) => v !== null) ?? null,
      decision: steps.findLast((s) => s.event === 'approved' || s.event === 'denied') ?? null,
      steps,
    });
  }
  return histories;
}
