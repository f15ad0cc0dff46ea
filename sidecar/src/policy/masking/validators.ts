/*
 * Check digits and structure rules that tell an identifier from an arbitrary number. Each takes
 * text[start..end) so the scanner can test a candidate without cutting it out of the text.
 */

const ZERO = 48;

function isDigitCode(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** The digits of text[start..end), ignoring every other character, as one string. */
export function digitsOf(text: string, start: number, end: number): string {
  let digits = '';
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (isDigitCode(code)) digits += text[i];
  }
  return digits;
}

/** Luhn (ISO/IEC 7812-1) over the digits of text[start..end); other characters are skipped. */
export function luhnValid(text: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  let count = 0;
  for (let i = end - 1; i >= start; i--) {
    const code = text.charCodeAt(i);
    if (!isDigitCode(code)) continue;
    let d = code - ZERO;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
    count++;
  }
  return count > 0 && sum % 10 === 0;
}

/**
 * A payment card number: 13 to 19 digits (separators skipped), Luhn-valid, with an issuer prefix in
 * use: Visa 4; Mastercard 51-55 and 2221-2720; Mir 2200-2204; Amex 34, 37; Diners 30, 36, 38, 39;
 * JCB 35; Maestro 50, 56-58; Discover, UnionPay, RuPay and Maestro under 6.
 */
export function cardNumberValid(text: string, start: number, end: number): boolean {
  let count = 0;
  let prefix = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (!isDigitCode(code)) continue;
    if (count < 4) prefix = prefix * 10 + code - ZERO;
    count++;
  }
  if (count < 13 || count > 19 || !knownIssuer(prefix)) return false;
  return luhnValid(text, start, end);
}

function knownIssuer(first4: number): boolean {
  const first = Math.floor(first4 / 1000);
  const first2 = Math.floor(first4 / 100);
  switch (first) {
    case 2:
      return (first4 >= 2200 && first4 <= 2204) || (first4 >= 2221 && first4 <= 2720);
    case 3:
      return first2 === 30 || (first2 >= 34 && first2 <= 39 && first2 !== 33);
    case 4:
    case 6:
      return true;
    case 5:
      return first2 !== 59;
    default:
      return false;
  }
}

/**
 * A US Social Security number (area 001-899 except 666, group 01-99, serial 0001-9999) or an
 * Individual Taxpayer Identification Number (area 9xx with the IRS's group ranges 50-65, 70-88,
 * 90-92 and 94-99), both written ###-##-####.
 */
export function ssnValid(area: number, group: number, serial: number): boolean {
  if (serial === 0 || group === 0) return false;
  if (area >= 900) {
    return (
      (group >= 50 && group <= 65) ||
      (group >= 70 && group <= 88) ||
      (group >= 90 && group <= 92) ||
      group >= 94
    );
  }
  return area !== 0 && area !== 666;
}

/** IBAN lengths by country (ISO 13616 registry). */
// biome-ignore format: a table reads better in rows
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
};

/** How long an IBAN of this two-letter country is, or undefined for a country without IBANs. */
export function ibanLength(country: string): number | undefined {
  return Object.hasOwn(IBAN_LENGTHS, country) ? IBAN_LENGTHS[country] : undefined;
}

/**
 * An IBAN (ISO 13616): registered country, the country's length, and the mod-97 check (ISO 7064)
 * over the characters of text[start..end) with spaces skipped; letters of either case.
 */
export function ibanValid(text: string, start: number, end: number): boolean {
  let length = 0;
  for (let i = start; i < end; i++) if (text.charCodeAt(i) !== 32) length++;
  let i = start;
  while (text.charCodeAt(i) === 32) i++;
  const country = text.slice(i, i + 2).toUpperCase();
  if (ibanLength(country) !== length) return false;
  // Move the first four characters to the end, letters to 10..35, and reduce mod 97 as we go.
  let remainder = 0;
  let seen = 0;
  for (let pass = 0; pass < 2; pass++) {
    seen = 0;
    for (let j = start; j < end; j++) {
      const code = text.charCodeAt(j) | 0x20;
      if (code === 0x20) continue;
      const head = seen < 4;
      seen++;
      if (head !== (pass === 1)) continue;
      if (code >= 48 && code <= 57) {
        remainder = (remainder * 10 + code - ZERO) % 97;
      } else if (code >= 97 && code <= 122) {
        remainder = (remainder * 100 + code - 87) % 97;
      } else {
        return false;
      }
    }
  }
  return remainder === 1;
}

const NINO_FIRST = 'ABCEGHJKLMNOPRSTWXYZ';
const NINO_SECOND = 'ABCEGHJKLMNPRSTWXYZ';
const NINO_UNUSED_PREFIXES = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

/**
 * A UK National Insurance number: two prefix letters from HMRC's allowed sets (not BG, GB, KN, NK,
 * NT, TN, ZZ), six digits and a suffix A-D; spaces skipped, upper case only.
 */
export function ninoValid(text: string, start: number, end: number): boolean {
  let compact = '';
  for (let i = start; i < end; i++) if (text.charCodeAt(i) !== 32) compact += text[i];
  if (compact.length !== 9) return false;
  const first = compact[0]!;
  const second = compact[1]!;
  if (!NINO_FIRST.includes(first) || !NINO_SECOND.includes(second)) return false;
  if (NINO_UNUSED_PREFIXES.has(first + second)) return false;
  for (let i = 2; i < 8; i++) if (!isDigitCode(compact.charCodeAt(i))) return false;
  const suffix = compact.charCodeAt(8);
  return suffix >= 65 && suffix <= 68;
}

const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

/**
 * A Spanish DNI (8 digits and a check letter) or NIE (X, Y or Z, 7 digits and a check letter): the
 * letter is the number mod 23 looked up in the Ministry of the Interior's table.
 */
export function dniValid(text: string, start: number, end: number): boolean {
  if (end - start !== 9) return false;
  let number = 0;
  const lead = text[start]!;
  const niePrefix = 'XYZ'.indexOf(lead);
  for (let i = start; i < end - 1; i++) {
    const code = text.charCodeAt(i);
    if (i === start && niePrefix >= 0) {
      number = niePrefix;
      continue;
    }
    if (!isDigitCode(code)) return false;
    number = number * 10 + code - ZERO;
  }
  return text[end - 1] === DNI_LETTERS[number % 23];
}

/** A Swiss AHV/AVS social insurance number: 13 digits beginning 756 with an EAN-13 check digit. */
export function ahvValid(text: string, start: number, end: number): boolean {
  const digits = digitsOf(text, start, end);
  if (digits.length !== 13 || !digits.startsWith('756')) return false;
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += (digits.charCodeAt(i) - ZERO) * (i % 2 === 0 ? 1 : 3);
  return (10 - (sum % 10)) % 10 === digits.charCodeAt(12) - ZERO;
}

/** A Dutch burgerservicenummer: 9 digits passing the "elfproef" (weights 9..2 and -1, mod 11). */
export function bsnValid(digits: string): boolean {
  if (digits.length !== 9) return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (digits.charCodeAt(i) - ZERO) * (9 - i);
  sum -= digits.charCodeAt(8) - ZERO;
  return sum !== 0 && sum % 11 === 0;
}

/** A Canadian social insurance number: 9 digits, Luhn-valid, not starting with 0 or 8. */
export function sinValid(digits: string): boolean {
  return digits.length === 9 && digits[0] !== '0' && digits[0] !== '8' && luhnValid(digits, 0, 9);
}

/** Dotted-quad IPv4 in text[start..end): four decimal octets 0-255 without leading zeros. */
export function ipv4Valid(text: string, start: number, end: number): boolean {
  let octets = 0;
  let value = 0;
  let digits = 0;
  let leadingZero = false;
  for (let i = start; i <= end; i++) {
    const code = i === end ? 46 : text.charCodeAt(i);
    if (code === 46) {
      if (digits === 0 || value > 255 || (leadingZero && digits > 1)) return false;
      octets++;
      value = 0;
      digits = 0;
      continue;
    }
    if (!isDigitCode(code)) return false;
    if (digits === 0) leadingZero = code === ZERO;
    value = value * 10 + code - ZERO;
    digits++;
  }
  return octets === 4;
}

function isHexCode(code: number): boolean {
  return isDigitCode(code) || ((code | 0x20) >= 97 && (code | 0x20) <= 102);
}

/**
 * IPv6 text (RFC 4291 2.2) in text[start..end): up to eight groups of 1-4 hex digits, at most one
 * `::`, optionally ending in a dotted quad.
 */
export function ipv6Valid(text: string, start: number, end: number): boolean {
  let groups = 0;
  let compressed = false;
  let i = start;
  if (text.startsWith('::', i)) {
    compressed = true;
    i += 2;
    if (i === end) return true;
  }
  while (i < end) {
    let j = i;
    while (j < end && isHexCode(text.charCodeAt(j))) j++;
    if (j < end && text.charCodeAt(j) === 46) {
      if (!ipv4Valid(text, i, end)) return false;
      groups += 2;
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups++;
    i = j;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (text.charCodeAt(i) === 58) {
      if (compressed) return false;
      compressed = true;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return false;
    }
  }
  return compressed ? groups < 8 : groups === 8;
}
