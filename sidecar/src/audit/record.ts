import type { AuditEvent, SessionContext } from './events.ts';

/**
 * The fields of an audit record for one event, flat so that log readers (jq, a SIEM) need no
 * knowledge of our types. Key order is part of the line format: the writer hashes exactly the bytes
 * JSON.stringify makes of this object. Undefined fields are left out of the line.
 */
export function auditFields(event: AuditEvent): Record<string, unknown> {
  switch (event.type) {
    case 'connection.start':
      return { type: event.type, ...sessionFields(event.context), tls: event.tls };
    case 'connection.end':
      return {
        type: event.type,
        ...sessionFields(event.context),
        durationMs: event.durationMs,
        statements: event.statements,
        reason: event.reason,
      };
    case 'connection.refused':
      return {
        type: event.type,
        protocol: event.protocol,
        clientAddress: event.client.address,
        clientPort: event.client.port,
        user: event.user,
        database: event.database,
        sqlstate: event.sqlstate,
        reason: event.reason,
        errno: event.errno,
      };
    case 'statement.start':
      return {
        type: event.type,
        session: event.context.session,
        subject: event.context.identity.subject,
        via: event.via,
        statement: event.statement,
        fingerprint: event.fingerprint,
      };
    case 'statement':
      return {
        type: event.type,
        ...sessionFields(event.context),
        via: event.via,
        statement: event.statement,
        fingerprint: event.fingerprint,
        outcome: event.outcome,
        command: event.command,
        rows: event.rows,
        rowsChanged: event.rowsChanged,
        durationMs: event.durationMs,
        sqlstate: event.sqlstate,
        reason: event.reason,
        masked: event.masked,
      };
  }
}

function sessionFields(context: SessionContext): Record<string, unknown> {
  const identity = context.identity;
  return {
    session: context.session,
    protocol: context.protocol,
    subject: identity.subject,
    groups: [...identity.groups],
    method: identity.method,
    issuer: identity.issuer,
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    pod: identity.pod,
    clientAddress: context.client.address,
    clientPort: context.client.port,
    database: context.database,
  };
}
