import type { Refused } from '../../policy/gates/session-gate.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { MysqlError, type MysqlErrorKind } from './constants.ts';
import type { Refusal } from './pending.ts';

/** The proxy's own refusals of client commands, worded as MySQL errors. */

/** The refusal of a statement whose audit record cannot be written (failClosed). */
export const AUDIT_UNAVAILABLE: Refusal = {
  kind: MysqlError.AUDIT_UNAVAILABLE,
  message: 'Gatehouse refused the statement: the audit log cannot be written',
  reason: 'audit-unavailable',
};

/** A client file goes to the server only when a policy allows the statement that asks for it. */
export const LOCAL_INFILE_WITHOUT_POLICY: Refusal = {
  kind: MysqlError.SPECIFIC_ACCESS_DENIED,
  message: 'Gatehouse: LOAD DATA LOCAL needs a policy that allows it (no policy documents are configured)',
  reason: 'local-infile',
};

/** What the audit calls an execute of a statement id the proxy did not see prepared. */
export const UNJUDGED_EXECUTE: QueryText = {
  statement: '<COM_STMT_EXECUTE of a statement Gatehouse did not see prepared>',
  fingerprint: null,
};

export const UNKNOWN_STATEMENT_ID: Refusal = {
  kind: MysqlError.UNKNOWN_STATEMENT,
  message: 'Gatehouse: unknown prepared statement handler: it was not prepared through Gatehouse',
  reason: 'unjudged-name: COM_STMT_EXECUTE of a statement id Gatehouse did not see prepared',
};

export const CURSOR: Refusal = {
  kind: MysqlError.NOT_SUPPORTED,
  message: 'Gatehouse does not relay server-side cursors: execute without a cursor',
  reason: 'cursor',
};

export const CHANGE_USER: Refusal = {
  kind: MysqlError.SPECIFIC_ACCESS_DENIED,
  message:
    'Gatehouse refuses COM_CHANGE_USER: the identity is fixed for the connection; open a new connection',
  reason: 'change-user',
};

/** Replication, shutdown, debug and the long-gone commands: not for a governed session. */
export function unsupportedCommand(command: number): { refusal: Refusal; text: QueryText } {
  const hex = `0x${command.toString(16)}`;
  return {
    refusal: {
      kind: MysqlError.UNKNOWN_COMMAND,
      message: `Gatehouse does not relay command ${hex}`,
      reason: 'unsupported-command',
    },
    text: { statement: `<command ${hex}>`, fingerprint: null },
  };
}

/** The gate's refusal of a statement, as the MySQL error the client gets. */
export function gateRefusal(refused: Refused): Refusal {
  return {
    kind: mysqlError(refused),
    message:
      refused.message + (refused.approval ? ' (this statement requires approval before it can run)' : ''),
    reason: refused.reason,
  };
}

function mysqlError(refused: Refused): MysqlErrorKind {
  switch (refused.cause) {
    case 'guardrail':
      return refused.policyKind === 'DatabaseAccess'
        ? MysqlError.SPECIFIC_ACCESS_DENIED
        : MysqlError.TABLE_ACCESS_DENIED;
    case 'server-reading':
      return MysqlError.NOT_SUPPORTED;
    case 'analysis-failed':
      return MysqlError.SPECIFIC_ACCESS_DENIED;
    case 'masking':
      return MysqlError.TABLE_ACCESS_DENIED;
  }
}
