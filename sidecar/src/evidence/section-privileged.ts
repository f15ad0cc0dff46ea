import type { ApprovalHistory } from './approval-history.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { originOf, type RowOrigin, text } from './record-fields.ts';
import type { SectionHeader } from './section.ts';
import { statementPrivilege } from './statement-privilege.ts';

export interface PrivilegedRow extends RowOrigin {
  readonly session: string | null;
  readonly subject: string | null;
  readonly database: string | null;
  readonly statement: string | null;
  readonly command: string | null;
  readonly outcome: string | null;
  /** Why it is here: its keywords say DDL or administration, and/or an approval released it. */
  readonly privilege: 'ddl' | 'admin' | null;
  readonly approved: boolean;
  /** The record's reason (a refusal's rule, a guardrail note). */
  readonly reason: string | null;
  /** The approval request that released it and its decision; null when none is recorded. */
  readonly approval: {
    readonly request: string;
    readonly requestedBy: string | null;
    readonly rules: readonly string[];
    readonly decision: string | null;
    readonly by: string | null;
    readonly reason: string | null;
    readonly condition: string | null;
    /** False when the request's records are not in the period (decided before it began). */
    readonly recorded: boolean;
  } | null;
}

export interface PrivilegedSection extends SectionHeader {
  readonly rows: readonly PrivilegedRow[];
}

/** Every statement record whose keywords say DDL or administration, or that an approval released. */
export function buildPrivilegedSection(
  input: EvidenceInput,
  approvals: ReadonlyMap<string, ApprovalHistory>,
): PrivilegedSection {
  const rows: PrivilegedRow[] = [];
  for (const record of input.records) {
    if (record.type !== 'statement') continue;
    const statement = text(record, 'statement');
    const command = text(record, 'command');
    const privilege = statementPrivilege(statement, command) ?? null;
    const request = text(record, 'approval');
    if (privilege === null && request === null) continue;
    const history = request === null ? undefined : approvals.get(request);
    rows.push({
      ...originOf(record),
      session: text(record, 'session'),
      subject: text(record, 'subject'),
      database: text(record, 'database'),
      statement,
      command,
      outcome: text(record, 'outcome'),
      privilege,
      approved: request !== null,
      reason: text(record, 'reason'),
      approval:
        request === null
          ? null
          : {
              request,
              requestedBy: history?.requestedBy ?? null,
              rules: history?.rules ?? [],
              decision: history?.decision?.event ?? null,
              by: history?.decision?.by ?? null,
              reason: history?.decision?.reason ?? null,
              condition: history?.decision?.condition ?? null,
              recorded: history !== undefined,
            },
    });
  }
  const count = (p: (row: PrivilegedRow) => boolean) => rows.filter(p).length;
  return {
    section: 'privileged',
    title: 'Privileged statements: DDL, administration, and anything approved',
    period: input.period,
    shows:
      'Every statement record in the period whose leading keywords are DDL (CREATE, ALTER, DROP, TRUNCATE, GRANT, REVOKE...) or administration (VACUUM, SET ROLE, DO...), and every statement an approval released, with who ran it, its outcome, and the approval (who decided, why).',
    doesNotShow:
      'The class the proxy decided for each statement (records carry the text, so this section reads keywords); values (literals are placeholders); statements that bypass the proxy; DDL run through a function call.',
    counts: {
      rows: rows.length,
      ddl: count((r) => r.privilege === 'ddl'),
      admin: count((r) => r.privilege === 'admin'),
      approved: count((r) => r.approved),
      approvalDecisionRecorded: count((r) => r.approval?.decision != null),
    },
    rows,
  };
}
