import { classifyKey } from './classify-column.ts';
import { decodeBase64Text, decodeHexText } from './decode-embedded.ts';
import { GIVEN_NAMES } from './given-names.ts';
import { KIND_PRIORITY, type PiiKind } from './pii-kind.ts';
import { plausibleSecret, SECRET_PATTERN } from './secret-pattern.ts';
import {
  ahvValid,
  cardNumberValid,
  dniValid,
  ibanLength,
  ibanValid,
  ipv4Valid,
  ipv6Valid,
  ninoValid,
  ssnValid,
} from './validators.ts';

/** How the sensitive text was hidden, when it was found only after decoding a token. */
export type Encoding = 'base64' | 'hex' | 'percent';

/** Sensitive data at text[start..end) (UTF-16 offsets). */
export interface Finding {
  readonly kind: PiiKind;
  readonly start: number;
  readonly end: number;
  /** Set when the span is an encoded token whose decoded text holds the sensitive data. */
  readonly encoding?: Encoding;
}

const NONE: readonly Finding[] = Object.freeze([]);

/*
 * Every pattern that can start inside a run of its own characters is anchored with a lookbehind on
 * that run, so the engine tries each run once: scanning stays linear on long hex or base64 blobs.
 */
const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z-])/g;
const SSN = /(?<![0-9]|[0-9][-.])([0-9]{3})([- ])([0-9]{2})\2([0-9]{4})(?![0-9]|[-.][0-9])/g;
const CARD = /(?<![0-9]|[0-9][-.])[0-9](?:[ -]?[0-9]){12,18}(?![0-9]|[-.][0-9])/g;
/** Runs of digits too long for one card: a card may be glued to either end (`ssn || card`). */
const LONG_DIGITS = /(?<![0-9])[0-9]{20,}(?![0-9])/g;
// A leading + is distinctive enough to flag a number glued to others (ssn || phone || card).
const PHONE_INTERNATIONAL = /\+[0-9](?:[ .-]?\(?[0-9]\)?){6,14}/g;
const PHONE_NANP =
  /(?<![A-Za-z0-9+]|[0-9][-. ])(?:1[-. ])?(?:\([0-9]{3}\) ?|[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}(?![0-9]|[-.][0-9])/g;
const PHONE_TRUNK_PREFIX =
  /(?<![A-Za-z0-9+]|[0-9][-. ])(?:0[0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4}|0[1-9](?:[ .-][0-9]{2}){4})(?![0-9]|[-.][0-9])/g;
const IPV4 = /(?<![A-Za-z0-9.]|[0-9]\.)[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![A-Za-z0-9]|\.[0-9])/g;
const IPV6 =
  /(?<![A-Za-z0-9:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?![A-Za-z0-9:]|\.[0-9])/g;
const IBAN_START = /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?= ?[A-Za-z0-9])/g;
const NINO = /(?<![A-Za-z0-9])[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])/g;
const DNI = /(?<![A-Za-z0-9])(?:[XYZ][0-9]{7}|[0-9]{8})[A-Z](?![A-Za-z0-9])/g;
const AHV = /(?<![0-9]|[0-9]\.)756[. ]?[0-9]{4}[. ]?[0-9]{4}[. ]?[0-9]{2}(?![0-9]|\.[0-9])/g;
const PERSON_NAME =
  /(?<![\p{L}\p{N}])(\p{Lu}\p{Ll}+|\p{Lu}{2,})(?:[ \t]+\p{Lu}\.?)?[ \t]+\p{Lu}[\p{L}'’-]*\p{L}(?:[ \t]+\p{Lu}\p{Ll}+(?=[^\p{L}\p{N}]|$))?(?![\p{L}\p{N}])/gu;
const STREET =
  /(?<![\p{L}\p{N}])[0-9]{1,6}[A-Za-z]?,?[ \t]+(?:\p{Lu}[\p{L}.'-]*[ \t]+){1,4}(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Ln|Lane|Dr|Drive|Ct|Court|Pl|Place|Way|Ter|Terrace|Pkwy|Parkway|Hwy|Highway|Cir|Circle|Sq|Square|Crescent|Cres|Close|Row|Trail|Trl|Loop|Alley|Plaza|Walk|Broadway)\b\.?(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?[ \t]*[A-Za-z0-9-]+)?(?:,[ \t]*\p{Lu}[\p{L} ]+,[ \t]*[A-Z]{2}[ \t]+[0-9]{5}(?:-[0-9]{4})?)?/gu;
const STREET_EUROPEAN =
  /(?<![\p{L}\p{N}])(?:\p{Lu}\p{Ll}+(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|ring|laan|straat|gracht|vej|gatan|vägen)[ \t]+[0-9]{1,4}[a-z]?|[0-9]{1,4},?[ \t]+(?:rue|avenue|boulevard|bd|chemin|allée|impasse|quai|place|via|viale|piazza|calle|avenida|rua)[ \t]+[^,;|"\n\r(){}[\]]{2,60})(?![\p{L}\p{N}])/giu;
const JSON_MEMBER = /"([^"\\]{1,64})"[ \t\r\n]*:[ \t\r\n]*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)/g;
const KEY_EQUALS_VALUE =
  /(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_.-]{0,63})[ \t]*=>?[ \t]*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"()<>[\]{}|]+)/g;
const KEY_COLON_VALUE =
  /(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_ .-]{0,31}):[ \t]+([^\s"'{}[\]()][^\n\r,;|"{}[\]()]*)/g;
const DETAIL_KEY = /Key \(([^)]*)\)=\(/g;
const DETAIL_KEY_END = /\)(?= already exists| is not present| is still referenced| conflicts with|\.?$)/m;
const URL_PASSWORD = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s:@/]+:([^\s@/]+)@/g;
const BASE64 =
  /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{8,}(?:\r?\n[A-Za-z0-9+/_-]+)*={0,2}(?![A-Za-z0-9+/=_-])/g;
const HEX = /(?:\\x|(?<![A-Za-z0-9]))[0-9A-Fa-f]{8,}(?![A-Za-z0-9])/g;
const PERCENT = /[^\s"'<>%]*(?:%[0-9A-Fa-f]{2}[^\s"'<>%]*)+/g;

/**
 * Finds sensitive data inside text of any shape: a single value, JSON, CSV, a whole-row literal such
 * as `(1,"Alice Smith",alice@example.com,...)`, an array such as `{a@b.com,c@d.com}`, an error
 * message. Tokens of base64 (8+ characters), hex (8+ digits, bare or bytea `\x`) and %-encoding are
 * decoded once and the decoded text scanned; a hit marks the whole token. Returns findings sorted by
 * start, overlapping findings merged; the shared empty array when there are none.
 */
export function findSensitive(text: string): readonly Finding[] {
  const found = scan(text, true);
  return found === null ? NONE : merge(found);
}

/** Counts of the characters the detectors need, taken in one pass so that most skip at once. */
interface Features {
  digits: number;
  /**
   * The most digits in one run of digits joined by up to three separators: `(555) 010-0100`, and
   * the international phone pattern's `) (` between digits.
   */
  digitCluster: number;
  /** The longest run of characters other than whitespace. */
  longestToken: number;
  colonSpace: boolean;
  doubleColon: boolean;
  upper: number;
  spaces: number;
  at: boolean;
  colons: number;
  dots: number;
  quote: boolean;
  equals: boolean;
  percent: boolean;
  base64Run: boolean;
  hexRun: boolean;
  /** Five dashes in a row, as a PEM header starts. */
  dashRun: boolean;
  /** A `-` or `$`, as the credential shapes shorter than LONG_SECRET_TOKEN hold. */
  secretMark: boolean;
}

const features: Features = {
  digits: 0,
  digitCluster: 0,
  longestToken: 0,
  colonSpace: false,
  doubleColon: false,
  upper: 0,
  spaces: 0,
  at: false,
  colons: 0,
  dots: 0,
  quote: false,
  equals: false,
  percent: false,
  base64Run: false,
  hexRun: false,
  dashRun: false,
  secretMark: false,
};

/* Character classes for measure, as bits in a table indexed by char code. */
const C_DIGIT = 1;
const C_UPPER = 2;
const C_LOWER = 4;
const C_HEX = 8;
const C_BASE64 = 16;
const C_SPACE = 32;
/** Characters that may separate the digit groups of one number: space - . ( ) / */
const C_DIGIT_SEPARATOR = 64;
/** Characters some detector keys on: @ : . " = % $ and anything beyond ASCII. */
const C_MARK = 128;
const CLASSES = new Uint8Array(65536);
for (let c = 0; c < 65536; c++) {
  let bits = 0;
  if (c >= 48 && c <= 57) bits |= C_DIGIT | C_HEX | C_BASE64;
  else if (c >= 65 && c <= 90) bits |= C_UPPER | C_BASE64 | (c <= 70 ? C_HEX : 0);
  else if (c >= 97 && c <= 122) bits |= C_LOWER | C_BASE64 | (c <= 102 ? C_HEX : 0);
  else if (c === 43 || c === 47 || c === 45 || c === 95) bits |= C_BASE64;
  else if (c === 32 || c === 9 || c === 10 || c === 13) bits |= C_SPACE;
  if (c === 32 || c === 45 || c === 46 || c === 40 || c === 41 || c === 47) bits |= C_DIGIT_SEPARATOR;
  if (c === 64 || c === 58 || c === 46 || c === 34 || c === 61 || c === 37 || c === 36 || c > 127)
    bits |= C_MARK;
  CLASSES[c] = bits;
}

/** Features of text, or of the UTF-8 bytes text[start..end) when text is a buffer. */
function measure(text: string | Buffer, start = 0, end = text.length): Features {
  // Locals, not properties, inside the loop: it runs for every character of every scanned cell.
  let digits = 0;
  let digitCluster = 0;
  let longestToken = 0;
  let upper = 0;
  let spaces = 0;
  let colons = 0;
  let dots = 0;
  let at = false;
  let quote = false;
  let equals = false;
  let percent = false;
  let base64Run = false;
  let hexRun = false;
  let colonSpace = false;
  let doubleColon = false;
  let cluster = 0;
  let gap = 0;
  let token = 0;
  let previous = 0;
  let run = 0;
  let runUpper = false;
  let runLower = false;
  let runMarks = false;
  let hexLength = 0;
  let dashes = 0;
  let dashRun = false;
  let secretMark = false;
  const bytes = typeof text === 'string' ? undefined : text;
  for (let i = start; i < end; i++) {
    const c = bytes === undefined ? (text as string).charCodeAt(i) : bytes[i]!;
    const k = CLASSES[c]!;
    if (k & C_DIGIT) {
      digits++;
      gap = 0;
      if (++cluster > digitCluster) digitCluster = cluster;
    } else if (cluster > 0 && gap < 3 && k & C_DIGIT_SEPARATOR) {
      gap++;
    } else {
      cluster = 0;
      gap = 0;
    }
    if (k & C_UPPER) upper++;
    if (k & C_BASE64) {
      run++;
      if (k & C_UPPER) runUpper = true;
      else if (k & C_LOWER) runLower = true;
      else if (c !== 45 && c !== 95) runMarks = true;
      // Base64 of text mixes cases, or letters with digits or + and /: `MTIzLTQ1`, `NDExMTEx`.
      if (run >= ENCODED_RUN && (runUpper || runLower) && (runMarks || (runUpper && runLower)))
        base64Run = true;
    } else {
      run = 0;
      runUpper = false;
      runLower = false;
      runMarks = false;
    }
    if (c === 45) {
      secretMark = true;
      if (++dashes >= 5) dashRun = true;
    } else {
      dashes = 0;
    }
    if (k & C_HEX) {
      if (++hexLength >= ENCODED_RUN) hexRun = true;
    } else {
      hexLength = 0;
    }
    if (k & C_SPACE) {
      spaces++;
      token = 0;
      if (previous === 58) colonSpace = true;
    } else if (++token > longestToken) {
      longestToken = token;
    }
    if (k & C_MARK) {
      if (c === 64) at = true;
      else if (c === 58) {
        colons++;
        if (previous === 58) doubleColon = true;
      } else if (c === 46) dots++;
      else if (c === 34) quote = true;
      else if (c === 61) equals = true;
      else if (c === 37) percent = true;
      else if (c === 36) secretMark = true;
      // Letters outside ASCII may be capitals: enough to wake the name detector.
      else upper++;
    }
    previous = c;
  }
  const f = features;
  f.digits = digits;
  f.digitCluster = digitCluster;
  f.longestToken = longestToken;
  f.upper = upper;
  f.spaces = spaces;
  f.colons = colons;
  f.dots = dots;
  f.at = at;
  f.quote = quote;
  f.equals = equals;
  f.percent = percent;
  f.base64Run = base64Run;
  f.hexRun = hexRun;
  f.colonSpace = colonSpace;
  f.doubleColon = doubleColon;
  f.dashRun = dashRun;
  f.secretMark = secretMark;
  return f;
}

/* The detectors scan() wakes, as bits: each is skipped unless the text has what it needs. */
const G_EMAIL = 1 << 0;
const G_SSN = 1 << 1;
const G_CARD = 1 << 2;
const G_PHONE = 1 << 3;
const G_IPV4 = 1 << 4;
const G_IPV6 = 1 << 5;
const G_IBAN = 1 << 6;
const G_NINO = 1 << 7;
const G_DNI = 1 << 8;
const G_SECRET = 1 << 9;
const G_NAME = 1 << 10;
const G_STREET = 1 << 11;
const G_JSON = 1 << 12;
const G_EQUALS = 1 << 13;
const G_COLON = 1 << 14;
const G_URL = 1 << 15;
const G_BASE64 = 1 << 16;
const G_HEX = 1 << 17;
const G_PERCENT = 1 << 18;
const G_STREET_EUROPEAN = 1 << 19;

/** The shortest base64 and hex tokens scan decodes (BASE64, HEX). */
const ENCODED_RUN = 8;
/**
 * The shortest credential shape but a PEM header: crypt(3)'s `$1$` and eight characters. Those
 * shorter than LONG_SECRET_TOKEN all hold a `$` (crypt, pbkdf2) or a `-` (Slack's `xoxb-`).
 */
const SECRET_TOKEN = 11;
const LONG_SECRET_TOKEN = 16;

/**
 * Which detectors can find anything in a text with these features. Every threshold is a count or a
 * flag that can only grow when a text is measured as its UTF-8 bytes instead of its characters (a
 * character beyond ASCII is one or more bytes above 127, each counted where the character is), so
 * what bytes do not wake, their text does not either: mayFindSensitive relies on that.
 */
function gates(f: Features, text: string | Buffer): number {
  let g = 0;
  if (f.at) g |= G_EMAIL;
  if (f.digitCluster >= 9) g |= G_SSN;
  if (f.digitCluster >= 13) g |= G_CARD;
  if (f.digitCluster >= 7) g |= G_PHONE;
  if (f.digits >= 4 && f.dots >= 3) g |= G_IPV4;
  if (f.colons >= 7 || f.doubleColon) g |= G_IPV6;
  // Two capitals and two check digits: in Malta, Qatar or Saint Lucia the rest may be letters.
  if (f.upper >= 2 && f.digits >= 2) g |= G_IBAN;
  if (f.upper >= 3 && f.digits >= 6) g |= G_NINO;
  if (f.upper >= 1 && f.digits >= 7) g |= G_DNI;
  // Every credential shape is one token of SECRET_TOKEN or more characters, except a PEM header.
  if (
    f.longestToken >= LONG_SECRET_TOKEN ||
    (f.longestToken >= SECRET_TOKEN && f.secretMark) ||
    (f.longestToken >= 5 && f.dashRun && text.includes('-----BEGIN'))
  )
    g |= G_SECRET;
  if (f.upper >= 2 && f.spaces >= 1) g |= G_NAME;
  if (f.digits >= 1 && f.upper >= 1 && f.spaces >= 1) g |= G_STREET;
  // Matched without regard to case: `12 rue de la paix` (two blanks), `hauptweg 5` (a word of five).
  if (f.digits >= 1 && (f.spaces >= 2 || (f.spaces >= 1 && f.longestToken >= 5))) g |= G_STREET_EUROPEAN;
  if (f.quote && f.colons >= 1) g |= G_JSON;
  if (f.equals) g |= G_EQUALS;
  if (f.colonSpace) g |= G_COLON;
  if (f.at && f.colons >= 1) g |= G_URL;
  if (f.base64Run) g |= G_BASE64;
  if (f.hexRun) g |= G_HEX;
  if (f.percent) g |= G_PERCENT;
  return g;
}

/**
 * A cheap, sure "no" before a cell is decoded: false when findSensitive finds nothing in the UTF-8
 * text of these bytes, because no detector would even look. True means it may; scan to know.
 */
export function mayFindSensitive(bytes: Buffer, start = 0, end = bytes.length): boolean {
  if (end - start < MIN_TEXT) return false;
  return !quiet(bytes, start, end) && measuredMayFindSensitive(bytes, start, end);
}

/** mayFindSensitive without its quiet pass: exported for the test that holds that pass to it. */
export function measuredMayFindSensitive(bytes: Buffer, start = 0, end = bytes.length): boolean {
  if (end - start < MIN_TEXT) return false;
  const f = measure(bytes, start, end);
  return gates(f, f.dashRun ? bytes.subarray(start, end) : bytes) !== 0;
}

/*
 * The quiet pass. Bytes that measure counts as none of digit, capital or mark (@ : . " = % and every
 * byte beyond ASCII) leave every feature at zero but the count of spaces and the run lengths
 * (longestToken; the base64, hex and dash runs, none longer than its token). Of what gates reads,
 * such text can then wake only the secret detector (a token of SECRET_TOKEN or more; a PEM header
 * needs capitals) and base64 and hex (a run of ENCODED_RUN or more): none when every token is
 * shorter. So lowercase words, punctuation and blank padding (char(n) columns; 84 blanks a row in
 * pgbench_accounts) are told clean by one table lookup a byte, where measure does a score of tests.
 * The table is derived from measure's classes, so a byte measure learns to count cannot stay quiet
 * here; the tests hold this pass to the full measure on every byte value.
 */
const Q_QUIET = 0;
const Q_SPACE = 1;
const Q_LOUD = 2;
/** Shorter runs of quiet bytes wake nothing; see above. */
const QUIET_TOKEN = Math.min(SECRET_TOKEN, ENCODED_RUN);
const QUIET_CLASSES = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const k = CLASSES[c]!;
  QUIET_CLASSES[c] = k & (C_DIGIT | C_UPPER | C_MARK) ? Q_LOUD : k & C_SPACE ? Q_SPACE : Q_QUIET;
}

/** True when measure of bytes[start..end) is sure to wake no detector. */
function quiet(bytes: Buffer, start: number, end: number): boolean {
  // Blank padding first, in the tightest loop: a blank ends a token and adds only to `spaces`.
  while (end > start && bytes[end - 1] === 32) end--;
  let token = 0;
  for (let i = start; i < end; i++) {
    const q = QUIET_CLASSES[bytes[i]!]!;
    if (q === Q_QUIET) {
      if (++token >= QUIET_TOKEN) return false;
    } else if (q === Q_SPACE) {
      token = 0;
    } else {
      return false;
    }
  }
  return true;
}

/** Shorter texts hold nothing a detector finds. */
const MIN_TEXT = 4;

function scan(text: string, decode: boolean): Finding[] | null {
  if (text.length < MIN_TEXT) return null;
  const f = measure(text);
  const g = gates(f, text);
  if (g === 0) return null;
  let out: Finding[] | null = null;
  const add = (kind: PiiKind, start: number, end: number, encoding?: Encoding): void => {
    const finding: Finding = encoding === undefined ? { kind, start, end } : { kind, start, end, encoding };
    if (out === null) out = [finding];
    else out.push(finding);
  };

  if (g & G_EMAIL) each(EMAIL, text, (m) => add('email', m.index, m.index + m[0].length));
  if (g & G_SSN) {
    each(SSN, text, (m) => {
      if (ssnValid(Number(m[1]), Number(m[3]), Number(m[4]))) add('ssn', m.index, m.index + m[0].length);
    });
  }
  if (g & G_CARD) {
    each(CARD, text, (m) => {
      if (cardNumberValid(text, m.index, m.index + m[0].length)) add('card', m.index, m.index + m[0].length);
    });
    if (f.digitCluster >= 20) {
      each(LONG_DIGITS, text, (m) => {
        const start = m.index;
        const end = start + m[0].length;
        for (let length = 19; length >= 13; length--) {
          if (cardNumberValid(text, start, start + length)) add('card', start, start + length);
          if (cardNumberValid(text, end - length, end)) add('card', end - length, end);
        }
      });
    }
    each(AHV, text, (m) => {
      if (ahvValid(text, m.index, m.index + m[0].length)) add('national-id', m.index, m.index + m[0].length);
    });
  }
  if (g & G_PHONE) {
    each(PHONE_INTERNATIONAL, text, (m) => add('phone', m.index, m.index + m[0].length));
    if (f.digitCluster >= 10) {
      each(PHONE_NANP, text, (m) => add('phone', m.index, m.index + m[0].length));
      each(PHONE_TRUNK_PREFIX, text, (m) => add('phone', m.index, m.index + m[0].length));
    }
  }
  if (g & G_IPV4) {
    each(IPV4, text, (m) => {
      const end = m.index + m[0].length;
      if (ipv4Valid(text, m.index, end) && !unremarkableIpv4(m[0])) add('ip', m.index, end);
    });
  }
  if (g & G_IPV6) {
    each(IPV6, text, (m) => {
      const end = m.index + m[0].length;
      if (m[0] !== '::' && m[0] !== '::1' && ipv6Valid(text, m.index, end)) add('ip', m.index, end);
    });
  }
  if (g & G_IBAN) {
    each(IBAN_START, text, (m) => {
      const end = ibanEnd(text, m.index);
      if (end > 0) add('iban', m.index, end);
    });
  }
  if (g & G_NINO) {
    each(NINO, text, (m) => {
      if (ninoValid(text, m.index, m.index + m[0].length)) {
        add('national-id', m.index, m.index + m[0].length);
      }
    });
  }
  if (g & G_DNI) {
    each(DNI, text, (m) => {
      if (dniValid(text, m.index, m.index + m[0].length)) add('national-id', m.index, m.index + m[0].length);
    });
  }
  if (g & G_SECRET) {
    each(SECRET_PATTERN, text, (m) => {
      if (plausibleSecret(m)) add('secret', m.index, m.index + m[0].length);
    });
  }
  if (g & G_NAME) {
    each(PERSON_NAME, text, (m) => {
      if (isGivenName(m[1]!)) add('person-name', m.index, m.index + m[0].length);
    });
  }
  if (g & G_STREET) {
    each(STREET, text, (m) => add('street-address', m.index, m.index + m[0].length));
  }
  if (g & G_STREET_EUROPEAN) {
    each(STREET_EUROPEAN, text, (m) => add('street-address', m.index, m.index + m[0].length));
  }
  if (g & G_JSON) {
    each(JSON_MEMBER, text, (m) => {
      const raw = m[2]!;
      const start = m.index + m[0].length - raw.length;
      const quoted = raw.charCodeAt(0) === 34;
      hinted(
        m[1]!,
        text,
        quoted ? start + 1 : start,
        quoted ? start + raw.length - 1 : start + raw.length,
        add,
      );
    });
  }
  if (g & G_EQUALS) {
    each(KEY_EQUALS_VALUE, text, (m) => {
      const raw = m[2]!;
      const start = m.index + m[0].length - raw.length;
      const quoted = raw.charCodeAt(0) === 34 || raw.charCodeAt(0) === 39;
      hinted(
        m[1]!,
        text,
        quoted ? start + 1 : start,
        quoted ? start + raw.length - 1 : start + raw.length,
        add,
      );
    });
    if (text.includes('Key (')) detailKeys(text, add);
  }
  if (g & G_COLON) {
    each(KEY_COLON_VALUE, text, (m) => {
      const raw = m[2]!.trimEnd();
      const start = m.index + m[0].length - m[2]!.length;
      hinted(m[1]!.trim(), text, start, start + raw.length, add);
    });
  }
  if (g & G_URL) {
    each(URL_PASSWORD, text, (m) => {
      const end = m.index + m[0].length - 1;
      add('secret', end - m[1]!.length, end);
    });
  }
  if (decode) {
    if (g & G_BASE64) {
      each(BASE64, text, (m) => {
        const decoded = decodeBase64Text(text, m.index, m.index + m[0].length);
        const inner = decoded === null ? null : scan(decoded, false);
        if (inner !== null) add(inner[0]!.kind, m.index, m.index + m[0].length, 'base64');
      });
    }
    if (g & G_HEX) {
      each(HEX, text, (m) => {
        const prefix = m[0].startsWith('\\x') ? 2 : 0;
        const decoded = decodeHexText(text, m.index + prefix, m.index + m[0].length);
        const inner = decoded === null ? null : scan(decoded, false);
        if (inner !== null) add(inner[0]!.kind, m.index, m.index + m[0].length, 'hex');
      });
    }
    if (g & G_PERCENT) {
      each(PERCENT, text, (m) => {
        const decoded = decodePercent(m[0]);
        const inner = decoded === null ? null : scan(decoded, false);
        if (inner !== null) add(inner[0]!.kind, m.index, m.index + m[0].length, 'percent');
      });
    }
  }
  return out;
}

function each(pattern: RegExp, text: string, visit: (match: RegExpExecArray) => void): void {
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    visit(m);
    if (m[0].length === 0) pattern.lastIndex++;
  }
}

/** Loopback, unspecified and broadcast addresses identify no one. */
function unremarkableIpv4(address: string): boolean {
  return address.startsWith('127.') || address === '0.0.0.0' || address === '255.255.255.255';
}

/** The end of the IBAN starting at `start`, or -1: its country fixes how many characters to take. */
function ibanEnd(text: string, start: number): number {
  const length = ibanLength(text.slice(start, start + 2));
  if (length === undefined) return -1;
  let taken = 0;
  let i = start;
  while (i < text.length && taken < length) {
    const code = text.charCodeAt(i);
    if (code === 32 && taken > 0 && i + 1 < text.length && text.charCodeAt(i + 1) !== 32) {
      i++;
      continue;
    }
    const alnum = (code >= 48 && code <= 57) || ((code | 0x20) >= 97 && (code | 0x20) <= 122);
    if (!alnum) return -1;
    taken++;
    i++;
  }
  if (taken < length) return -1;
  const next = text.charCodeAt(i);
  if ((next >= 48 && next <= 57) || ((next | 0x20) >= 97 && (next | 0x20) <= 122)) return -1;
  return ibanValid(text, start, i) ? i : -1;
}

function isGivenName(word: string): boolean {
  const lower = word.toLowerCase();
  if (GIVEN_NAMES.has(lower)) return true;
  // José, Zoë: compare without the accents the list leaves out.
  return /[^\x00-\x7f]/.test(lower) && GIVEN_NAMES.has(lower.normalize('NFD').replace(/\p{Mn}/gu, ''));
}

const NOT_VALUES = new Set(['', 'null', 'true', 'false', 'none', 'nil', 'undefined', 'NULL']);
const PERSON_LIKE = /^\p{Lu}[\p{L}'’.-]*(?:[ \t]+\p{Lu}[\p{L}'’.-]*){1,4}$/u;

/** Flags text[start..end) when `key` names sensitive data (`"ssn": "..."`, `password=...`). */
function hinted(
  key: string,
  text: string,
  start: number,
  end: number,
  add: (kind: PiiKind, start: number, end: number) => void,
): void {
  const kind = classifyKey(key);
  if (kind === null || end <= start) return;
  const value = text.slice(start, end);
  if (NOT_VALUES.has(value.trim())) return;
  // A bare `name` key could be a product's: only a multi-word capitalised value counts as a person.
  if (kind === 'person-name' && key.toLowerCase() === 'name' && !PERSON_LIKE.test(value)) return;
  add(kind, start, end);
}

/** PostgreSQL's `Key (email)=(alice@example.com) already exists.`: the values of sensitive columns. */
function detailKeys(text: string, add: (kind: PiiKind, start: number, end: number) => void): void {
  each(DETAIL_KEY, text, (m) => {
    let kind: PiiKind | null = null;
    for (const column of m[1]!.split(',')) {
      const columnKind = classifyKey(column.trim().replace(/^"|"$/g, ''));
      if (columnKind !== null && (kind === null || rank(columnKind) < rank(kind))) kind = columnKind;
    }
    if (kind === null) return;
    const start = m.index + m[0].length;
    const close = DETAIL_KEY_END.exec(text.slice(start));
    const end = close === null ? text.length : start + close.index;
    if (end > start) add(kind, start, end);
  });
}

function decodePercent(token: string): string | null {
  try {
    return decodeURIComponent(token);
  } catch {
    return null;
  }
}

function rank(kind: PiiKind): number {
  return KIND_PRIORITY.indexOf(kind);
}

/** Sorts findings and merges overlapping ones into one span of the highest-priority kind. */
function merge(found: Finding[]): readonly Finding[] {
  if (found.length === 1) return found;
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Finding[] = [];
  let current = found[0]!;
  for (let i = 1; i < found.length; i++) {
    const next = found[i]!;
    if (next.start < current.end) {
      if (
        next.end > current.end ||
        rank(next.kind) < rank(current.kind) ||
        (next.encoding && !current.encoding)
      ) {
        const kind = rank(next.kind) < rank(current.kind) ? next.kind : current.kind;
        const encoding = current.encoding ?? next.encoding;
        const end = Math.max(current.end, next.end);
        current =
          encoding === undefined
            ? { kind, start: current.start, end }
            : { kind, start: current.start, end, encoding };
      }
    } else {
      merged.push(current);
      current = next;
    }
  }
  merged.push(current);
  return merged;
}
