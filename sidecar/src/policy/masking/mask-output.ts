import type { MaskMethod } from './mask-methods.ts';
import { arrayElementType, type TypeFamily, typeFamily, typeOid } from './pg-types.ts';

/** What a masking method gives for a column of some type, so a plan can say what clients will see. */
export interface MaskOutput {
  /** 'value': a valid value of the column's type; 'null': the cell becomes SQL NULL. */
  readonly produces: 'value' | 'null';
  /**
   * Distinct values stay distinct (but for rare collisions) and equal ones equal under one key, so
   * joins, GROUP BY and DISTINCT over masked values give the groups the clear values would.
   */
  readonly joinable: boolean;
  /** The output has as many characters as the input (text format). */
  readonly keepsLength: boolean;
  readonly description: string;
}

type Row = Readonly<Record<Exclude<MaskMethod, 'nullify'>, MaskOutput>>;

const value = (description: string, joinable = false, keepsLength = false): MaskOutput => ({
  produces: 'value',
  joinable,
  keepsLength,
  description,
});
const NULL: MaskOutput = { produces: 'null', joinable: false, keepsLength: false, description: 'NULL' };

const TEXT: Row = {
  redact: value("'****' (or one '*' per character with redactStyle same-length); at most n for varchar(n)"),
  partial: value("a little kept by kind: 'a***@example.com', '************1111', '***-**-6789'"),
  hash: value('hex HMAC-SHA-256 of the UTF-8 value, hashLength digits (default 64)', true),
  tokenize: value('same length and layout, letters and digits replaced by keyed ones', true, true),
};

const TABLE: Readonly<Record<TypeFamily, Row | null>> = {
  text: TEXT,
  'user-defined': {
    redact: value("'****' in text format (may not parse as the type); NULL in binary format"),
    partial: value('as for text in text format (may not parse as the type); NULL in binary format'),
    hash: value('hex HMAC in text format (may not parse as the type); NULL in binary format', true),
    tokenize: value('as for text in text format (may not parse as the type); NULL in binary', true, true),
  },
  bpchar: {
    redact: value("one '*' per character", false, true),
    partial: value('as for text, padded or cut to the length of char(n)', false, true),
    hash: value('hex HMAC of the value without trailing blanks, padded or cut to n', true, true),
    tokenize: value('token of the value without trailing blanks, padded to n', true, true),
  },
  integer: {
    redact: value('0'),
    partial: value('the last 2 digits (4 for card and SSN columns) as a number'),
    hash: value('keyed digits, same digit count and sign, within the type range', true, true),
    tokenize: value('keyed digits, same digit count and sign, within the type range', true, true),
  },
  numeric: {
    redact: value('0'),
    partial: value('the last 2 digits (4 for card and SSN columns) of the integer part'),
    hash: value('keyed digits, same digits on each side of the point, same sign', true, true),
    tokenize: value('keyed digits, same digits on each side of the point, same sign', true, true),
  },
  float: {
    redact: value('0'),
    partial: value('the last 2 digits of the integer part'),
    hash: value('keyed mantissa digits, same exponent, within range', true),
    tokenize: value('keyed mantissa digits, same exponent, within range', true),
  },
  uuid: {
    redact: value('00000000-0000-0000-0000-000000000000', false, true),
    partial: value('zeros but the last 4 hex digits', false, true),
    hash: value('a version-8 UUID made of the HMAC', true, true),
    tokenize: value('keyed hex digits, same layout', true, true),
  },
  inet: {
    redact: value('0.0.0.0 or 0:0:0:0:0:0:0:0 with the same prefix length'),
    partial: value('first byte (IPv4) or first two (IPv6) kept, the rest zero'),
    hash: value('a keyed pseudo-random address of the same family and prefix', true),
    tokenize: value('a keyed pseudo-random address of the same family and prefix', true),
  },
  date: {
    redact: value('1900-01-01 (NULL outside DateStyle ISO)'),
    partial: value('January 1st of the same year'),
    hash: value('a keyed pseudo-random date between 1900 and 2099 (collisions are common)'),
    tokenize: value('a keyed pseudo-random date in the same year (collisions are common)'),
  },
  timestamp: {
    redact: value('1900-01-01 00:00:00 (zone kept)'),
    partial: value('midnight, January 1st of the same year'),
    hash: value('midnight of a keyed pseudo-random date between 1900 and 2099'),
    tokenize: value('midnight of a keyed pseudo-random date in the same year'),
  },
  json: {
    redact: value("every string leaf '****', every number 0; keys and structure kept"),
    partial: value('every leaf masked partially, by the kind its key names'),
    hash: value('string leaves hex HMAC, number leaves keyed digits; keys kept', true),
    tokenize: value('every leaf tokenized; keys and structure kept', true),
  },
  bytea: {
    redact: value("empty ('\\x')"),
    partial: value("empty ('\\x')"),
    hash: value('the 32-byte HMAC of the bytes', true),
    tokenize: value('keyed pseudo-random bytes of the same length', true),
  },
  array: null,
  bool: null,
  builtin: null,
};

/**
 * What `method` produces for a column of `type` (an OID, or a name such as 'int4', 'character
 * varying', 'text[]'); arrays as their element type, each element being masked alike. Types this
 * module has no rule for produce NULL, except user-defined ones in text format.
 */
export function maskOutput(method: MaskMethod, type: number | string): MaskOutput {
  if (method === 'nullify') return NULL;
  const oid = typeof type === 'number' ? type : (typeOid(type) ?? USER_DEFINED);
  const family = typeFamily(oid);
  if (family === 'array') return maskOutput(method, arrayElementType(oid)!);
  const row = TABLE[family];
  return row === null ? NULL : row[method];
}

/** Unknown type names are taken for user-defined types (enums, domains, extension types). */
const USER_DEFINED = 16384;
