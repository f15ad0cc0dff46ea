import { createHash } from 'node:crypto';
import type { ApprovalRequest } from '../../approvals/approval-request.ts';
import { notReleasedMessage } from '../../approvals/hold.ts';
import type { SessionHolds } from '../../approvals/session-holds.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { HOLD_COMMAND } from './command-framer.ts';
import type { CommandPort } from './command-port.ts';
import { MysqlError } from './constants.ts';
import { executeParameters } from './execute-parameters.ts';
import { packet } from './packet-io.ts';
import type { PreparedStatements, PreparedText, Refusal } from './pending.ts';

/**
 * MySQL's side of statements held for approval (approvals/session-holds.ts holds them for both
 * protocols): what a held text is called for the approver, the error of one that did not run, and
 * the wait of each COM_STMT_EXECUTE of a held prepared statement for its own parameters' approval.
 */

/** A held statement that did not run (denied, withdrawn, expired, still pending), as MySQL's error. */
export function approvalRefusal(request: ApprovalRequest): Refusal {
  return {
    kind: MysqlError.TABLE_ACCESS_DENIED,
    message: `Gatehouse: ${notReleasedMessage(request)}`,
    reason: `approval ${request.id}: ${request.phase}`,
  };
}

/**
 * The shape and fingerprint a held text is shown and shape-approved by. A text of several statements
 * is one request: its shape is every statement's, and its fingerprint digests every fingerprint, so a
 * shape approval of it covers no text whose other statements differ.
 */
export function heldText(texts: readonly QueryText[]): { fingerprint: string | null; shape: string | null } {
  if (texts.length === 1) return { fingerprint: texts[0]!.fingerprint, shape: texts[0]!.statement };
  const readable = texts.every((t) => t.statement !== null);
  const fingerprinted = texts.every((t) => t.fingerprint !== null);
  return {
    fingerprint: fingerprinted
      ? createHash('sha256')
          .update(JSON.stringify(texts.map((t) => t.fingerprint)))
          .digest('hex')
      : null,
    shape: readable ? texts.map((t) => t.statement).join(';\n') : null,
  };
}

/** Why an execution of a held statement is refused before it can be held. */
function unbindable(why: string): { refusal: Refusal } {
  return {
    refusal: {
      kind: MysqlError.NOT_SUPPORTED,
      message: `Gatehouse: this statement needs approval, which binds its parameters, and ${why}`,
      reason: 'approval-parameters',
    },
  };
}

/** COM_STMT_EXECUTE's bytes before its parameters: command, statement id, flags, iteration count. */
const EXECUTE_HEAD_BYTES = 10;

/**
 * A COM_STMT_EXECUTE of statement `id`, which an approval must release with the parameters it
 * binds: released (the request that did, and the command to send in place of the client's when it
 * was rewritten to carry its parameter types), refused (denied, withdrawn, still pending, or
 * parameters that cannot be bound), or HOLD_COMMAND while its impact is measured (`measure`, with
 * those parameters) or while it waits; the command is handled again once the wait ends.
 */
export function executeApproval(
  holds: SessionHolds,
  prepared: PreparedStatements,
  id: number,
  text: PreparedText,
  payload: Buffer,
  measure: CommandPort['measureHeld'],
): { request: string; rebound?: Buffer } | { refusal: Refusal } | typeof HOLD_COMMAND {
  const { sql, held } = text.approval!;
  const known = prepared.parameters(id);
  if (!known) return unbindable('an execution must name the statement id its COM_STMT_PREPARE returned');
  if (known.longData)
    return unbindable(
      'parameters sent apart (COM_STMT_SEND_LONG_DATA) cannot be bound: send them in the execution',
    );
  const read = executeParameters(payload, known.count, known.types);
  if (typeof read === 'string') return unbindable(read);
  // Later executions that send no types reuse these, as the server does.
  known.types = read.types;
  const rebound = read.rebound && { rebound: packet(read.rebound, 0) };
  // One key per text and parameters: what the wait is for, and what the decision is handed to.
  const key = `${sql}\u0000${read.hash}`;
  const end = holds.take(key);
  if (end) return end.run ? { request: end.request, ...rebound } : { refusal: approvalRefusal(end.request) };
  const parameters = { count: known.count, block: (read.rebound ?? payload).subarray(EXECUTE_HEAD_BYTES) };
  const measured = measure(
    sql,
    { ...held, binding: { ...held.binding, parametersHash: read.hash } },
    { key, parameters },
  );
  if (measured === HOLD_COMMAND) return HOLD_COMMAND;
  const start = holds.begin(key, measured);
  if (start.run) return { request: start.request, ...rebound };
  return HOLD_COMMAND;
}
