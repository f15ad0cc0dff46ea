import { findSensitive } from './find-sensitive.ts';
import type { PiiKind } from './pii-kind.ts';
import {
  bsnValid,
  digitsOf,
  ibanValid,
  ipv4Valid,
  ipv6Valid,
  luhnValid,
  sinValid,
  ssnValid,
} from './validators.ts';

/**
 * What a whole value is, or null: 'alice@example.com' → 'email', '4111 1111 1111 1111' → 'card'.
 * Without a hint only shapes that stand on their own count (see findSensitive); a hint, usually the
 * column name's kind from classifyColumn, also admits shapes that are PII only in that column:
 * nine bare digits under 'ssn' or 'national-id' (checked as SSN, Canadian SIN or Dutch BSN), dates
 * under 'date-of-birth', plain words under 'person-name'. Dates alone are not PII. Text that merely
 * contains sensitive data is for findSensitive.
 */
export function classifyValue(value: string, hint?: PiiKind | null): PiiKind | null {
  const text = value.trim();
  if (text === '') return null;
  const findings = findSensitive(text);
  if (findings.length === 1 && findings[0]!.start === 0 && findings[0]!.end === text.length) {
    return findings[0]!.kind;
  }
  if (hint === undefined || hint === null) return null;
  return fitsHint(text, hint) ? hint : null;
}

const PERSON_WORDS = /^\p{L}[\p{L}'’.-]*(?:[ \t,]+\p{L}[\p{L}'’.-]*){0,4}$/u;
const SPACED_DIGITS = /^\+?[0-9 ().-]+$/;
const ID_LIKE = /^[A-Za-z0-9][A-Za-z0-9 ./-]{3,18}[A-Za-z0-9]$/;

function fitsHint(text: string, hint: PiiKind): boolean {
  switch (hint) {
    case 'ssn':
      return (
        /^[0-9]{9}$/.test(text) &&
        ssnValid(Number(text.slice(0, 3)), Number(text.slice(3, 5)), Number(text.slice(5)))
      );
    case 'national-id': {
      if (/^[0-9]{9}$/.test(text)) {
        return sinValid(text) || bsnValid(text) || fitsHint(text, 'ssn');
      }
      return ID_LIKE.test(text) && digitsOf(text, 0, text.length).length >= 4;
    }
    case 'phone': {
      const digits = digitsOf(text, 0, text.length).length;
      return SPACED_DIGITS.test(text) && digits >= 7 && digits <= 15;
    }
    case 'card': {
      const digits = digitsOf(text, 0, text.length).length;
      return /^[0-9 -]+$/.test(text) && digits >= 12 && digits <= 19 && luhnValid(text, 0, text.length);
    }
    case 'date-of-birth':
      return dateLike(text);
    case 'person-name':
      return PERSON_WORDS.test(text);
    case 'street-address':
      return /\p{L}/u.test(text) && text.length >= 3;
    case 'email':
      return text.includes('@');
    case 'ip': {
      const slash = text.indexOf('/');
      const end = slash < 0 ? text.length : slash;
      return ipv4Valid(text, 0, end) || ipv6Valid(text, 0, end);
    }
    case 'iban':
      return (
        ibanValid(text, 0, text.length) ||
        (/^[A-Za-z0-9 -]{8,34}$/.test(text) && digitsOf(text, 0, text.length).length >= 6)
      );
    case 'secret':
      return !/\s/.test(text);
  }
}

const MONTHS =
  'jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december';
const NUMERIC_DATE =
  /^(?:(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})|(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})|(\d{4})(\d{2})(\d{2}))(?:[ T].*)?$/;
const WORDY_DATE = new RegExp(
  `^(?:(?:\\d{1,2}\\s+(?:${MONTHS})\\.?,?\\s+\\d{4})|(?:(?:${MONTHS})\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+\\d{4}))$`,
  'i',
);

/** A calendar date in a common written form, with a year between 1900 and 2100. */
function dateLike(text: string): boolean {
  if (WORDY_DATE.test(text)) return true;
  const m = NUMERIC_DATE.exec(text);
  if (m === null) return false;
  let year: number;
  let a: number;
  let b: number;
  if (m[1] !== undefined) [year, a, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  else if (m[4] !== undefined) [year, a, b] = [Number(m[6]), Number(m[4]), Number(m[5])];
  else [year, a, b] = [Number(m[7]), Number(m[8]), Number(m[9])];
  if (year < 1900 || year > 2100) return false;
  // Month and day may come in either order (US and European forms); one of them must be a month.
  return a >= 1 && b >= 1 && a <= 31 && b <= 31 && (a <= 12 || b <= 12);
}
