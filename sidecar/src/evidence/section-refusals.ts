import type { ApprovalHistory } from './approval-history.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { originOf, type RowOrigin, text } from './record-fields.ts';
import type { SectionHeader } from './section.ts';

export interface RefusalRow extends RowOrigin {
  /**
   * `statement` (refused by policy), `login` (a connection refused), `approval-denied`, or `warning`
   * (a statement that ran with a guardrail warning or dry-run finding among its notes).
   */
  readonly kind: 'statement' | 'login' | 'approval-denied' | 'warning';
  readonly subject: string | null;
  readonly database: string | null;
  readonly statement: string | null;
  readonly sqlstate: string | null;
  readonly reason: string | null;
  readonly clientAddress: string | null;
}

export interface RefusalsSection extends SectionHeader {
  readonly rows: readonly RefusalRow[];
}

/**
 * The warnings among a statement's notes (the reason of a statement that ran: `; `-separated), the
 * guardrail warnings and dry-run findings; not the others (`approved: ...`, `runs ...`).
 */
function warningsOf(reason: string | null): string | null {
  const found = (reason ?? '').split('; ').filter((note) => /^(warning|dry run): /.test(note));
  return found.length > 0 ? found.join('; ') : null;
}

export function buildRefusalsSection(
  input: EvidenceInput,
  approvals: ReadonlyMap<string, ApprovalHistory>,
): RefusalsSection {
  const rows: RefusalRow[] = [];
  for (const record of input.records) {
    const base = {
      ...originOf(record),
      database: text(record, 'database'),
      statement: text(record, 'statement'),
      sqlstate: text(record, 'sqlstate'),
      reason: text(record, 'reason'),
      clientAddress: text(record, 'clientAddress'),
    };
    if (record.type === 'connection.refused') {
      rows.push({ ...base, kind: 'login', subject: text(record, 'user') });
    } else if (record.type === 'statement') {
      const outcome = text(record, 'outcome');
      if (outcome === 'refused') rows.push({ ...base, kind: 'statement', subject: text(record, 'subject') });
      else {
        const warnings = warningsOf(base.reason);
        if (warnings !== null)
          rows.push({ ...base, kind: 'warning', subject: text(record, 'subject'), reason: warnings });
      }
    } else if (record.type === 'approval' && text(record, 'event') === 'denied') {
      const request = text(record, 'request');
      rows.push({
        ...base,
        kind: 'approval-denied',
        subject: text(record, 'subject'),
        reason: `${request ?? ''} denied by ${text(record, 'by') ?? 'unknown'}${base.reason ? `: ${base.reason}` : ''}`,
        statement: base.statement ?? (request ? (approvals.get(request)?.statement ?? null) : null),
      });
    }
  }
  const count = (kind: RefusalRow['kind']) => rows.filter((r) => r.kind === kind).length;
  return {
    section: 'refusals',
    title: 'Refusals and warnings',
    period: input.period,
    shows:
      'Every statement the proxy refused (with the rule or reason and SQLSTATE), every refused login (the user name the client gave and its address), every approval request denied, and every statement that ran with a guardrail warning or dry-run finding among its notes (only those notes are shown).',
    doesNotShow:
      'Errors the database itself returned (outcome error without a reason); refusals of a proxy whose audit is not among the sources; reloads of an invalid policy (logged, not audited).',
    counts: {
      rows: rows.length,
      statement: count('statement'),
      login: count('login'),
      approvalDenied: count('approval-denied'),
      warning: count('warning'),
    },
    rows,
  };
}
