import { mapArrayElements } from './array-text.ts';
import { formatByteaHex, parseByteaText } from './bytea-text.ts';
import { classifyKey } from './classify-column.ts';
import { classifyValue } from './classify-value.ts';
import { civilFromDays, daysFromCivil, daysInYear, formatDate, parseIsoDate } from './date-text.ts';
import type { HmacSha256 } from './hmac-sha256.ts';
import { formatInet, parseInet, zeroHostBits } from './inet-text.ts';
import { mapJsonLeaves } from './json-text.ts';
import type { MaskingKey } from './masking-key.ts';
import { partialText } from './partial-text.ts';
import { arrayElementType, PG_TYPE, type TypeFamily, typeFamily } from './pg-types.ts';
import type { PiiKind } from './pii-kind.ts';
import { macOfText, prf, prfOfBytes, TAG_DATE, TAG_VALUE } from './prf.ts';
import { tokenizeHex, tokenizeNumber, tokenizeText } from './tokenize.ts';

export const MASK_METHODS = ['redact', 'partial', 'hash', 'tokenize', 'nullify'] as const;
export type MaskMethod = (typeof MASK_METHODS)[number];

/** What a mask needs to know besides the value. */
export interface MaskContext {
  readonly key: MaskingKey;
  /**
   * What the value is (usually the column's classification); it shapes partial masks. null: nothing
   * known, mask generically; undefined: partial classifies the value itself, which costs more.
   */
  readonly kind?: PiiKind | null;
  /** The column's type OID from RowDescription; text when absent. */
  readonly typeOid?: number;
  /** The column's type modifier from RowDescription (varchar(n) and char(n): n + 4); -1 when none. */
  readonly typmod?: number;
  /** redact on text: a fixed `****` (the default, it hides the length) or one `*` per character. */
  readonly redactStyle?: 'fixed' | 'same-length';
  /** hash on text: how many hex digits of the HMAC to keep, 8 to 64 (default 64). */
  readonly hashLength?: number;
}

/** A masking method: the masked text of a value in PostgreSQL's text format, or null for SQL NULL. */
export type MaskFunction = (value: string, context: MaskContext) => string | null;

export const REDACTED = '****';
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const INTEGER_MAX: ReadonlyMap<number, string> = new Map([
  [PG_TYPE.int2, '32767'],
  [PG_TYPE.int4, '2147483647'],
  [PG_TYPE.int8, '9223372036854775807'],
  [PG_TYPE.oid, '4294967295'],
]);

function familyOf(context: MaskContext): TypeFamily {
  return typeFamily(context.typeOid ?? PG_TYPE.text);
}

function codePoints(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) if ((text.charCodeAt(i) & 0xfc00) === 0xdc00) count--;
  return count;
}

function stars(count: number): string {
  return '*'.repeat(count);
}

/** The first `count` code points of text. */
function firstCodePoints(text: string, count: number): string {
  if (text.length <= count) return text;
  let end = 0;
  for (let seen = 0; end < text.length && seen < count; seen++) {
    end += (text.charCodeAt(end) & 0xfc00) === 0xd800 ? 2 : 1;
  }
  return text.slice(0, end);
}

/**
 * Makes a masked text fit the column: varchar(n) and char(n) hold at most n characters, a char(n)
 * value always has exactly the length of the original (PostgreSQL pads it to n), a name 63 bytes.
 */
function fitColumn(masked: string, original: string, context: MaskContext, family: TypeFamily): string {
  if (family === 'bpchar') {
    const length = codePoints(original);
    const cut = firstCodePoints(masked, length);
    return cut + ' '.repeat(length - codePoints(cut));
  }
  const typmod = context.typmod ?? -1;
  if (typmod >= 4 && context.typeOid === PG_TYPE.varchar) return firstCodePoints(masked, typmod - 4);
  if (context.typeOid === PG_TYPE.name) return firstBytes(masked, NAME_BYTES);
  return masked;
}

/** A name holds at most NAMEDATALEN - 1 bytes; PostgreSQL rejects longer identifiers. */
const NAME_BYTES = 63;

/** The longest prefix of text, whole characters only, whose UTF-8 fits in `limit` bytes. */
function firstBytes(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    bytes += Buffer.byteLength(char);
    if (bytes > limit) break;
    out += char;
  }
  return out;
}

/** char(n) values carry trailing blanks that PostgreSQL ignores in comparisons; so do hash and tokenize. */
function significant(value: string, family: TypeFamily): string {
  return family === 'bpchar' ? value.replace(/ +$/, '') : value;
}

/** An array column's typmod is its elements' (varchar(5)[] has that of varchar(5)). */
function elementContext(context: MaskContext): MaskContext | null {
  const element = arrayElementType(context.typeOid ?? PG_TYPE.text);
  return element === undefined ? null : { ...context, typeOid: element };
}

function eachElement(value: string, context: MaskContext, method: MaskFunction): string | null {
  const inner = elementContext(context);
  if (inner === null) return null;
  return mapArrayElements(value, (element) => (element === null ? null : method(element, inner)));
}

/** Masks the address bytes of an inet or cidr value, keeping its family and prefix length. */
function inetMask(value: string, context: MaskContext, change: (bytes: Uint8Array) => void): string | null {
  const inet = parseInet(value);
  if (inet === null) return null;
  const bytes = Uint8Array.from(inet.bytes);
  change(bytes);
  if (context.typeOid === PG_TYPE.cidr && inet.prefix !== null) zeroHostBits(bytes, inet.prefix);
  return formatInet({ bytes, prefix: inet.prefix });
}

/** Keyed bytes drawn from the address bytes, so every spelling of one address (`::1`, `0:0:...:1`) agrees. */
function pseudoRandomAddress(mac: HmacSha256) {
  return (bytes: Uint8Array): void => {
    bytes.set(prfOfBytes(mac, TAG_VALUE, bytes, 0, bytes.length, bytes.length).subarray(0, bytes.length));
  };
}

/**
 * Masks the date in a date or timestamp value. Infinite dates pass unchanged (they say nothing);
 * dates outside DateStyle ISO, which drivers set, cannot be rewritten and become NULL. Times become
 * midnight; a timestamptz keeps its zone offset.
 */
function dateMask(
  value: string,
  family: TypeFamily,
  change: (year: number, month: number, day: number) => [number, number, number],
): string | null {
  if (value === 'infinity' || value === '-infinity') return value;
  const date = parseIsoDate(value);
  if (date === null) return null;
  const [year, month, day] = change(date.year, date.month, date.day);
  const text = formatDate(year, month, day);
  return family === 'timestamp' ? `${text} 00:00:00${date.zone}` : text;
}

function uint32(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

const FIRST_HASH_DAY = daysFromCivil(1900, 1, 1);
const HASH_DAYS = daysFromCivil(2100, 1, 1) - FIRST_HASH_DAY;

/** A number token that also fits a float4 or float8 (a mantissa starting with 9 can overflow). */
function numberToken(value: string, mac: HmacSha256, context: MaskContext, family: TypeFamily): string {
  const token = tokenizeNumber(value, mac, INTEGER_MAX.get(context.typeOid ?? PG_TYPE.numeric));
  if (family !== 'float') return token;
  const number = context.typeOid === PG_TYPE.float4 ? Math.fround(Number(token)) : Number(token);
  return Number.isFinite(number) || !Number.isFinite(Number(value)) ? token : token.replace(/[0-9]/, '1');
}

/** A number built from the last digits of the integer part (4 for card numbers, else 2). */
function partialNumber(value: string, kind: PiiKind | null | undefined): string {
  const integer = /^-?([0-9]*)/.exec(value)![1]!;
  const kept = integer.slice(-(kind === 'card' || kind === 'ssn' ? 4 : 2)).replace(/^0+/, '');
  return kept === '' ? '0' : kept;
}

function kindFor(value: string, context: MaskContext): PiiKind | null {
  return context.kind === undefined ? classifyValue(value) : context.kind;
}

function leafKind(key: string | null, context: MaskContext): PiiKind | null {
  const byKey = key === null ? null : classifyKey(key);
  return byKey ?? (context.kind === undefined ? null : context.kind);
}

const digest = new Uint8Array(32);

function hmacHex(mac: HmacSha256, text: string): string {
  macOfText(mac, text, digest);
  return Buffer.from(digest.buffer, 0, 32).toString('hex');
}

/** Replaces the value by a constant: `****` for text, 0 for numbers, 1900-01-01 for dates. */
export const redact: MaskFunction = (value, context) => {
  const family = familyOf(context);
  switch (family) {
    case 'text':
    case 'user-defined':
      return fitColumn(
        context.redactStyle === 'same-length' ? stars(codePoints(value)) : REDACTED,
        value,
        context,
        family,
      );
    case 'bpchar':
      return stars(codePoints(value));
    case 'integer':
    case 'numeric':
    case 'float':
      return '0';
    case 'uuid':
      return ZERO_UUID;
    case 'inet':
      return inetMask(value, context, (bytes) => bytes.fill(0));
    case 'date':
    case 'timestamp':
      return dateMask(value, family, () => [1900, 1, 1]);
    case 'json':
      return (
        mapJsonLeaves(value, (_leaf, _key, isNumber) => (isNumber ? '0' : REDACTED)) ??
        JSON.stringify(REDACTED)
      );
    case 'bytea':
      return '\\x';
    case 'array':
      return eachElement(value, context, redact);
    case 'bool':
    case 'builtin':
      return null;
  }
};

/** Keeps a little of the value (see partialText); numbers keep their last digits, dates their year. */
export const partial: MaskFunction = (value, context) => {
  const family = familyOf(context);
  switch (family) {
    case 'text':
    case 'bpchar':
    case 'user-defined':
      return fitColumn(partialText(value, kindFor(value, context)), value, context, family);
    case 'integer':
    case 'numeric':
    case 'float':
      return partialNumber(value, context.kind);
    case 'uuid':
      return ZERO_UUID.slice(0, 32) + value.slice(-4);
    case 'inet':
      return inetMask(value, context, (bytes) => bytes.fill(0, bytes.length === 4 ? 1 : 2));
    case 'date':
    case 'timestamp':
      return dateMask(value, family, (year) => [year, 1, 1]);
    case 'json':
      return (
        mapJsonLeaves(value, (leaf, key, isNumber) =>
          isNumber ? partialNumber(leaf, leafKind(key, context)) : partialText(leaf, leafKind(key, context)),
        ) ?? JSON.stringify(REDACTED)
      );
    case 'bytea':
      return '\\x';
    case 'array':
      return eachElement(value, context, partial);
    case 'bool':
    case 'builtin':
      return null;
  }
};

/**
 * Keyed HMAC-SHA-256 of the value's UTF-8 bytes, as hex (truncated to hashLength). Types that
 * cannot hold hex get a keyed substitute of their own type: digits for numbers, a UUID (version 8)
 * built from the HMAC, a pseudo-random address or date.
 */
export const hash: MaskFunction = (value, context) => {
  const family = familyOf(context);
  const mac = context.key.hash;
  switch (family) {
    case 'text':
    case 'user-defined':
    case 'bpchar': {
      const length = Math.min(64, Math.max(8, context.hashLength ?? 64));
      return fitColumn(hmacHex(mac, significant(value, family)).slice(0, length), value, context, family);
    }
    case 'integer':
    case 'numeric':
    case 'float':
      return numberToken(value, mac, context, family);
    case 'uuid': {
      const hex = hmacHex(mac, value);
      const variant = ((Number.parseInt(hex[16]!, 16) & 3) | 8).toString(16);
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    }
    case 'inet':
      return inetMask(value, context, pseudoRandomAddress(mac));
    case 'date':
    case 'timestamp':
      return dateMask(value, family, (year, month, day) => {
        const offset = uint32(prf(mac, TAG_DATE, formatDate(year, month, day), 4)) % HASH_DAYS;
        const date = civilFromDays(FIRST_HASH_DAY + offset);
        return [date.year, date.month, date.day];
      });
    case 'json':
      return (
        mapJsonLeaves(value, (leaf, _key, isNumber) =>
          isNumber ? tokenizeNumber(leaf, mac) : hmacHex(mac, leaf).slice(0, context.hashLength ?? 64),
        ) ?? JSON.stringify(REDACTED)
      );
    case 'bytea': {
      const bytes = parseByteaText(value);
      if (bytes === null) return null;
      return formatByteaHex(mac.digest(bytes));
    }
    case 'array':
      return eachElement(value, context, hash);
    case 'bool':
    case 'builtin':
      return null;
  }
};

/**
 * Deterministic, keyed, format-preserving (see tokenize.ts): text keeps its layout, numbers their
 * digit counts within the type's range, dates their year, addresses their family, bytea its length.
 */
export const tokenize: MaskFunction = (value, context) => {
  const family = familyOf(context);
  const mac = context.key.tokenize;
  switch (family) {
    case 'text':
    case 'user-defined':
      return fitColumn(tokenizeText(value, mac), value, context, family);
    case 'bpchar':
      return fitColumn(tokenizeText(significant(value, family), mac), value, context, family);
    case 'integer':
    case 'numeric':
    case 'float':
      return numberToken(value, mac, context, family);
    case 'uuid':
      return tokenizeHex(value, mac);
    case 'inet':
      return inetMask(value, context, pseudoRandomAddress(mac));
    case 'date':
    case 'timestamp':
      return dateMask(value, family, (year, month, day) => {
        const offset = uint32(prf(mac, TAG_DATE, formatDate(year, month, day), 4)) % daysInYear(year);
        const date = civilFromDays(daysFromCivil(year, 1, 1) + offset);
        return [date.year, date.month, date.day];
      });
    case 'json':
      return (
        mapJsonLeaves(value, (leaf, _key, isNumber) =>
          isNumber ? tokenizeNumber(leaf, mac) : tokenizeText(leaf, mac),
        ) ?? JSON.stringify(REDACTED)
      );
    case 'bytea': {
      const bytes = parseByteaText(value);
      if (bytes === null) return null;
      return formatByteaHex(
        prfOfBytes(mac, TAG_VALUE, bytes, 0, bytes.length, bytes.length).slice(0, bytes.length),
      );
    }
    case 'array':
      return eachElement(value, context, tokenize);
    case 'bool':
    case 'builtin':
      return null;
  }
};

/** Always SQL NULL. */
export const nullify: MaskFunction = () => null;

export const MASK_FUNCTIONS: Readonly<Record<MaskMethod, MaskFunction>> = {
  redact,
  partial,
  hash,
  tokenize,
  nullify,
};

/** Masks a value given in PostgreSQL's text format; null means the cell becomes SQL NULL. */
export function maskValue(value: string, method: MaskMethod, context: MaskContext): string | null {
  return MASK_FUNCTIONS[method](value, context);
}
