import type { HeldStatement } from '../../approvals/hold.ts';
import { impactPlan, type Measured } from '../../approvals/impact-plan.ts';
import { uncountableChange } from '../../policy/guardrails/row-limits.ts';
import type { SessionCore } from '../session-core.ts';
import { errorResponse } from './backend-writer.ts';
import { Backend } from './codes.ts';
import { MEASURE_TIMEOUT_MS, measurePostgresImpact, SessionProbe } from './impact-probe.ts';
import { scrubNotification } from './scrub-messages.ts';
import type { SessionState } from './session-state.ts';

/** How long the whole measurement may take before the connection is taken to be lost. */
const PROBE_DEADLINE_MS = MEASURE_TIMEOUT_MS * 4 + 2_000;

/**
 * Measures a held Query's impact on the session's own upstream (impact-probe.ts), once everything
 * the session sent before it is answered. A measurement that could not restore the transaction
 * status, or got no answer, ends the session: a transaction left open or changed is worse.
 */
export async function measureHeld(
  state: SessionState,
  core: SessionCore,
  sql: string,
  held: HeldStatement,
): Promise<Measured> {
  const facts = held.statementFacts;
  if (!facts) return {};
  const plan = impactPlan(facts, uncountableChange(facts));
  if (plan.measure === 'nothing') return {};
  if (plan.measure === 'impossible') return { notMeasured: plan.reason };
  // Mid-pipeline (extended-protocol messages with no Sync yet) the server is in no state to run ours.
  if (!state.exchange.endsAtReady)
    return { notMeasured: 'the connection is in the middle of an extended-protocol exchange (no Sync yet)' };
  await state.whenQuiet();
  if (core.closed) return { notMeasured: 'the session ended' };
  const probe = new SessionProbe(
    (bytes) => core.server.write(bytes),
    (type, frame) => {
      if (type === Backend.ParameterStatus) {
        const name = frame.indexOf(0, 5);
        state.reading.report(
          frame.toString('utf8', 5, name),
          frame.toString('utf8', name + 1, frame.length - 1),
        );
      }
      core.tellClient(
        state.scrubbing && type === Backend.NotificationResponse ? scrubNotification(frame) : frame,
      );
    },
  );
  state.probe = probe;
  const deadline = setTimeout(
    () => probe.fail(new Error(`the database did not answer within ${PROBE_DEADLINE_MS} ms`)),
    PROBE_DEADLINE_MS,
  );
  deadline.unref?.();
  try {
    const result = await measurePostgresImpact(probe, plan, sql, state.txStatus);
    if (!result.intact) {
      state.logger.error('measuring a held statement left the transaction changed; ending the session');
      lost(core);
      return { notMeasured: 'the measurement could not restore the transaction' };
    }
    state.measuredRows += result.rolledBackRows;
    state.logger.debug({ plan: plan.measure }, 'held statement measured');
    return result.measured;
  } catch (error) {
    state.logger.error(
      { err: (error as Error).message },
      'measuring a held statement failed; ending the session',
    );
    lost(core);
    throw error;
  } finally {
    clearTimeout(deadline);
    state.probe = undefined;
  }
}

function lost(core: SessionCore): void {
  core.endWith(
    errorResponse({
      severity: 'FATAL',
      code: 'XX000',
      message:
        'Gatehouse could not measure a held statement safely and closed the connection, which rolls back its transaction',
    }),
    'upstream',
  );
}
