import type { PiiKind } from './pii-kind.ts';

/*
 * Partial masks keep a little of a value so people can still tell records apart or recognise their
 * own: an email's first letter and domain, a card's or SSN's last four digits, a phone's last two.
 * Separators stay in place; hidden letters and digits become '*'.
 */

function isAlnum(code: number): boolean {
  return (code >= 48 && code <= 57) || ((code | 0x20) >= 97 && (code | 0x20) <= 122) || code > 127;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

let scratch = Buffer.allocUnsafe(256);

/** Hides every letter and digit except the last `keep` that satisfy `counts`. */
function keepLast(value: string, keep: number, counts: (code: number) => boolean): string {
  let from = value.length;
  for (let kept = 0; from > 0 && kept < keep; ) {
    from--;
    if (counts(value.charCodeAt(from))) kept++;
  }
  if (scratch.length < value.length) scratch = Buffer.allocUnsafe(value.length * 2);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code > 127) return keepLastUnicode(value, from, counts);
    scratch[i] = (i >= from && counts(code)) || !isAlnum(code) ? code : 42;
  }
  return scratch.toString('latin1', 0, value.length);
}

function keepLastUnicode(value: string, from: number, counts: (code: number) => boolean): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const low = (code & 0xfc00) === 0xdc00;
    if (low) continue;
    const char = (code & 0xfc00) === 0xd800 ? value.slice(i, i + 2) : value[i]!;
    out += (i >= from && counts(code)) || !isAlnum(code) ? char : '*';
  }
  return out;
}

function email(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 0) return generic(value);
  const first = at > 0 ? value[0]! : '';
  return first + '***' + value.slice(at);
}

function iban(value: string): string {
  const country = value.slice(0, 2);
  return country + keepLast(value.slice(2), 4, isAlnum);
}

function ip(value: string): string {
  const separator = value.includes(':') ? ':' : '.';
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const parts = address.split(separator);
  const first = parts.findIndex((part) => part !== '');
  return parts.map((part, i) => (i === first || part === '' ? part : '*')).join(separator);
}

function personName(value: string): string {
  let out = '';
  let wordStart = true;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (isAlnum(code)) {
      out += wordStart ? value[i] : '*';
      wordStart = false;
    } else {
      out += value[i];
      wordStart = true;
    }
  }
  return out;
}

function address(value: string): string {
  const lastSpace = value.trimEnd().lastIndexOf(' ');
  if (lastSpace < 0) return generic(value);
  return keepLast(value.slice(0, lastSpace), 0, isAlnum) + value.slice(lastSpace);
}

/** Keeps a four-digit year and hides the other digits: 1980-**-**, **\/**\/1980. */
function birthDate(value: string): string {
  const year = /(?<![0-9])[0-9]{4}(?![0-9])/.exec(value);
  if (year === null) return keepLast(value, 0, isAlnum);
  const hidden = (part: string) => keepLast(part, 0, isAlnum);
  return hidden(value.slice(0, year.index)) + year[0] + hidden(value.slice(year.index + 4));
}

/** Keeps the last two letters or digits of values long enough (6 or more) that two say little. */
function generic(value: string): string {
  let alnum = 0;
  for (let i = 0; i < value.length; i++) if (isAlnum(value.charCodeAt(i))) alnum++;
  return keepLast(value, alnum >= 6 ? 2 : 0, isAlnum);
}

/** A partial mask of a text value, shaped by what the value is (null or unknown: generic). */
export function partialText(value: string, kind: PiiKind | null): string {
  switch (kind) {
    case 'email':
      return email(value);
    case 'card':
    case 'ssn':
      return keepLast(value, 4, isDigit);
    case 'phone':
      return keepLast(value, 2, isDigit);
    case 'iban':
      return iban(value);
    case 'ip':
      return ip(value);
    case 'person-name':
      return personName(value);
    case 'street-address':
      return address(value);
    case 'date-of-birth':
      return birthDate(value);
    case 'secret':
      return '****';
    default:
      return generic(value);
  }
}
