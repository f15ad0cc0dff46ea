import type { StatementEvent } from '../../audit/events.ts';
import type { StatementOutcome } from '../../audit/record-statement.ts';
import { exemptionIds } from '../../policy/masking/mysql-result-masks.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { packet } from './packet-io.ts';
import { commandOf, type Measurement, type Refusal, UNKNOWN_TEXT } from './pending.ts';
import { withStatus } from './row-measure.ts';
import { errPacket } from './server-packets.ts';

/**
 * The client's answer to a statement under row limits, held back until its rows are counted: sent
 * with the status flags of after the proxy's COMMIT, or replaced by the refusal, each with its audit
 * record.
 */

/** What answering the held statement asks of the session. */
export interface HeldAnswerPort {
  /** Sends an answer to the client now. */
  answer(bytes: Buffer): void;
  record(
    via: 'text' | 'prepared',
    started: number,
    text: QueryText,
    outcome: StatementEvent['outcome'],
    extra: StatementOutcome,
  ): void;
}

/** Sends the client's held answer (with the status flags given) and its audit record. */
export function releaseHeldAnswer(
  port: HeldAnswerPort,
  m: Measurement,
  status: number | undefined,
  total: number | undefined,
  notes: readonly string[],
): void {
  const held = m.held;
  if (!held) return;
  const first = held[4];
  const patched =
    status !== undefined && (first === 0x00 || first === 0xfe)
      ? packet(withStatus(held.subarray(4), status), held[3] ?? 0)
      : held;
  const end = m.heldEnd;
  if (end && m.client) {
    const head = m.client;
    const text = m.heldText ?? UNKNOWN_TEXT;
    const reason = [...(head.notes ?? []), ...notes];
    if (end.ok)
      port.record(head.via ?? 'text', head.started, text, 'ok', {
        command: commandOf(text) ?? head.command,
        rows: end.rows,
        rowsChanged: total,
        ...(reason.length > 0 && { reason: reason.join('; ') }),
        masked: head.masked?.[head.index],
        exemptions: exemptionIds(head.exemptions?.[head.index]),
        touched: head.touched?.[head.index],
      });
    else
      port.record(head.via ?? 'text', head.started, text, 'error', {
        ...(end.sqlstate && { sqlstate: end.sqlstate }),
        rowsChanged: total,
      });
  }
  port.answer(patched);
}

/** Answers the client's held statement with an error of the proxy's own instead. */
export function refuseHeldAnswer(
  port: HeldAnswerPort,
  m: Measurement,
  refusal: Refusal,
  outcome: 'refused' | 'error',
  total: number | undefined,
  notes: readonly string[],
): void {
  const held = m.held;
  if (!held) return;
  const head = m.client;
  if (head)
    port.record(head.via ?? 'text', head.started, m.heldText ?? UNKNOWN_TEXT, outcome, {
      reason: [refusal.reason, ...notes].join('; '),
      sqlstate: refusal.kind.sqlstate,
      rowsChanged: total,
    });
  port.answer(errPacket(refusal.kind, refusal.message, held[3] ?? 0));
}
