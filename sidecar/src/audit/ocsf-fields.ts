import type { ParsedRecord } from './chain.ts';
import type { OcsfClass, Severity } from './ocsf-classes.ts';

/**
 * Reads the fields of one audit record and remembers which it read, so that whatever a mapping does
 * not place in an OCSF attribute lands in `unmapped`: a field added to a record later is carried
 * along, never dropped without anyone noticing.
 */
export class RecordFields {
  readonly #record: ParsedRecord;
  readonly #read = new Set<string>(['seq', 'prev', 'time', 'type']);

  constructor(record: ParsedRecord) {
    this.#record = record;
  }

  get type(): string {
    return this.#record.type;
  }

  string(name: string): string | undefined {
    const value = this.#take(name);
    return typeof value === 'string' ? value : undefined;
  }

  number(name: string): number | undefined {
    const value = this.#take(name);
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  }

  strings(name: string): string[] | undefined {
    const value = this.#take(name);
    return Array.isArray(value)
      ? value.filter((item): item is string => typeof item === 'string')
      : undefined;
  }

  /** A field whose value is copied as it is (an object of the record's own making). */
  value(name: string): unknown {
    return this.#take(name);
  }

  /** Reads a field without consuming it: it still goes to `unmapped`. */
  peek(name: string): unknown {
    return this.#record[name];
  }

  /** The fields no mapping read, as they are in the record. */
  rest(): Record<string, unknown> {
    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(this.#record)) {
      if (!this.#read.has(name) && value !== undefined && value !== null) rest[name] = value;
    }
    return rest;
  }

  #take(name: string): unknown {
    this.#read.add(name);
    return this.#record[name];
  }
}

/** Milliseconds since the epoch, as OCSF's `time`; 0 when the record's time does not parse. */
export function epochMs(time: unknown): number {
  const ms = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  return Number.isFinite(ms) ? ms : 0;
}

/** Drops undefined members, so that an attribute the record lacks is absent rather than null. */
export function compact<T extends Record<string, unknown>>(object: T): T {
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
  return object;
}

/** Where a session's records come from: `statement.start` names only its session. */
export interface SessionOrigin {
  readonly clientAddress?: string;
  readonly clientPort?: number;
  readonly pod?: string;
  readonly namespace?: string;
  /** The database the session logged into. */
  readonly database?: string;
}

/** What every mapping fills in: class, activity, time, severity, metadata. */
export interface EventBase {
  readonly class: OcsfClass;
  readonly activity: number;
  /** For activity 99 (Other): what it was. */
  readonly activityName?: string | undefined;
  readonly severity: Severity;
  readonly profiles?: readonly string[];
  readonly correlation?: string | undefined;
}

/** An OCSF user: the subject is both its name and its stable identifier. */
export function user(subject: string, groups?: readonly string[]): Record<string, unknown> {
  return compact({
    name: subject,
    uid: subject,
    groups: groups && groups.length > 0 ? groups.map((name) => ({ name })) : undefined,
  });
}

/** The client's network endpoint; its name is the pod (`namespace/pod`) when the identity names one. */
export function endpoint(origin: SessionOrigin): Record<string, unknown> {
  return compact({
    ip: origin.clientAddress,
    port: origin.clientPort,
    name:
      origin.pod === undefined
        ? undefined
        : origin.namespace === undefined
          ? origin.pod
          : `${origin.namespace}/${origin.pod}`,
  });
}

/**
 * OCSF's `actor.app_name` ("the client application that initiated the activity"): the record's
 * `application`, as the client declared it (application_name, program_name). Self-declared, so it
 * names a tool, never an identity. The proxy's own `mcpTool`, which no client can set, has no OCSF
 * attribute of that meaning and stays in `unmapped.mcpTool`, apart from what a client claims.
 */
export function clientApplication(fields: RecordFields): string | undefined {
  return fields.string('application');
}
