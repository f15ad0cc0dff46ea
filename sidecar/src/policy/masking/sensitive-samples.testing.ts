import { GIVEN_NAMES } from './given-names.ts';
import { ibanLength } from './validators.ts';

/*
 * Generators of values each detector of findSensitive flags, for the tests that hold the cheap gates
 * in front of it (mayFindSensitive) to never call such a value clean. Every generator draws fresh
 * values from a seeded source, so a failure names a value that reproduces.
 */

/** A small seeded generator (mulberry32): the same seed gives the same samples. */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

type Random = (n: number) => number;

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGITS = '0123456789';
const ALNUM = LOWER + UPPER + DIGITS;

function pick<T>(random: Random, items: readonly T[] | string): T {
  return items[random(items.length)] as T;
}

function chars(random: Random, alphabet: string, min: number, max = min): string {
  let out = '';
  const length = min + random(max - min + 1);
  for (let i = 0; i < length; i++) out += alphabet[random(alphabet.length)];
  return out;
}

function digits(random: Random, count: number): string {
  return chars(random, DIGITS, count);
}

function capitalised(random: Random, min: number, max: number): string {
  return pick<string>(random, UPPER) + chars(random, LOWER, min - 1, max - 1);
}

/** Digits of a number whose last digit makes it Luhn-valid. */
function withLuhn(random: Random, prefix: string, length: number): string {
  const body = prefix + digits(random, length - prefix.length - 1);
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

function grouped(random: Random, text: string, size: number): string {
  const separator = pick(random, ['', ' ', '-']);
  if (separator === '') return text;
  const groups: string[] = [];
  for (let i = 0; i < text.length; i += size) groups.push(text.slice(i, i + size));
  return groups.join(separator);
}

function ssn(random: Random): string {
  let area = 1 + random(899);
  if (area === 666) area = 665;
  const group = String(1 + random(99)).padStart(2, '0');
  const serial = String(1 + random(9999)).padStart(4, '0');
  const separator = pick(random, ['-', ' ']);
  return `${String(area).padStart(3, '0')}${separator}${group}${separator}${serial}`;
}

const CARD_PREFIXES = [
  '4',
  '51',
  '55',
  '2221',
  '2720',
  '2200',
  '34',
  '37',
  '30',
  '36',
  '35',
  '50',
  '6011',
  '62',
];

function card(random: Random): string {
  return grouped(random, withLuhn(random, pick(random, CARD_PREFIXES), 13 + random(7)), 4);
}

function ahv(random: Random): string {
  const body = `756${digits(random, 9)}`;
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += (body.charCodeAt(i) - 48) * (i % 2 === 0 ? 1 : 3);
  const all = body + String((10 - (sum % 10)) % 10);
  const dot = pick(random, ['.', ' ', '']);
  return `${all.slice(0, 3)}${dot}${all.slice(3, 7)}${dot}${all.slice(7, 11)}${dot}${all.slice(11)}`;
}

function phone(random: Random): string {
  switch (random(5)) {
    case 0:
      return random(3) === 0
        ? `+${1 + random(9)}${Array.from({ length: 6 + random(4) }, () => ` (${random(10)})`).join('')}`
        : `+${1 + random(9)}${pick(random, ['', ' ', '-', '.'])}${grouped(random, digits(random, 9 + random(4)), 3)}`;
    case 1:
      return `(${digits(random, 3)}) ${digits(random, 3)}-${digits(random, 4)}`;
    case 2: {
      const separator = pick(random, ['-', '.', ' ']);
      return `${pick(random, ['', `1${separator}`])}${digits(random, 3)}${separator}${digits(random, 3)}${separator}${digits(random, 4)}`;
    }
    case 3:
      return `0${digits(random, 2 + random(3))} ${digits(random, 3 + random(2))} ${digits(random, 4)}`;
    default:
      return `0${1 + random(9)} ${digits(random, 2)} ${digits(random, 2)} ${digits(random, 2)} ${digits(random, 2)}`;
  }
}

function ipv4(random: Random): string {
  // Loopback addresses identify no one and are not flagged.
  const first = 11 + random(200);
  return [first === 127 ? 128 : first, random(256), random(256), 1 + random(254)].join('.');
}

function ipv6(random: Random): string {
  const groups = Array.from({ length: 8 }, () => chars(random, '0123456789abcdefABCDEF', 1, 4));
  if (random(2) === 0) return groups.join(':');
  const cut = 1 + random(5);
  return `${groups.slice(0, cut).join(':')}::${groups.slice(cut + 2).join(':')}`;
}

// biome-ignore format: a list reads better in rows
const IBAN_COUNTRIES = ['DE', 'GB', 'FR', 'NL', 'ES', 'IT', 'CH', 'BE', 'AT', 'PL', 'SE', 'NO', 'PT', 'IE', 'MT', 'QA', 'LC'];

/** Countries whose national part starts with four letters of the bank; the others' is digits. */
const IBAN_BANK_LETTERS = new Set(['GB', 'NL', 'IE']);
/** Countries whose account part may be letters too, so that an IBAN holds as few as two digits. */
const IBAN_ACCOUNT_LETTERS = new Set(['MT', 'QA', 'LC']);

/** A valid IBAN: country, mod-97 check digits and the national part. */
function iban(random: Random): string {
  const country = pick<string>(random, IBAN_COUNTRIES);
  const length = ibanLength(country)!;
  const national = IBAN_ACCOUNT_LETTERS.has(country)
    ? chars(random, UPPER, 4) + chars(random, random(2) === 0 ? UPPER : UPPER + DIGITS, length - 8)
    : IBAN_BANK_LETTERS.has(country)
      ? chars(random, UPPER, 4) + digits(random, length - 8)
      : digits(random, length - 4);
  const numeric = (national + country + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  let remainder = 0;
  for (const digit of numeric) remainder = (remainder * 10 + Number(digit)) % 97;
  const compact = `${country}${String(98 - remainder).padStart(2, '0')}${national}`;
  return random(2) === 0 ? compact : (compact.match(/.{1,4}/g) ?? []).join(' ');
}

function nino(random: Random): string {
  const prefix = pick<string>(random, 'ABCEHJKLMOPRSWXY') + pick<string>(random, 'ACEHJLMPRSWXY');
  const spaced = random(2) === 0;
  const number = digits(random, 6);
  const suffix = pick<string>(random, 'ABCD');
  return spaced
    ? `${prefix} ${number.slice(0, 2)} ${number.slice(2, 4)} ${number.slice(4)} ${suffix}`
    : `${prefix}${number}${suffix}`;
}

function dni(random: Random): string {
  const letters = 'TRWAGMYFPDXBNJZSQVHLCKE';
  if (random(2) === 0) {
    const number = digits(random, 8);
    return number + letters[Number(number) % 23];
  }
  const lead = random(3);
  const rest = digits(random, 7);
  return `${'XYZ'[lead]}${rest}${letters[Number(`${lead}${rest}`) % 23]}`;
}

function secret(random: Random): string {
  switch (random(13)) {
    case 12:
      // The shortest shape of all: crypt(3) with eight characters after the scheme.
      return `$${pick(random, ['1', '5', '6', 'y', '7'])}$${chars(random, `${ALNUM}./`, 8, 12)}`;
    case 0:
      return `AKIA${chars(random, UPPER + DIGITS, 16)}`;
    case 1:
      return `ghp_${chars(random, ALNUM, 36)}`;
    case 2:
      return `glpat-${chars(random, `${ALNUM}_-`, 20, 30)}`;
    case 3:
      // As short as the pattern allows: 15 characters, under the 16 of most credential shapes.
      return `xox${pick<string>(random, 'abposr')}-${chars(random, `${ALNUM}-`, 10, 12)}`;
    case 4:
      return `sk-${chars(random, LOWER, 20, 40)}`;
    case 5:
      return `${chars(random, LOWER, 2, 5)}_${pick(random, ['live', 'test', 'prod', 'secret'])}_${chars(random, LOWER, 20, 30)}`;
    case 6:
      return `-----BEGIN ${pick(random, ['', 'RSA ', 'EC ', 'OPENSSH '])}PRIVATE KEY-----\n${chars(random, ALNUM, 20, 60)}`;
    case 7:
      return `$2b$12$${chars(random, `./${ALNUM}`, 53)}`;
    case 8:
      return `md5${chars(random, '0123456789abcdef', 32)}`;
    case 9:
      return `eyJ${chars(random, ALNUM, 10, 30)}.eyJ${chars(random, ALNUM, 10, 30)}.${chars(random, ALNUM, 10, 30)}`;
    case 10:
      return `AIza${chars(random, `${ALNUM}_-`, 35)}`;
    default:
      return `hf_${chars(random, ALNUM, 30, 40)}`;
  }
}

const GIVEN = [...GIVEN_NAMES].filter((name) => /^[a-z]{2,}$/.test(name));

function personName(random: Random): string {
  const given = pick<string>(random, GIVEN);
  const first = random(4) === 0 ? given.toUpperCase() : given[0]!.toUpperCase() + given.slice(1);
  const middle = random(3) === 0 ? ` ${pick<string>(random, UPPER)}.` : '';
  return `${first}${middle} ${capitalised(random, 2, 12)}`;
}

const STREET_SUFFIXES = ['St', 'Street', 'Ave', 'Road', 'Blvd', 'Lane', 'Drive', 'Court', 'Way', 'Broadway'];

function street(random: Random): string {
  switch (random(3)) {
    case 0:
      return `${1 + random(9999)} ${capitalised(random, 3, 10)} ${pick(random, STREET_SUFFIXES)}`;
    case 1:
      return `${capitalised(random, 2, 10)}${pick(random, ['straße', 'strasse', 'weg', 'gasse', 'laan', 'vej'])} ${1 + random(200)}`;
    default: {
      const words = `${chars(random, LOWER, 2, 3)} ${capitalised(random, 3, 10)}`;
      return `${1 + random(200)} ${pick(random, ['rue', 'avenue', 'via', 'calle', 'rua'])} ${random(2) === 0 ? words : words.toLowerCase()}`;
    }
  }
}

const SENSITIVE_KEYS = [
  'email',
  'ssn',
  'password',
  'phone',
  'dob',
  'date_of_birth',
  'address',
  'card_number',
  'iban',
];

function hinted(random: Random): string {
  const key = pick<string>(random, SENSITIVE_KEYS);
  const value = chars(random, LOWER, 3, 12);
  switch (random(5)) {
    case 0:
      return `{"${key}": "${value}"}`;
    case 1:
      return `${key}=${value}`;
    case 2:
      return `${key} => '${value}'`;
    case 3:
      return `${key}: ${value}`;
    default:
      return `Key (${key})=(${value}) already exists.`;
  }
}

function urlPassword(random: Random): string {
  return `${pick(random, ['postgres', 'mysql', 'https'])}://${chars(random, LOWER, 3, 8)}:${chars(random, ALNUM, 4, 16)}@${chars(random, LOWER, 3, 8)}.example`;
}

function email(random: Random): string {
  const local = chars(random, `${ALNUM}._%+-`, 1, 20);
  const labels = Array.from({ length: 1 + random(3) }, () => chars(random, LOWER + DIGITS, 1, 12));
  const tld = chars(random, LOWER, 2, 6);
  const address = `${local}@${labels.join('.')}.${tld}`;
  return random(4) === 0 ? address.toUpperCase() : address;
}

/** One generator for each detector of findSensitive, by the name the tests report. */
export const SENSITIVE_GENERATORS: Readonly<Record<string, (random: Random) => string>> = {
  email,
  ssn,
  card,
  'card glued to an ssn': (random) => `${digits(random, 9)}${withLuhn(random, '4', 16)}`,
  ahv,
  phone,
  ipv4,
  ipv6,
  iban,
  nino,
  dni,
  secret,
  'person name': personName,
  street,
  'sensitive key and value': hinted,
  'url password': urlPassword,
  base64: (random) => Buffer.from(ssn(random)).toString(pick(random, ['base64', 'base64url'])),
  hex: (random) => `${pick(random, ['', '\\x'])}${Buffer.from(email(random)).toString('hex')}`,
  percent: (random) => encodeURIComponent(`${personName(random)} <${email(random)}>`),
};

/** Lowercase words of under eight letters: text the quiet pass reads as clean. */
export function quietProse(random: Random, words: number): string {
  return Array.from({ length: words }, () => chars(random, LOWER, 1, 7)).join(' ');
}

/**
 * The sample as it may sit in a cell: alone, blank-padded as char(n) pads it, inside long quiet
 * text, between other characters, in other cases and with spaces or letters beyond ASCII.
 */
export function placements(random: Random, sample: string): string[] {
  const pad = ' '.repeat(1 + random(100));
  return [
    sample,
    sample + pad,
    pad + sample,
    `\t${sample}\n`,
    `${quietProse(random, 20 + random(200))} ${sample} ${quietProse(random, 1 + random(20))}`,
    `${quietProse(random, 3)} ${sample}`,
    `${sample} ${quietProse(random, 3)}${pad}`,
    `(1,"${sample}",x)`,
    `é ${sample} 😀`,
    sample.toLowerCase(),
    sample.toUpperCase(),
    sample.replace(/ /g, '\u00a0'),
  ];
}
