import type { RowLimit, RowLimitHit } from '../../policy/guardrails/row-limits.ts';
import { MysqlError } from './constants.ts';
import type { Refusal } from './pending.ts';

/** The refusals of a statement under row limits, worded as MySQL errors (row-counting.ts decides them). */

/** The first limit that refuses rather than warns or only tries (none: the count is a note). */
export function enforcingLimit(limits: readonly RowLimit[]): RowLimit | undefined {
  return limits.find((l) => !l.dryRun && l.action !== 'warn');
}

/** The rows the statement changes cannot be counted, for `reason`: it does not run. */
export function unmeasurableRefusal(limit: RowLimit, what: string, reason: string): Refusal {
  return {
    kind: MysqlError.TABLE_ACCESS_DENIED,
    message: `Gatehouse guardrail "${limit.guardrail}" (rule ${limit.rule}) refused ${what}: the rows it changes cannot be counted, because ${reason}.${limit.advice ? ` ${limit.advice}` : ''}`,
    reason: `Guardrail ${limit.guardrail}: ${limit.rule}; not measurable: ${reason}`,
  };
}

/** The counters could not be read after the statement ran: it was rolled back. */
export function countersUnreadableRefusal(limit: RowLimit, what: string): Refusal {
  return {
    kind: MysqlError.TABLE_ACCESS_DENIED,
    message: `Gatehouse guardrail "${limit.guardrail}" (rule ${limit.rule}) refused ${what}: the database's row counters could not be read, so what it changed cannot be counted; nothing it changed was kept`,
    reason: `Guardrail ${limit.guardrail}: ${limit.rule}; not measurable: the row counters could not be read`,
  };
}

/** The statement changed more rows than a limit allows: it was rolled back. */
export function overLimitRefusal(hit: RowLimitHit): Refusal {
  return {
    kind: MysqlError.TABLE_ACCESS_DENIED,
    message:
      hit.limit.action === 'requireApproval'
        ? `${hit.message} (this statement requires approval before it can run)`
        : hit.message,
    reason: `Guardrail ${hit.limit.guardrail}: ${hit.limit.rule}; ${hit.count} rows ${
      hit.scope === 'minute' ? 'in the last minute' : 'in the transaction'
    }, over ${hit.scope === 'minute' ? 'maxAffectedRowsPerMinute' : 'maxAffectedRows'} ${hit.max}`,
  };
}

/** The transaction the proxy opened to count the rows did not commit: nothing was kept. */
export function commitFailedRefusal(what: string, errorCode: number | undefined): Refusal {
  return {
    kind: MysqlError.TABLE_ACCESS_DENIED,
    message: `Gatehouse: the transaction it opened to count the rows of ${what} did not commit (error ${errorCode ?? 'unknown'}); nothing it changed was kept`,
    reason: `row limit: commit failed (${errorCode ?? 'unknown'})`,
  };
}
