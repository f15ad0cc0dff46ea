import type { Moment, Refused } from '../../policy/gates/session-gate.ts';
import type { Refusal } from './exchange.ts';
import { HOLD } from './message-framer.ts';
import { pgRefusal } from './refusals.ts';
import type { SessionState } from './session-state.ts';

/*
 * The fast-path interface (FunctionCall): a function named by OID, with arguments and a result no
 * lineage can trace. Judged here as the SELECT of the routine the catalog knows by that OID.
 */

/** Fast-path function calls return values no lineage can trace: refused where masking applies. */
export function fastPathRefusal(state: SessionState): Refusal | undefined {
  const settings = state.gate.settings();
  if (!settings) return undefined;
  return {
    reason: `MaskingPolicy ${settings.policies.join(', ')}: fast-path function call`,
    fields: {
      severity: 'ERROR',
      code: '42501',
      message: 'Gatehouse: fast-path function calls are not allowed where masking applies; use SELECT',
    },
  };
}

/**
 * A fast-path call names its function by OID: judged as `SELECT schema.name()`, the call of the
 * routine the catalog knows by that OID; an OID it does not know is refused.
 */
export function fastPathGuardrails(
  state: SessionState,
  frame: Buffer,
  moment: Moment,
  logRefusal: (refused: Refused) => void,
): Refusal | undefined | typeof HOLD {
  if (!state.deps.policy()) return undefined;
  const oid = frame.length >= 9 ? frame.readUInt32BE(5) : -1;
  const target = state.deps.catalog.current()?.code.byOid(oid);
  if (!target) {
    return {
      reason: 'fast-path call of an unknown function',
      fields: {
        severity: 'ERROR',
        code: '42501',
        message: `Gatehouse: fast-path call of function OID ${oid}, which Gatehouse's catalog of the database does not know; use SELECT`,
      },
    };
  }
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const verdict = state.gate.guard(
    `SELECT ${quote(target.schema)}.${quote(target.name)}()`,
    undefined,
    moment,
  );
  if (verdict.outcome === 'refresh-catalog') return HOLD;
  if (verdict.outcome === 'allow' && verdict.rows?.limits.some((l) => !l.dryRun && l.action !== 'warn'))
    // The row check follows a Query or an Execute; a fast-path call has no place for it.
    return {
      reason: `Guardrail rows: fast-path call of ${target.schema}.${target.name} under a row limit`,
      fields: {
        severity: 'ERROR',
        code: '42501',
        message: `Gatehouse: a row limit applies to ${target.schema}.${target.name}(), and the rows a fast-path call changes cannot be counted; call it with SELECT`,
      },
    };
  if (verdict.outcome !== 'refuse') return undefined;
  logRefusal(verdict);
  return pgRefusal(verdict);
}
