import { CONTROL, DATABASE_RELATIONAL, DATASTORE_ACTIVITY, STATUS } from './ocsf-classes.ts';
import {
  clientApplication,
  compact,
  type EventBase,
  endpoint,
  type RecordFields,
  type SessionOrigin,
  user,
} from './ocsf-fields.ts';

type OcsfEvent = Record<string, unknown>;

interface Mapper {
  base(fields: RecordFields, base: EventBase): OcsfEvent;
}

/**
 * A `statement` (its outcome) or `statement.start` (written before it is sent) as Datastore
 * Activity. The activity follows the command the database reported, or else the statement's first
 * keyword; a refusal is a failure with the Security Control profile's Denied/Blocked.
 */
export function datastoreActivity(
  fields: RecordFields,
  mapper: Mapper,
  sessions: ReadonlyMap<string, SessionOrigin>,
): OcsfEvent {
  const start = fields.type === 'statement.start';
  const session = fields.string('session');
  const statement = fields.string('statement');
  const fingerprint = fields.string('fingerprint');
  const command = start ? undefined : fields.string('command');
  const outcome = start ? undefined : fields.string('outcome');
  const [activity, activityName] = statementActivity(command ?? firstKeyword(statement));
  const origin: SessionOrigin = start
    ? (sessions.get(session ?? '') ?? {})
    : compact({
        clientAddress: fields.string('clientAddress'),
        clientPort: fields.number('clientPort'),
        pod: fields.string('pod'),
        namespace: fields.string('namespace'),
      });
  const refused = outcome === 'refused';
  const base = mapper.base(fields, {
    class: DATASTORE_ACTIVITY,
    activity,
    activityName,
    severity: refused ? 'medium' : 'informational',
    profiles: start ? [] : ['security_control'],
    correlation: session,
  });
  const subject = fields.string('subject') ?? '';
  const database = start ? origin.database : fields.string('database');
  // Peeked, not taken: OCSF's duration is whole milliseconds, unmapped keeps the exact value.
  const durationMs = start ? undefined : fields.peek('durationMs');
  const duration = typeof durationMs === 'number' ? durationMs : undefined;
  const reason = start ? undefined : fields.string('reason');
  const src = endpoint(origin);
  return compact({
    ...base,
    ...(start ? {} : refused ? CONTROL.denied : CONTROL.allowed),
    ...status(outcome),
    status_code: start ? undefined : fields.string('sqlstate'),
    status_detail: reason,
    actor: compact({
      user: user(subject, start ? undefined : fields.strings('groups')),
      session: compact({ uid: session, issuer: start ? undefined : fields.string('issuer') }),
      app_name: start ? undefined : clientApplication(fields),
    }),
    // A statement.start whose session began before the exported lines names only its session.
    src_endpoint: Object.keys(src).length > 0 ? src : { uid: `session:${session ?? 'unknown'}` },
    database: compact({ name: database ?? 'unknown', ...DATABASE_RELATIONAL }),
    query_info:
      statement === undefined
        ? undefined
        : compact({ query_string: statement, uid: fingerprint ?? undefined, name: command }),
    duration: duration === undefined ? undefined : Math.round(duration),
    message: message(subject, outcome, statement, reason),
  });
}

function status(outcome: string | undefined): Record<string, unknown> {
  if (outcome === undefined) return { status_id: 99, status: 'Started' };
  const [status_id, status] = outcome === 'ok' ? STATUS.success : STATUS.failure;
  return { status_id, status };
}

function message(
  subject: string,
  outcome: string | undefined,
  statement: string | undefined,
  reason: string | undefined,
): string {
  const what = statement ?? '(a statement that could not be parsed)';
  if (outcome === undefined) return `${subject} sends ${what}`;
  if (outcome === 'refused') return `refused for ${subject}: ${what}${reason ? ` (${reason})` : ''}`;
  return `${subject} ran ${what}: ${outcome}`;
}

function firstKeyword(statement: string | undefined): string | undefined {
  return statement?.trimStart().match(/^[A-Za-z]+/)?.[0];
}

/** OCSF Datastore Activity for a command tag or first keyword (`CREATE TABLE` reads as CREATE). */
export function statementActivity(command: string | undefined): [number, string | undefined] {
  const keyword = command?.split(/\s/)[0]?.toUpperCase();
  if (keyword === undefined || keyword === '') return [0, undefined];
  const known = ACTIVITY_BY_KEYWORD[keyword];
  if (known !== undefined) return [known, undefined];
  return [99, keyword];
}

const ACTIVITY_BY_KEYWORD: Record<string, number> = {
  SELECT: 4,
  WITH: 4,
  VALUES: 4,
  TABLE: 4,
  EXPLAIN: 4,
  FETCH: 1,
  SHOW: 8,
  DESCRIBE: 8,
  DESC: 8,
  INSERT: 5,
  REPLACE: 5,
  LOAD: 5,
  UPDATE: 2,
  MERGE: 2,
  ALTER: 2,
  RENAME: 2,
  COMMENT: 2,
  CREATE: 6,
  DELETE: 7,
  TRUNCATE: 7,
  DROP: 7,
};
