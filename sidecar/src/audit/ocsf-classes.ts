/**
 * The parts of the Open Cybersecurity Schema Framework (OCSF) 1.5.0 that the audit export uses: the
 * classes, their activities and the shared enumerations, with the captions the schema gives them. The
 * numbers are the schema's; test/fixtures/ocsf/ holds the schema's own JSON Schemas for these classes,
 * which the tests validate every mapped record against.
 */
export const OCSF_VERSION = '1.5.0';

export interface OcsfClass {
  readonly uid: number;
  readonly name: string;
  readonly categoryUid: number;
  readonly categoryName: string;
  readonly activities: Readonly<Record<number, string>>;
}

export const DATASTORE_ACTIVITY: OcsfClass = {
  uid: 6005,
  name: 'Datastore Activity',
  categoryUid: 6,
  categoryName: 'Application Activity',
  activities: {
    0: 'Unknown',
    1: 'Read',
    2: 'Update',
    3: 'Connect',
    4: 'Query',
    5: 'Write',
    6: 'Create',
    7: 'Delete',
    8: 'List',
    99: 'Other',
  },
};

export const AUTHENTICATION: OcsfClass = {
  uid: 3002,
  name: 'Authentication',
  categoryUid: 3,
  categoryName: 'Identity & Access Management',
  activities: { 0: 'Unknown', 1: 'Logon', 2: 'Logoff', 99: 'Other' },
};

export const API_ACTIVITY: OcsfClass = {
  uid: 6003,
  name: 'API Activity',
  categoryUid: 6,
  categoryName: 'Application Activity',
  activities: { 0: 'Unknown', 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' },
};

export const ENTITY_MANAGEMENT: OcsfClass = {
  uid: 3004,
  name: 'Entity Management',
  categoryUid: 3,
  categoryName: 'Identity & Access Management',
  activities: { 0: 'Unknown', 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' },
};

/** The schema spells this class `event_log_actvity` (sic) in its names; its caption is right. */
export const EVENT_LOG_ACTIVITY: OcsfClass = {
  uid: 1008,
  name: 'Event Log Activity',
  categoryUid: 1,
  categoryName: 'System Activity',
  activities: { 0: 'Unknown', 6: 'Start', 7: 'Stop', 99: 'Other' },
};

export const SEVERITY = {
  informational: [1, 'Informational'],
  low: [2, 'Low'],
  medium: [3, 'Medium'],
  high: [4, 'High'],
} as const satisfies Record<string, readonly [number, string]>;

export type Severity = keyof typeof SEVERITY;

export const STATUS = {
  success: [1, 'Success'],
  failure: [2, 'Failure'],
} as const satisfies Record<string, readonly [number, string]>;

/** Security Control profile: what the control did (action) and with what effect (disposition). */
export const CONTROL = {
  allowed: { action_id: 1, action: 'Allowed', disposition_id: 1, disposition: 'Allowed' },
  denied: { action_id: 2, action: 'Denied', disposition_id: 2, disposition: 'Blocked' },
} as const;

/** database.type_id: every database Gatehouse fronts is relational. */
export const DATABASE_RELATIONAL = { type_id: 1, type: 'Relational' } as const;
