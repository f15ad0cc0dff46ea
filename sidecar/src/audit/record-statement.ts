import type { Logger } from 'pino';
import type { SessionMetrics } from '../metrics.ts';
import type { QueryText } from '../sql/normalize.ts';
import type { AuditSink, SessionContext, StatementEvent, StatementTouched } from './events.ts';

/** What a session knows of a statement's end, beyond its text and outcome. */
export interface StatementOutcome {
  readonly command?: string | undefined;
  readonly rows?: number | undefined;
  readonly sqlstate?: string | undefined;
  readonly reason?: string | undefined;
  readonly masked?: readonly string[] | undefined;
  /** Under a row limit: the rows the statement's transaction had changed, as the database counted them. */
  readonly rowsChanged?: number | undefined;
  /** The approval request that released it. */
  readonly approval?: string | undefined;
  /** Approved access requests under which it returned clear values of masked columns. */
  readonly exemptions?: readonly string[] | undefined;
  /** What it touched (tables, source columns clear or masked), when its policy analysed it. */
  readonly touched?: StatementTouched | undefined;
}

/** One statement's audit record and metrics, for either protocol. */
export function recordStatement(
  sink: { audit: AuditSink; metrics: SessionMetrics },
  context: SessionContext,
  via: StatementEvent['via'],
  started: number,
  text: QueryText,
  outcome: StatementEvent['outcome'],
  extra: StatementOutcome,
): void {
  const seconds = (performance.now() - started) / 1000;
  const { metrics } = sink;
  if (outcome === 'ok') metrics.statementOk();
  else if (outcome === 'error') metrics.statementError();
  else metrics.statementRefused();
  metrics.observeDuration(seconds);
  sink.audit.record({
    type: 'statement',
    context,
    statement: text.statement,
    fingerprint: text.fingerprint,
    via,
    outcome,
    ...(extra.command !== undefined && { command: extra.command }),
    ...(extra.rows !== undefined && { rows: extra.rows }),
    ...(extra.rowsChanged !== undefined && { rowsChanged: extra.rowsChanged }),
    durationMs: Math.round(seconds * 1e6) / 1e3,
    ...(extra.sqlstate !== undefined && { sqlstate: extra.sqlstate }),
    ...(extra.reason !== undefined && { reason: extra.reason }),
    ...(extra.masked !== undefined && extra.masked.length > 0 && { masked: extra.masked }),
    ...(extra.approval !== undefined && { approval: extra.approval }),
    ...(extra.exemptions !== undefined && extra.exemptions.length > 0 && { exemptions: extra.exemptions }),
    ...(extra.touched !== undefined && { touched: extra.touched }),
  });
}

/**
 * The `statement.start` records of the statements one message sends to the database, made before it
 * is sent. Returns what `AuditHeldWrite.hold` waits for: with `failClosed`, whether the writer wrote
 * them (the last one's answer: the log writes in order and loses everything after a failed write);
 * without it, true at once (the records are written as usual, and nothing waits for them).
 */
export function recordStatementStart(
  audit: AuditSink,
  failClosed: boolean,
  context: SessionContext,
  via: StatementEvent['via'],
  texts: readonly QueryText[],
): Promise<boolean> | boolean {
  let written: Promise<boolean> | boolean = true;
  for (const text of texts.length > 0 ? texts : [UNKNOWN_TEXT]) {
    const event = {
      type: 'statement.start',
      context,
      via,
      statement: text.statement,
      fingerprint: text.fingerprint,
    } as const;
    if (failClosed) written = audit.recordBefore(event);
    else audit.record(event);
  }
  return written;
}

const UNKNOWN_TEXT: QueryText = { statement: null, fingerprint: null };

/** The last audit record of a session, with the metric and log line that go with it. */
export function recordSessionEnd(
  sink: { audit: AuditSink; metrics: SessionMetrics; logger: Logger },
  context: SessionContext,
  startedAt: number,
  statements: number,
  reason: string,
): void {
  sink.metrics.active(-1);
  sink.audit.record({
    type: 'connection.end',
    context,
    durationMs: Date.now() - startedAt,
    statements,
    reason,
  });
  sink.logger.info({ reason, statements }, 'session ended');
}
