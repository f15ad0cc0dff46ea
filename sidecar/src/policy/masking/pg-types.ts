/** Type OIDs of PostgreSQL's built-in types (pg_type.dat); they are fixed across versions. */
export const PG_TYPE = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  cidr: 650,
  float4: 700,
  float8: 701,
  unknown: 705,
  money: 790,
  macaddr: 829,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  record: 2249,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** How masking treats a type: values of one family are masked alike. */
export type TypeFamily =
  | 'text'
  | 'bpchar'
  | 'integer'
  | 'numeric'
  | 'float'
  | 'uuid'
  | 'inet'
  | 'date'
  | 'timestamp'
  | 'json'
  | 'bytea'
  | 'bool'
  | 'array'
  | 'builtin'
  | 'user-defined';

const FAMILIES = new Map<number, TypeFamily>([
  [PG_TYPE.text, 'text'],
  [PG_TYPE.varchar, 'text'],
  [PG_TYPE.name, 'text'],
  [PG_TYPE.unknown, 'text'],
  [PG_TYPE.bpchar, 'bpchar'],
  [PG_TYPE.char, 'bpchar'],
  [PG_TYPE.int2, 'integer'],
  [PG_TYPE.int4, 'integer'],
  [PG_TYPE.int8, 'integer'],
  [PG_TYPE.oid, 'integer'],
  [PG_TYPE.numeric, 'numeric'],
  [PG_TYPE.float4, 'float'],
  [PG_TYPE.float8, 'float'],
  [PG_TYPE.uuid, 'uuid'],
  [PG_TYPE.inet, 'inet'],
  [PG_TYPE.cidr, 'inet'],
  [PG_TYPE.date, 'date'],
  [PG_TYPE.timestamp, 'timestamp'],
  [PG_TYPE.timestamptz, 'timestamp'],
  [PG_TYPE.json, 'json'],
  [PG_TYPE.jsonb, 'json'],
  [PG_TYPE.bytea, 'bytea'],
  [PG_TYPE.bool, 'bool'],
  // Composite values print as text; masking treats them as opaque text, as it does user types.
  [PG_TYPE.record, 'user-defined'],
]);

/** Array type OID → element type OID, for the arrays of the types above. */
const ARRAY_ELEMENTS = new Map<number, number>([
  [1000, PG_TYPE.bool],
  [1001, PG_TYPE.bytea],
  [1002, PG_TYPE.char],
  [1003, PG_TYPE.name],
  [1005, PG_TYPE.int2],
  [1007, PG_TYPE.int4],
  [1009, PG_TYPE.text],
  [1014, PG_TYPE.bpchar],
  [1015, PG_TYPE.varchar],
  [1016, PG_TYPE.int8],
  [1021, PG_TYPE.float4],
  [1022, PG_TYPE.float8],
  [1028, PG_TYPE.oid],
  [1041, PG_TYPE.inet],
  [651, PG_TYPE.cidr],
  [1182, PG_TYPE.date],
  [1115, PG_TYPE.timestamp],
  [1185, PG_TYPE.timestamptz],
  [1231, PG_TYPE.numeric],
  [2951, PG_TYPE.uuid],
  [199, PG_TYPE.json],
  [3807, PG_TYPE.jsonb],
  [2287, PG_TYPE.record],
  [143, PG_TYPE.xml],
]);

/** OIDs below this are built in; above it, types made by CREATE TYPE/DOMAIN or extensions. */
const FIRST_USER_OID = 16384;

export function typeFamily(oid: number): TypeFamily {
  const family = FAMILIES.get(oid);
  if (family !== undefined) return family;
  if (ARRAY_ELEMENTS.has(oid)) return 'array';
  return oid >= FIRST_USER_OID ? 'user-defined' : 'builtin';
}

/** The element type of an array type, or undefined when the OID is not an array this module knows. */
export function arrayElementType(oid: number): number | undefined {
  return ARRAY_ELEMENTS.get(oid);
}

const NAMES = new Map<string, number>([
  ...Object.entries(PG_TYPE),
  ['character varying', PG_TYPE.varchar],
  ['character', PG_TYPE.bpchar],
  ['smallint', PG_TYPE.int2],
  ['integer', PG_TYPE.int4],
  ['int', PG_TYPE.int4],
  ['bigint', PG_TYPE.int8],
  ['real', PG_TYPE.float4],
  ['double precision', PG_TYPE.float8],
  ['decimal', PG_TYPE.numeric],
  ['boolean', PG_TYPE.bool],
  ['timestamp without time zone', PG_TYPE.timestamp],
  ['timestamp with time zone', PG_TYPE.timestamptz],
  ['time without time zone', PG_TYPE.time],
]);

/**
 * The OID of a built-in type named as in SQL or pg_type (`integer`, `int4`, `text[]`, `_text`), or
 * undefined for names this module does not know (they are treated as user-defined).
 */
export function typeOid(name: string): number | undefined {
  const lower = name.trim().toLowerCase();
  const element = lower.endsWith('[]') ? lower.slice(0, -2) : lower.startsWith('_') ? lower.slice(1) : null;
  if (element !== null) {
    const elementOid = NAMES.get(element);
    if (elementOid === undefined) return undefined;
    for (const [array, of] of ARRAY_ELEMENTS) if (of === elementOid) return array;
    return undefined;
  }
  return NAMES.get(lower);
}
