import type { AuditEvent, SessionContext, StatementTouched } from './events.ts';

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
        mcpTool: event.mcpTool,
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
        approval: event.approval,
        exemptions: event.exemptions,
        tablesRead: event.touched?.tablesRead,
        tablesWritten: event.touched?.tablesWritten,
        columns: event.touched?.columns,
      };
    case 'approval':
      return {
        type: event.type,
        event: event.event,
        request: event.request,
        subject: event.subject,
        database: event.database,
        statement: event.statement,
        fingerprint: event.fingerprint,
        parametersHash: event.parametersHash,
        rules: [...event.rules],
        by: event.by,
        reason: event.reason,
        condition: event.condition,
        shapeUntil: event.shapeUntil,
        columns: event.columns,
        forSeconds: event.forSeconds,
        until: event.until,
        issuer: event.issuer,
      };
    case 'policy.change':
      return {
        type: event.type,
        event: event.event,
        file: event.file,
        changedBy: event.changedBy,
        changedByDocument: event.changedByDocument && { ...event.changedByDocument },
        before: event.before,
        after: event.after,
        added: [...event.added],
        removed: [...event.removed],
        changed: [...event.changed],
        rules: {
          added: [...event.rules.added],
          removed: [...event.rules.removed],
          changed: [...event.rules.changed],
        },
        fields: [...event.fields],
        summary: event.summary,
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
    actors: identity.actors && [...identity.actors],
    namespace: identity.namespace,
    serviceAccount: identity.serviceAccount,
    pod: identity.pod,
    clientAddress: context.client.address,
    clientPort: context.client.port,
    database: context.database,
    application: context.application,
    purpose: context.purpose,
    runId: context.runId,
    mcpTool: context.mcpTool,
  };
}

/**
 * The JSON text of `auditFields(event)` without its braces, byte for byte what JSON.stringify makes of
 * it, so the line format and its hash stay the same; built cheaper for the two records every statement
 * writes: the fields of its session are serialised once per session, the rest field by field.
 */
export function auditText(event: AuditEvent): string {
  switch (event.type) {
    case 'statement.start':
      return (
        `"type":"statement.start",${startJson(event.context)}` +
        `${member('via', event.via)}${member('statement', event.statement)}${member('fingerprint', event.fingerprint)}`
      );
    case 'statement':
      return (
        `"type":"statement",${sessionJson(event.context)}${member('via', event.via)}` +
        `${member('statement', event.statement)}${member('fingerprint', event.fingerprint)}` +
        `${member('outcome', event.outcome)}${member('command', event.command)}${member('rows', event.rows)}` +
        `${member('rowsChanged', event.rowsChanged)}${member('durationMs', event.durationMs)}` +
        `${member('sqlstate', event.sqlstate)}${member('reason', event.reason)}${member('masked', event.masked)}` +
        member('approval', event.approval) +
        member('exemptions', event.exemptions) +
        touchedJson(event.touched)
      );
    default:
      return JSON.stringify(auditFields(event)).slice(1, -1);
  }
}

/** Keyed by the context object, which a session makes once and never changes. */
const sessionJsonCache = new WeakMap<SessionContext, string>();
const startJsonCache = new WeakMap<SessionContext, string>();

function sessionJson(context: SessionContext): string {
  let text = sessionJsonCache.get(context);
  if (text === undefined) {
    text = JSON.stringify(sessionFields(context)).slice(1, -1);
    sessionJsonCache.set(context, text);
  }
  return text;
}

function startJson(context: SessionContext): string {
  let text = startJsonCache.get(context);
  if (text === undefined) {
    text = JSON.stringify({ session: context.session, subject: context.identity.subject }).slice(1, -1);
    startJsonCache.set(context, text);
  }
  return text;
}

/** Each statement of one shape touches the same: its members are serialised once per touched object. */
const touchedJsonCache = new WeakMap<StatementTouched, string>();

function touchedJson(touched: StatementTouched | undefined): string {
  if (touched === undefined) return '';
  let text = touchedJsonCache.get(touched);
  if (text === undefined) {
    text =
      member('tablesRead', touched.tablesRead) +
      member('tablesWritten', touched.tablesWritten) +
      member('columns', touched.columns);
    touchedJsonCache.set(touched, text);
  }
  return text;
}

/** `,"name":value` as JSON.stringify writes a member, or nothing for undefined (which it leaves out). */
function member(name: string, value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return `,"${name}":${Number.isFinite(value) ? value : 'null'}`;
  return `,"${name}":${JSON.stringify(value)}`;
}
