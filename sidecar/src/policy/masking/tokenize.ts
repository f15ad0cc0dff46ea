import type { HmacSha256 } from './hmac-sha256.ts';
import { prf, prfOfBytes, TAG_EMAIL_DOMAIN, TAG_EMAIL_LOCAL, TAG_VALUE } from './prf.ts';
import { luhnValid } from './validators.ts';

/*
 * Format-preserving, deterministic, keyed tokens. Every letter and digit of a value is replaced by
 * one drawn from a keyed pseudo-random stream seeded by the whole value (prf.ts), so:
 *  - equal values give equal tokens under one key: joins, GROUP BY and DISTINCT still work;
 *  - digits stay digits, lower case lower, upper case upper, and every other character (separators,
 *    punctuation, '@', spaces) stays where it was, so lengths and layouts survive;
 *  - without the key a token says nothing about its value beyond that layout (HMAC-SHA-256 is a PRF);
 *    with the key it still cannot be reversed, only confirmed by tokenizing a guess. That is also its
 *    weakness: whoever holds the key can enumerate a small space (all SSNs) and match tokens.
 *  - it is not a bijection: two values can share a token (birthday bound over the space of tokens of
 *    that layout, e.g. 1 in 10^9 per pair of SSNs); join results can very rarely gain false matches.
 *  - one byte per character with `byte % 10` or `% 26` draws digits 0-5 and letters a-v with
 *    probability 26/256 or 10/256 instead of 25/256 or 9/256: a bias in the tokens, not a leak of the
 *    value, since the stream is independent of the value's characters.
 */

let scratch = Buffer.allocUnsafe(256);

/**
 * Replaces each letter and digit of text with one drawn from stream: ASCII stays in its class;
 * other letters become ASCII letters of their case, other decimal digits ASCII digits.
 */
function substitute(text: string, stream: Uint8Array): string {
  if (scratch.length < text.length) scratch = Buffer.allocUnsafe(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) scratch[i] = 48 + (stream[i]! % 10);
    else if (c >= 97 && c <= 122) scratch[i] = 97 + (stream[i]! % 26);
    else if (c >= 65 && c <= 90) scratch[i] = 65 + (stream[i]! % 26);
    else if (c > 127) return substituteUnicode(text, stream);
    else scratch[i] = c;
  }
  return scratch.toString('latin1', 0, text.length);
}

function substituteUnicode(text: string, stream: Uint8Array): string {
  let out = '';
  let i = 0;
  for (const ch of text) {
    const b = stream[i++]!;
    if (/\p{Lu}/u.test(ch)) out += String.fromCharCode(65 + (b % 26));
    else if (/\p{L}/u.test(ch)) out += String.fromCharCode(97 + (b % 26));
    else if (/\p{Nd}/u.test(ch)) out += String.fromCharCode(48 + (b % 10));
    else out += ch;
  }
  return out;
}

/**
 * The token of a text value. An email keeps its '@', the dots of its domain and its top-level
 * domain; the local part is tokenized under the whole address and the rest of the domain under the
 * domain alone, so that everyone at one domain shares one tokenized domain. A value shaped like a
 * payment card (13-19 Luhn-valid digits) gets a token that fails the Luhn check, as PCI DSS asks of
 * format-preserving tokens, so a token can never pass for (or be charged as) a card number.
 */
export function tokenizeText(value: string, mac: HmacSha256): string {
  const at = value.lastIndexOf('@');
  if (at > 0) {
    const dot = value.lastIndexOf('.');
    if (dot > at + 1 && dot < value.length - 1) return tokenizeEmail(value, at, dot, mac);
  }
  const token = substitute(value, prf(mac, TAG_VALUE, value, value.length));
  return cardShaped(value) ? failLuhn(token) : token;
}

/*
 * Tokenized domains, per key: a column of emails has few domains, and this halves the HMACs per
 * address. Domains are the least sensitive part of an address; the cache is bounded all the same.
 */
const domainTokens = new WeakMap<HmacSha256, Map<string, string>>();
const DOMAIN_CACHE_LIMIT = 1024;

function tokenizeDomain(domain: string, nameLength: number, mac: HmacSha256): string {
  let cache = domainTokens.get(mac);
  if (cache === undefined) {
    cache = new Map();
    domainTokens.set(mac, cache);
  }
  let token = cache.get(domain);
  if (token === undefined) {
    token = substitute(
      domain.slice(0, nameLength),
      prf(mac, TAG_EMAIL_DOMAIN, domain.toLowerCase(), nameLength),
    );
    if (cache.size >= DOMAIN_CACHE_LIMIT) cache.clear();
    cache.set(domain, token);
  }
  return token;
}

function tokenizeEmail(value: string, at: number, dot: number, mac: HmacSha256): string {
  const local = substitute(value.slice(0, at), prf(mac, TAG_EMAIL_LOCAL, value, at));
  return local + '@' + tokenizeDomain(value.slice(at + 1), dot - at - 1, mac) + value.slice(dot);
}

function cardShaped(value: string): boolean {
  let digits = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c !== 32 && c !== 45) return false;
  }
  return digits >= 13 && digits <= 19 && luhnValid(value, 0, value.length);
}

function failLuhn(token: string): string {
  if (!luhnValid(token, 0, token.length)) return token;
  let last = token.length - 1;
  while (token.charCodeAt(last) < 48 || token.charCodeAt(last) > 57) last--;
  const digit = (token.charCodeAt(last) - 47) % 10;
  return token.slice(0, last) + digit + token.slice(last + 1);
}

/**
 * tokenizeText for a value given as ASCII bytes (UTF-8 and Latin-1 alike), straight into a new
 * buffer: the same token without decoding the cell, building strings or encoding the result. `end`
 * may stop before trailing bytes that are copied unchanged (char(n)'s blanks, which tokenize
 * ignores). Returns undefined when a byte is not ASCII: the caller takes the text path.
 */
export function tokenizeAsciiBytes(cell: Buffer, end: number, mac: HmacSha256): Buffer | undefined {
  let at = -1;
  let dot = -1;
  let digits = 0;
  let cardOnly = true;
  for (let i = 0; i < cell.length; i++) {
    const c = cell[i]!;
    if (c > 127) return undefined;
    if (i >= end) continue;
    const kind = CLASS[c]!;
    if (kind === DIGIT) digits++;
    else if (c !== 32 && c !== 45) {
      cardOnly = false;
      if (c === 64) at = i;
      else if (c === 46) dot = i;
    }
  }
  const out = Buffer.allocUnsafe(cell.length);
  if (at > 0 && dot > at + 1 && dot < end - 1) {
    substituteBytes(cell, 0, at, prfOfBytes(mac, TAG_EMAIL_LOCAL, cell, 0, end, at), out);
    out[at] = 64;
    const domain = recentDomainToken(cell, at + 1, end, dot - at - 1, mac);
    for (let i = 0; i < domain.length; i++) out[at + 1 + i] = domain[i]!;
    for (let i = dot; i < cell.length; i++) out[i] = cell[i]!;
    return out;
  }
  substituteBytes(cell, 0, end, prfOfBytes(mac, TAG_VALUE, cell, 0, end, end), out);
  if (end < cell.length) out.set(cell.subarray(end), end);
  if (cardOnly && digits >= 13 && digits <= 19 && luhnValidBytes(cell, end) && luhnValidBytes(out, end)) {
    let last = end - 1;
    while (CLASS[out[last]!] !== DIGIT) last--;
    out[last] = 48 + ((out[last]! - 47) % 10);
  }
  return out;
}

/*
 * The tokenized domain names of the last few addresses, as bytes: a column of emails has few domains,
 * and comparing a dozen bytes costs less than building the string the domain cache is keyed by.
 */
interface RecentDomain {
  mac: HmacSha256 | undefined;
  domain: Uint8Array;
  token: Uint8Array;
}
const RECENT_DOMAINS = 8;
const recentDomains: RecentDomain[] = Array.from({ length: RECENT_DOMAINS }, () => ({
  mac: undefined,
  domain: new Uint8Array(0),
  token: new Uint8Array(0),
}));
let nextRecent = 0;

function recentDomainToken(
  cell: Buffer,
  start: number,
  end: number,
  nameLength: number,
  mac: HmacSha256,
): Uint8Array {
  const length = end - start;
  search: for (const recent of recentDomains) {
    if (recent.mac !== mac || recent.domain.length !== length) continue;
    for (let i = 0; i < length; i++) if (recent.domain[i] !== cell[start + i]) continue search;
    return recent.token;
  }
  const token = Buffer.from(tokenizeDomain(cell.toString('latin1', start, end), nameLength, mac), 'latin1');
  const slot = recentDomains[nextRecent]!;
  nextRecent = (nextRecent + 1) % RECENT_DOMAINS;
  slot.mac = mac;
  slot.domain = new Uint8Array(cell.subarray(start, end));
  slot.token = token;
  return token;
}

const DIGIT = 1;
const LOWER = 2;
const UPPER = 3;

/** Per ASCII byte: 0 kept as it is, else DIGIT, LOWER or UPPER. */
const CLASS = new Uint8Array(256);
/** SUBSTITUTE[class << 8 | stream byte]: the replacement drawn by that byte, as substitute() draws it. */
const SUBSTITUTE = new Uint8Array(4 << 8);
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT;
for (let c = 97; c <= 122; c++) CLASS[c] = LOWER;
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER;
for (let b = 0; b < 256; b++) {
  SUBSTITUTE[(DIGIT << 8) | b] = 48 + (b % 10);
  SUBSTITUTE[(LOWER << 8) | b] = 97 + (b % 26);
  SUBSTITUTE[(UPPER << 8) | b] = 65 + (b % 26);
}

/** substitute() on ASCII bytes: stream[i] draws the replacement of from[start + i]. */
function substituteBytes(
  from: Uint8Array,
  start: number,
  end: number,
  stream: Uint8Array,
  out: Uint8Array,
): void {
  for (let i = start; i < end; i++) {
    const c = from[i]!;
    const kind = CLASS[c]!;
    out[i] = kind === 0 ? c : SUBSTITUTE[(kind << 8) | stream[i - start]!]!;
  }
}

function luhnValidBytes(bytes: Uint8Array, end: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = end - 1; i >= 0; i--) {
    const c = bytes[i]!;
    if (c < 48 || c > 57) continue;
    let d = c - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const NUMBER = /^([+-]?)([0-9]*)(?:\.([0-9]*))?([eE][+-]?[0-9]+)?$/;

/**
 * The token of a number in PostgreSQL's text form: the sign, the decimal point, the exponent and the
 * count of digits on each side are kept; a multi-digit integer part never starts with 0. With `max`
 * (the type's largest value, as digits) a token that would overflow starts with 1 instead. NaN and
 * Infinity are returned as they are. Digits are drawn from the same stream as tokenizeText's, so a
 * number and the same digits stored as text usually share a token.
 */
export function tokenizeNumber(value: string, mac: HmacSha256, max?: string): string {
  const m = NUMBER.exec(value);
  if (m === null || (m[2] === '' && (m[3] === undefined || m[3] === ''))) return value;
  const stream = prf(mac, TAG_VALUE, value, value.length);
  const integer = m[2]!;
  let s = m[1]!.length;
  let integerOut = '';
  for (let i = 0; i < integer.length; i++) {
    const b = stream[s++]!;
    integerOut += i === 0 && integer.length > 1 && b % 10 === 0 ? 1 + (b % 9) : b % 10;
  }
  if (max !== undefined && exceeds(integerOut, max)) integerOut = '1' + integerOut.slice(1);
  if (m[3] === undefined && m[4] === undefined && cardShaped(integer)) integerOut = failLuhn(integerOut);
  let out = m[1]! + integerOut;
  if (m[3] !== undefined) {
    s++;
    out += '.';
    for (let i = 0; i < m[3].length; i++) out += stream[s++]! % 10;
  }
  return out + (m[4] ?? '');
}

function exceeds(digits: string, max: string): boolean {
  return digits.length > max.length || (digits.length === max.length && digits > max);
}

/** Replaces every hex digit with a keyed one (lower case), keeping the rest: for uuid and bytea text. */
export function tokenizeHex(value: string, mac: HmacSha256, from = 0): string {
  const stream = prf(mac, TAG_VALUE, value, value.length);
  let out = value.slice(0, from);
  for (let i = from; i < value.length; i++) {
    const c = value.charCodeAt(i) | 0x20;
    const hex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
    out += hex ? (stream[i]! & 15).toString(16) : value[i];
  }
  return out;
}
