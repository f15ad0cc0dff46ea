import { civilFromDays, daysFromCivil, formatDate, POSTGRES_EPOCH_DAYS } from './date-text.ts';
import { formatInet, parseInet } from './inet-text.ts';
import { PG_TYPE } from './pg-types.ts';

/*
 * PostgreSQL's binary send/recv formats for the scalar types masking rewrites, to and from their
 * text form, so that one masking method serves both formats. Unsupported types give null.
 */

function view(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const INT32_MAX = 0x7fffffff;
const INT32_MIN = -0x80000000;
const INT64_MAX = 0x7fffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const MICROS_PER_DAY = 86_400_000_000n;

/** The text form of a binary value of type `oid`, or null when the type or the bytes are not handled. */
export function decodeBinary(oid: number, bytes: Uint8Array): string | null {
  const b = view(bytes);
  switch (oid) {
    case PG_TYPE.text:
    case PG_TYPE.varchar:
    case PG_TYPE.bpchar:
    case PG_TYPE.name:
    case PG_TYPE.char:
    case PG_TYPE.unknown:
    case PG_TYPE.json:
      return b.toString('utf8');
    case PG_TYPE.jsonb:
      return b[0] === 1 ? b.toString('utf8', 1) : null;
    case PG_TYPE.int2:
      return b.length === 2 ? String(b.readInt16BE(0)) : null;
    case PG_TYPE.int4:
      return b.length === 4 ? String(b.readInt32BE(0)) : null;
    case PG_TYPE.oid:
      return b.length === 4 ? String(b.readUInt32BE(0)) : null;
    case PG_TYPE.int8:
      return b.length === 8 ? String(b.readBigInt64BE(0)) : null;
    case PG_TYPE.float4:
      return b.length === 4 ? shortestFloat4(b.readFloatBE(0)) : null;
    case PG_TYPE.float8:
      return b.length === 8 ? floatText(b.readDoubleBE(0)) : null;
    case PG_TYPE.numeric:
      return decodeNumeric(b);
    case PG_TYPE.uuid:
      return b.length === 16 ? uuidText(b) : null;
    case PG_TYPE.inet:
    case PG_TYPE.cidr:
      return decodeInet(b);
    case PG_TYPE.date:
      return b.length === 4 ? dateText(b.readInt32BE(0)) : null;
    case PG_TYPE.timestamp:
    case PG_TYPE.timestamptz:
      return b.length === 8 ? timestampText(b.readBigInt64BE(0), oid === PG_TYPE.timestamptz) : null;
    default:
      return null;
  }
}

/** The binary form of text of type `oid`, or null when the type or the text is not handled. */
export function encodeBinary(oid: number, text: string): Uint8Array | null {
  switch (oid) {
    case PG_TYPE.text:
    case PG_TYPE.varchar:
    case PG_TYPE.bpchar:
    case PG_TYPE.name:
    case PG_TYPE.char:
    case PG_TYPE.unknown:
    case PG_TYPE.json:
      return Buffer.from(text, 'utf8');
    case PG_TYPE.jsonb:
      return Buffer.concat([Buffer.of(1), Buffer.from(text, 'utf8')]);
    case PG_TYPE.int2:
      return integer(text, 2);
    case PG_TYPE.int4:
      return integer(text, 4);
    case PG_TYPE.oid:
      return integer(text, 4, true);
    case PG_TYPE.int8:
      return integer(text, 8);
    case PG_TYPE.float4: {
      const out = Buffer.alloc(4);
      out.writeFloatBE(Number(text));
      return out;
    }
    case PG_TYPE.float8: {
      const out = Buffer.alloc(8);
      out.writeDoubleBE(Number(text));
      return out;
    }
    case PG_TYPE.numeric:
      return encodeNumeric(text);
    case PG_TYPE.uuid:
      return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)
        ? Buffer.from(text.replaceAll('-', ''), 'hex')
        : null;
    case PG_TYPE.inet:
    case PG_TYPE.cidr:
      return encodeInet(text, oid === PG_TYPE.cidr);
    case PG_TYPE.date:
      return encodeDate(text);
    case PG_TYPE.timestamp:
    case PG_TYPE.timestamptz:
      return encodeTimestamp(text);
    default:
      return null;
  }
}

function integer(text: string, size: 2 | 4 | 8, unsigned = false): Uint8Array | null {
  if (!/^-?[0-9]+$/.test(text)) return null;
  const out = Buffer.alloc(size);
  try {
    if (size === 8) out.writeBigInt64BE(BigInt(text));
    else if (size === 4 && unsigned) out.writeUInt32BE(Number(text));
    else if (size === 4) out.writeInt32BE(Number(text));
    else out.writeInt16BE(Number(text));
  } catch {
    return null;
  }
  return out;
}

function floatText(value: number): string {
  return Number.isNaN(value) ? 'NaN' : String(value);
}

/** The shortest decimal that reads back as the same float4, as PostgreSQL 12+ prints it. */
function shortestFloat4(value: number): string {
  if (!Number.isFinite(value)) return floatText(value);
  for (let precision = 1; precision < 9; precision++) {
    const candidate = Number(value.toPrecision(precision));
    if (Math.fround(candidate) === value) return String(candidate);
  }
  return String(value);
}

const NUMERIC_POSITIVE = 0x0000;
const NUMERIC_NEGATIVE = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PLUS_INFINITY = 0xd000;
const NUMERIC_MINUS_INFINITY = 0xf000;

/** numeric_send: ndigits, weight, sign, dscale, then base-10000 digits, all 16-bit big-endian. */
function decodeNumeric(b: Buffer): string | null {
  if (b.length < 8) return null;
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readInt16BE(6);
  if (b.length !== 8 + ndigits * 2) return null;
  if (sign === NUMERIC_NAN) return 'NaN';
  if (sign === NUMERIC_PLUS_INFINITY) return 'Infinity';
  if (sign === NUMERIC_MINUS_INFINITY) return '-Infinity';
  const digit = (index: number): number => (index >= 0 && index < ndigits ? b.readInt16BE(8 + index * 2) : 0);
  let integer = '';
  for (let i = 0; i <= weight; i++) {
    integer += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, '0');
  }
  if (integer === '') integer = '0';
  let fraction = '';
  for (let i = weight + 1; fraction.length < dscale; i++) fraction += String(digit(i)).padStart(4, '0');
  fraction = fraction.slice(0, dscale);
  const negative = sign === NUMERIC_NEGATIVE && /[1-9]/.test(integer + fraction);
  return (negative ? '-' : '') + integer + (dscale > 0 ? '.' + fraction : '');
}

function encodeNumeric(text: string): Uint8Array | null {
  const special =
    text === 'NaN'
      ? NUMERIC_NAN
      : text === 'Infinity'
        ? NUMERIC_PLUS_INFINITY
        : text === '-Infinity'
          ? NUMERIC_MINUS_INFINITY
          : -1;
  if (special >= 0) {
    const out = Buffer.alloc(8);
    out.writeUInt16BE(special, 4);
    return out;
  }
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text);
  if (m === null) return null;
  const fraction = m[3] ?? '';
  const integerDigits = m[2]!.replace(/^0+/, '');
  const integerPart = integerDigits.padStart(Math.ceil(integerDigits.length / 4) * 4, '0');
  const fractionPart = fraction.padEnd(Math.ceil(fraction.length / 4) * 4, '0');
  const groups: number[] = [];
  for (let i = 0; i < integerPart.length; i += 4) groups.push(Number(integerPart.slice(i, i + 4)));
  for (let i = 0; i < fractionPart.length; i += 4) groups.push(Number(fractionPart.slice(i, i + 4)));
  let weight = integerPart.length / 4 - 1;
  let first = 0;
  while (first < groups.length && groups[first] === 0) {
    first++;
    weight--;
  }
  let last = groups.length;
  while (last > first && groups[last - 1] === 0) last--;
  const digits = groups.slice(first, last);
  if (digits.length === 0) weight = 0;
  const out = Buffer.alloc(8 + digits.length * 2);
  out.writeInt16BE(digits.length, 0);
  out.writeInt16BE(weight, 2);
  out.writeUInt16BE(m[1] === '-' && digits.length > 0 ? NUMERIC_NEGATIVE : NUMERIC_POSITIVE, 4);
  out.writeInt16BE(fraction.length, 6);
  for (let i = 0; i < digits.length; i++) out.writeInt16BE(digits[i]!, 8 + i * 2);
  return out;
}

function uuidText(b: Buffer): string {
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const PGSQL_AF_INET = 2;
const PGSQL_AF_INET6 = 3;

/** inet_send: family, prefix bits, is_cidr, address length, address. */
function decodeInet(b: Buffer): string | null {
  if (b.length < 4) return null;
  const family = b[0];
  const bits = b[1]!;
  const isCidr = b[2] === 1;
  const length = b[3]!;
  if ((family !== PGSQL_AF_INET || length !== 4) && (family !== PGSQL_AF_INET6 || length !== 16)) return null;
  if (b.length !== 4 + length) return null;
  const bytes = Uint8Array.from(b.subarray(4));
  const full = length * 8;
  return formatInet({ bytes, prefix: isCidr || bits !== full ? bits : null });
}

function encodeInet(text: string, isCidr: boolean): Uint8Array | null {
  const inet = parseInet(text);
  if (inet === null) return null;
  const length = inet.bytes.length;
  const out = Buffer.alloc(4 + length);
  out[0] = length === 4 ? PGSQL_AF_INET : PGSQL_AF_INET6;
  out[1] = inet.prefix ?? length * 8;
  out[2] = isCidr ? 1 : 0;
  out[3] = length;
  out.set(inet.bytes, 4);
  return out;
}

function civilText(days: number): string {
  const { year, month, day } = civilFromDays(days);
  return year > 0 ? formatDate(year, month, day) : `${formatDate(1 - year, month, day)} BC`;
}

function dateText(days: number): string {
  if (days === INT32_MAX) return 'infinity';
  if (days === INT32_MIN) return '-infinity';
  return civilText(days + POSTGRES_EPOCH_DAYS);
}

function timestampText(micros: bigint, withZone: boolean): string {
  if (micros === INT64_MAX) return 'infinity';
  if (micros === INT64_MIN) return '-infinity';
  let days = micros / MICROS_PER_DAY;
  let rest = micros % MICROS_PER_DAY;
  if (rest < 0n) {
    days -= 1n;
    rest += MICROS_PER_DAY;
  }
  const date = civilText(Number(days) + POSTGRES_EPOCH_DAYS);
  const seconds = Number(rest / 1_000_000n);
  const fraction = Number(rest % 1_000_000n);
  const time = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
  const fractionText = fraction === 0 ? '' : '.' + String(fraction).padStart(6, '0').replace(/0+$/, '');
  const bc = date.endsWith(' BC');
  const base = `${bc ? date.slice(0, -3) : date} ${time}${fractionText}${withZone ? '+00' : ''}`;
  return bc ? `${base} BC` : base;
}

const ISO_DATE = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/;
const ISO_TIMESTAMP =
  /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?$/;

function encodeDate(text: string): Uint8Array | null {
  const out = Buffer.alloc(4);
  if (text === 'infinity' || text === '-infinity') {
    out.writeInt32BE(text === 'infinity' ? INT32_MAX : INT32_MIN);
    return out;
  }
  const m = ISO_DATE.exec(text);
  if (m === null) return null;
  const year = m[4] === undefined ? Number(m[1]) : 1 - Number(m[1]);
  out.writeInt32BE(daysFromCivil(year, Number(m[2]), Number(m[3])) - POSTGRES_EPOCH_DAYS);
  return out;
}

function encodeTimestamp(text: string): Uint8Array | null {
  const out = Buffer.alloc(8);
  if (text === 'infinity' || text === '-infinity') {
    out.writeBigInt64BE(text === 'infinity' ? INT64_MAX : INT64_MIN);
    return out;
  }
  const m = ISO_TIMESTAMP.exec(text);
  if (m === null) return null;
  const days = BigInt(daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3])) - POSTGRES_EPOCH_DAYS);
  const seconds = BigInt(Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]));
  const micros = BigInt((m[7] ?? '').padEnd(6, '0') || '0');
  const offsetSeconds =
    m[8] === undefined
      ? 0
      : (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0));
  out.writeBigInt64BE(days * MICROS_PER_DAY + (seconds - BigInt(offsetSeconds)) * 1_000_000n + micros);
  return out;
}
