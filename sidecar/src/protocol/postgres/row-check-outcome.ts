import { judgeRowCounts } from '../../policy/guardrails/row-limits.ts';
import { errorResponse, noticeResponse } from './backend-writer.ts';
import type { RowCheck } from './exchange.ts';
import { UNKNOWN_TEXT } from './refusals.ts';
import { checkFailure } from './row-check.ts';
import type { SessionState } from './session-state.ts';

/** The check's count is within the caps: the held completion goes to the client, with the count recorded. */
export function rowCheckPassed(state: SessionState, check: RowCheck): Buffer | undefined {
  // The proxy's own rolled-back measurements are in the database's count, not the client's.
  const count =
    check.count === undefined || check.count < 0 ? -1 : Math.max(0, check.count - state.measuredRows);
  const subject = state.context.identity.subject;
  const notes = [...(check.owner.notes ?? [])];
  let notice: Buffer | undefined;
  if (count >= 0) {
    const before = state.rowsBefore;
    const minute = state.deps.rowBudget.spent(subject);
    const judged = judgeRowCounts(check.rows.limits, { transaction: count, before, minute }, check.rows.what);
    // A count lower than the last is a new transaction the proxy did not see begin.
    state.deps.rowBudget.add(subject, count >= before ? count - before : count);
    state.rowsBefore = count;
    for (const hit of judged.dryRun)
      notes.push(
        `dry run: ${hit.limit.guardrail}/${hit.limit.rule} would ${hit.limit.action} (${hit.count} rows)`,
      );
    for (const hit of judged.warnings)
      notes.push(`warning: ${hit.limit.guardrail}/${hit.limit.rule} (${hit.count} rows)`);
    if (judged.warnings.length > 0)
      notice = noticeResponse({
        severity: 'WARNING',
        code: '01000',
        message: judged.warnings.map((w) => w.message).join('\n'),
      });
  } else notes.push('rows changed not counted: track_counts is off on the database');
  const held = check.held;
  if (!held) return notice;
  state.recordStatement(check.owner, held.text, 'ok', {
    ...held,
    ...(count >= 0 && { rowsChanged: count }),
    ...(notes.length > 0 && { reason: notes.join('; ') }),
  });
  return notice ? Buffer.concat([notice, held.frame]) : held.frame;
}

/**
 * The check raised (over a cap, track_counts off) or failed otherwise: the transaction is aborted,
 * nothing the statement changed is kept. The client gets the refusal instead of the check's error.
 */
export function rowCheckFailed(state: SessionState, check: RowCheck, fields: Map<string, string>): Buffer {
  const raw = checkFailure(fields.get('M') ?? '');
  const failure =
    raw.count === undefined ? raw : { ...raw, count: Math.max(0, raw.count - state.measuredRows) };
  const limit = check.rows.limits.find((l) => !l.dryRun && l.action !== 'warn') ?? check.rows.limits[0]!;
  const named = `Gatehouse guardrail "${limit.guardrail}" (rule ${limit.rule})`;
  let message: string;
  let reason: string;
  if (failure.count !== undefined) {
    const judged = judgeRowCounts(
      check.rows.limits,
      {
        transaction: failure.count,
        before: state.rowsBefore,
        minute: state.deps.rowBudget.spent(state.context.identity.subject),
      },
      check.rows.what,
    );
    const hit = judged.refusal;
    message =
      hit?.message ??
      `${named} refused ${check.rows.what}: its transaction updated or deleted ${failure.count} rows, over what the row limits allow; nothing it changed was kept.`;
    reason = hit
      ? `Guardrail ${hit.limit.guardrail}: ${hit.limit.rule} (${hit.scope === 'minute' ? 'maxAffectedRowsPerMinute' : 'maxAffectedRows'}: ${hit.count} rows, limit ${hit.max})`
      : `Guardrail ${limit.guardrail}: ${limit.rule} (${failure.count} rows)`;
  } else if (failure.trackCountsOff) {
    message = `${named} refused ${check.rows.what}: the database does not count changed rows (track_counts is off), so the row limit cannot be checked; nothing it changed was kept.`;
    reason = `Guardrail ${limit.guardrail}: ${limit.rule} (track_counts is off)`;
  } else {
    const code = fields.get('C') ?? 'unknown';
    message = `${named} refused ${check.rows.what}: counting the rows it changed failed (SQLSTATE ${code}); nothing it changed was kept.`;
    reason = `Guardrail ${limit.guardrail}: ${limit.rule} (row count failed: ${code})`;
  }
  const text = check.held?.text ?? UNKNOWN_TEXT;
  state.recordStatement(check.owner, text, 'refused', {
    reason,
    sqlstate: '42501',
    ...(failure.count !== undefined && { rowsChanged: failure.count }),
  });
  return errorResponse({
    severity: 'ERROR',
    code: '42501',
    message,
    ...(limit.advice && { hint: limit.advice }),
  });
}
