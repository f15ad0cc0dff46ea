import type { Refused } from '../../policy/gates/session-gate.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { encodeMessage, Frontend } from './codes.ts';
import type { Refusal } from './exchange.ts';
import type { NameRefusal } from './session-names.ts';

/**
 * A stand-in the server can only answer with a syntax error: it never runs anything, yet it moves the
 * server's protocol state exactly as a failed statement would (aborting the transaction block, skipping
 * to Sync in a pipeline). Its error is then replaced by the refusal.
 */
export const REFUSED_QUERY = encodeMessage(Frontend.Query, Buffer.from('GATEHOUSE REFUSED\0'));
export const REFUSED_PARSE = encodeMessage(
  Frontend.Parse,
  Buffer.from('gatehouse.refused\0GATEHOUSE REFUSED\0\0\0'),
);

export const UNKNOWN_TEXT: QueryText = { statement: null, fingerprint: null };
export const UNJUDGED_EXECUTE: QueryText = {
  statement: '<Execute of a portal Gatehouse did not judge>',
  fingerprint: null,
};
export const UNJUDGED_BIND: QueryText = {
  statement: '<Bind of a statement Gatehouse did not judge>',
  fingerprint: null,
};
export const UNJUDGED_DESCRIBE: QueryText = {
  statement: '<Describe of a name Gatehouse did not judge>',
  fingerprint: null,
};
export const FUNCTION_CALL_TEXT: QueryText = { statement: '<fast-path function call>', fingerprint: null };

export function nameRefusal(refusal: NameRefusal): Refusal {
  return {
    reason: `unjudged-name: ${refusal.message}`,
    fields: { severity: 'ERROR', code: refusal.code, message: refusal.message },
  };
}

/** The ErrorResponse for a refusal of the gate: every one is 42501 (insufficient privilege). */
export function pgRefusal(refused: Refused): Refusal {
  return {
    reason: refused.reason,
    fields: {
      severity: 'ERROR',
      code: '42501',
      message: refused.message,
      ...(refused.approval && {
        hint: 'This statement requires approval before it can run; ask an approver of this database.',
      }),
    },
  };
}
