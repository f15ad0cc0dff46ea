/**
 * Audit records as OCSF 1.5.0 events (docs/compliance.md has the table): statements as Datastore
 * Activity, connections and refused logins as Authentication, approvals as API Activity, policy
 * changes as Entity Management, and the log's own records (open, checkpoint, loss, recovery) as
 * Event Log Activity. The chain fields (seq, prev, hash, sig, the source file) and every record field
 * with no OCSF home ride in `unmapped`, so a SIEM can trace each event to its line and see gaps.
 */
import type { ParsedRecord } from './chain.ts';
import {
  API_ACTIVITY,
  AUTHENTICATION,
  CONTROL,
  ENTITY_MANAGEMENT,
  EVENT_LOG_ACTIVITY,
  OCSF_VERSION,
  SEVERITY,
  STATUS,
} from './ocsf-classes.ts';
import {
  clientApplication,
  compact,
  type EventBase,
  endpoint,
  epochMs,
  RecordFields,
  type SessionOrigin,
  user,
} from './ocsf-fields.ts';
import { datastoreActivity } from './ocsf-statement.ts';

export type OcsfEvent = Record<string, unknown>;

/** One line of an audit log, as parseChainLine reads it. */
export interface AuditLine {
  readonly record: ParsedRecord;
  readonly hash: string;
  readonly sig?: string | undefined;
}

export interface OcsfOptions {
  /** Gatehouse's version, for metadata.product.version. */
  readonly productVersion: string;
  /** Where the record came from (the audit file's path): rides in unmapped.source. */
  readonly source?: string;
}

/**
 * Maps records one at a time, in log order. It keeps where each open session comes from (its
 * `connection.start`), since a `statement.start` names only the session; that is its only state.
 */
export class OcsfMapper {
  readonly #options: OcsfOptions;
  readonly #sessions = new Map<string, SessionOrigin>();

  constructor(options: OcsfOptions) {
    this.#options = options;
  }

  map(line: AuditLine): OcsfEvent {
    const record = line.record;
    const fields = new RecordFields(record);
    const body = this.#body(fields);
    const unmapped = compact({
      seq: record.seq,
      prev: record.prev,
      hash: line.hash,
      sig: line.sig,
      source: this.#options.source,
      type: record.type,
      ...fields.rest(),
    });
    // The record's hash identifies it uniquely: a SIEM can deduplicate a file exported twice.
    (body['metadata'] as Record<string, unknown>)['uid'] = line.hash;
    return { ...body, unmapped };
  }

  #body(fields: RecordFields): OcsfEvent {
    switch (fields.type) {
      case 'statement':
      case 'statement.start':
        return datastoreActivity(fields, this, this.#sessions);
      case 'connection.start':
      case 'connection.end':
      case 'connection.refused':
        return this.#authentication(fields);
      case 'approval':
        return this.#approval(fields);
      case 'policy.change':
        return this.#policyChange(fields);
      default:
        return this.#eventLog(fields);
    }
  }

  /** class, activity, type_uid, severity, time and metadata of an event of `base.class`. */
  base(fields: RecordFields, base: EventBase): OcsfEvent {
    const [severityId, severity] = SEVERITY[base.severity];
    return {
      class_uid: base.class.uid,
      class_name: base.class.name,
      category_uid: base.class.categoryUid,
      category_name: base.class.categoryName,
      activity_id: base.activity,
      activity_name: base.activityName ?? base.class.activities[base.activity] ?? 'Other',
      type_uid: base.class.uid * 100 + base.activity,
      type_name: `${base.class.name}: ${base.activityName ?? base.class.activities[base.activity] ?? 'Other'}`,
      severity_id: severityId,
      severity,
      time: epochMs(fields.peek('time')),
      metadata: compact({
        version: OCSF_VERSION,
        product: { name: 'Gatehouse', vendor_name: 'Gatehouse', version: this.#options.productVersion },
        log_name: 'gatehouse-audit',
        event_code: fields.type,
        sequence: Number(fields.peek('seq')),
        correlation_uid: base.correlation,
        profiles: base.profiles && base.profiles.length > 0 ? [...base.profiles] : undefined,
      }),
    };
  }

  #authentication(fields: RecordFields): OcsfEvent {
    const type = fields.type;
    const refused = type === 'connection.refused';
    const session = fields.string('session');
    const origin = this.#origin(fields);
    if (type === 'connection.start' && session !== undefined) this.#sessions.set(session, origin);
    if (type === 'connection.end' && session !== undefined) this.#sessions.delete(session);
    const base = this.base(fields, {
      class: AUTHENTICATION,
      activity: type === 'connection.end' ? 2 : 1,
      severity: refused ? 'medium' : 'informational',
      profiles: ['security_control'],
      correlation: session,
    });
    const subject = refused ? fields.string('user') : fields.string('subject');
    const [statusId, status] = refused ? STATUS.failure : STATUS.success;
    const duration = type === 'connection.end' ? fields.number('durationMs') : undefined;
    return compact({
      ...base,
      ...(refused ? CONTROL.denied : CONTROL.allowed),
      status_id: statusId,
      status,
      status_code: refused ? fields.string('sqlstate') : undefined,
      status_detail: refused || type === 'connection.end' ? fields.string('reason') : undefined,
      user: user(subject ?? '', refused ? undefined : fields.strings('groups')),
      // Who asked for the logon: the client application, when it declared one.
      actor: mapApplication(clientApplication(fields)),
      session: session === undefined ? undefined : compact({ uid: session, issuer: fields.string('issuer') }),
      // The database logged into, through the proxy of its protocol (the class wants a service or a destination).
      service: compact({
        name: origin.database ?? 'unknown',
        labels: [fields.string('protocol') ?? 'unknown'],
      }),
      src_endpoint: endpoint(origin),
      logon_type_id: 3,
      logon_type: 'Network',
      is_remote: true,
      duration: duration === undefined ? undefined : Math.round(duration),
      message: refused
        ? `login refused for ${subject}: ${fields.peek('reason')}`
        : type === 'connection.end'
          ? `session of ${subject} ended`
          : `${subject} connected`,
    });
  }

  #approval(fields: RecordFields): OcsfEvent {
    const event = fields.string('event') ?? 'unknown';
    const activity = APPROVAL_ACTIVITY[event] ?? 99;
    const by = fields.string('by');
    const subject = fields.string('subject') ?? '';
    const request = fields.string('request');
    const statement = fields.string('statement');
    const fingerprint = fields.string('fingerprint');
    const base = this.base(fields, {
      class: API_ACTIVITY,
      activity,
      activityName: activity === 99 ? capitalize(event) : undefined,
      severity: 'informational',
      correlation: request,
    });
    // Who acted: the decider for a decision, nobody for an expiry, the requester otherwise.
    const actor =
      event === 'approved' || event === 'denied'
        ? { user: user(by ?? 'unknown') }
        : event === 'expired'
          ? { app_name: 'gatehouse' }
          : { user: user(subject) };
    return compact({
      ...base,
      status_id: STATUS.success[0],
      status: STATUS.success[1],
      status_detail: fields.string('reason'),
      actor,
      api: compact({
        operation: `approval.${event}`,
        service: { name: 'gatehouse-approvals' },
        request: request === undefined ? undefined : { uid: request },
      }),
      // The record holds no network address of whoever acted: the proxy that handled it stands in.
      src_endpoint: { svc_name: 'gatehouse' },
      resources: [
        compact({
          type: 'statement',
          name: statement ?? undefined,
          uid: fingerprint ?? undefined,
          namespace: fields.string('database'),
          labels: fields.strings('rules'),
        }),
      ],
      message: `approval request ${request} ${event}${by ? ` by ${by}` : ''} (requested by ${subject})`,
    });
  }

  #policyChange(fields: RecordFields): OcsfEvent {
    const before = fields.string('before');
    const after = fields.string('after');
    const changedBy = fields.string('changedBy');
    const file = fields.string('file');
    const activity = before === undefined ? 1 : after === undefined ? 4 : 3;
    const data = compact({
      added: fields.strings('added'),
      removed: fields.strings('removed'),
      changed: fields.strings('changed'),
      rules: fields.value('rules') as unknown,
      fields: fields.value('fields') as unknown,
      changedBy: fields.value('changedByDocument') as unknown,
      before,
    });
    return compact({
      ...this.base(fields, { class: ENTITY_MANAGEMENT, activity, severity: 'low' }),
      status_id: STATUS.success[0],
      status: STATUS.success[1],
      actor: changedBy === undefined ? undefined : { user: user(changedBy) },
      entity: compact({
        type: 'Gatehouse policy bundle',
        name: file ?? 'policy',
        uid: after ?? before ?? 'none',
        data,
      }),
      message: fields.string('summary') ?? `policy ${fields.peek('event') ?? 'changed'}`,
    });
  }

  #eventLog(fields: RecordFields): OcsfEvent {
    const type = fields.type;
    const final = type === 'checkpoint' && fields.peek('final') === true;
    const bad = type === 'audit.loss' || type === 'log.recover';
    const activity = type === 'log.open' ? 6 : final ? 7 : 99;
    const [statusId, status] = bad ? STATUS.failure : STATUS.success;
    const detail =
      type === 'audit.loss'
        ? `${fields.peek('lost')} records lost: ${fields.peek('reason')}`
        : type === 'log.recover'
          ? `damage found on reopening: ${fields.peek('damage')}`
          : undefined;
    return compact({
      ...this.base(fields, {
        class: EVENT_LOG_ACTIVITY,
        activity,
        activityName: activity === 99 ? (LOG_ACTIVITY_NAMES[type] ?? type) : undefined,
        severity: bad ? 'high' : 'informational',
      }),
      status_id: statusId,
      status,
      status_detail: detail,
      log_name: 'gatehouse-audit',
      log_provider: 'gatehouse',
      message: detail ?? `audit log ${LOG_ACTIVITY_NAMES[type] ?? type}`,
    });
  }

  #origin(fields: RecordFields): SessionOrigin {
    return compact({
      clientAddress: fields.string('clientAddress'),
      clientPort: fields.number('clientPort'),
      pod: fields.string('pod'),
      namespace: fields.string('namespace'),
      database: fields.string('database'),
    });
  }
}

const APPROVAL_ACTIVITY: Record<string, number> = {
  requested: 1,
  approved: 3,
  denied: 3,
  withdrawn: 4,
  expired: 4,
};

const LOG_ACTIVITY_NAMES: Record<string, string> = {
  'log.open': 'opened',
  checkpoint: 'Checkpoint',
  'audit.loss': 'Loss',
  'log.recover': 'Recovery',
};

function mapApplication(application: string | undefined): Record<string, unknown> | undefined {
  return application === undefined ? undefined : { app_name: application };
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
