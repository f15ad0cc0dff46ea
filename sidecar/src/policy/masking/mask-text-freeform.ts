import { findSensitive } from './find-sensitive.ts';
import { MASK_FUNCTIONS, type MaskContext, type MaskMethod, REDACTED } from './mask-methods.ts';
import type { MaskingKey } from './masking-key.ts';
import { PG_TYPE } from './pg-types.ts';
import { tokenizeHex, tokenizeText } from './tokenize.ts';

export interface FreeformOptions {
  /** How each finding is masked; redact by default. nullify, which cannot apply to a span, redacts. */
  readonly method?: MaskMethod;
  /** Required by hash and tokenize. */
  readonly key?: MaskingKey;
}

const NUMBER = /^-?[0-9]+(?:\.[0-9]+)?$/;

/** A number that is the value of a JSON member or element, which only a number may replace. */
function jsonNumber(text: string, start: number, end: number): boolean {
  if (!NUMBER.test(text.slice(start, end))) return false;
  let before = start - 1;
  while (before >= 0 && text.charCodeAt(before) <= 32) before--;
  let after = end;
  while (after < text.length && text.charCodeAt(after) <= 32) after++;
  const opener = text[before];
  const closer = text[after];
  return (opener === ':' || opener === '[') && (closer === ',' || closer === '}' || closer === ']');
}

/** Stands in for a missing key: only hash and tokenize touch it. */
const NO_KEY: MaskingKey = {
  get hash(): never {
    throw new Error('maskTextFreeform: hash needs a masking key');
  },
  get tokenize(): never {
    throw new Error('maskTextFreeform: tokenize needs a masking key');
  },
};

/**
 * Replaces every finding of findSensitive in a longer text (an error message, a notice, a whole-row
 * value, JSON) with its masked form, and returns the text itself when there is none. A finding
 * that is a JSON number (`"ssn": 123456789`) is masked as a number, others as text, so JSON stays
 * well-formed. Encoded findings (base64, hex, %-escapes) are redacted whole, or replaced by a
 * token of the same alphabet under tokenize.
 */
export function maskTextFreeform(text: string, options: FreeformOptions = {}): string {
  const findings = findSensitive(text);
  if (findings.length === 0) return text;
  const method = options.method === 'nullify' || options.method === undefined ? 'redact' : options.method;
  const key = options.key ?? NO_KEY;
  const mask = MASK_FUNCTIONS[method];
  let out = '';
  let last = 0;
  for (const finding of findings) {
    const span = text.slice(finding.start, finding.end);
    let masked: string | null;
    if (finding.encoding !== undefined) {
      if (method === 'tokenize') {
        masked =
          finding.encoding === 'hex'
            ? tokenizeHex(span, key.tokenize, span.startsWith('\\x') ? 2 : 0)
            : tokenizeText(span, key.tokenize);
      } else if (method === 'hash') {
        masked = mask(span, { key, kind: finding.kind, hashLength: 16 });
      } else {
        masked = REDACTED;
      }
    } else {
      const context: MaskContext = jsonNumber(text, finding.start, finding.end)
        ? { key, kind: finding.kind, typeOid: PG_TYPE.numeric }
        : { key, kind: finding.kind };
      masked = mask(span, context);
    }
    out += text.slice(last, finding.start) + (masked ?? REDACTED);
    last = finding.end;
  }
  return out + text.slice(last);
}
