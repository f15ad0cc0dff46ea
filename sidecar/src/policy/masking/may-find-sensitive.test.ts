import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findSensitive, mayFindSensitive } from './find-sensitive.ts';

/*
 * mayFindSensitive lets the row maskers skip cells before decoding them; a "no" for a value that
 * findSensitive flags would send PII in clear. Generated values around every example the detector
 * tests flag, in many spellings and encodings, must never get that "no".
 */

/** The string literals of the detector tests: values that are flagged, and near misses. */
function examples(): string[] {
  const files = ['find-sensitive.test.ts', 'redteam-encodings.test.ts', 'mask-text-freeform.test.ts'];
  const out = new Set<string>();
  for (const file of files) {
    const source = readFileSync(new URL(file, import.meta.url), 'utf8');
    for (const m of source.matchAll(/'((?:[^'\\\n]|\\.){4,})'|`([^`$\n]{4,})`/g)) out.add(m[1] ?? m[2]!);
  }
  return [...out];
}

const NOISE = [
  '',
  ' ',
  'x',
  'é',
  '日本',
  '😀',
  ':',
  ': ',
  '"',
  '=',
  '%',
  '.',
  '-',
  '(',
  ')',
  '\t',
  '\n',
  '@',
  'A',
  '7',
];

function noise(): string {
  return Array.from({ length: randomInt(0, 3) }, () => NOISE[randomInt(NOISE.length)]).join('');
}

function variants(value: string): string[] {
  const start = randomInt(0, value.length);
  const end = randomInt(start, value.length + 1);
  return [
    value,
    noise() + value + noise(),
    value.toUpperCase(),
    value.toLowerCase(),
    value.slice(start, end),
    value.replace(/ /g, '\u00a0'),
    value.replace(/[aeo]/g, 'é'),
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('base64url'),
    Buffer.from(value).toString('hex'),
    `\\x${Buffer.from(value).toString('hex')}`,
    encodeURIComponent(value),
    JSON.stringify({ note: value }),
    `(1,"${value}",x)`,
  ];
}

function check(bytes: Buffer): void {
  const text = bytes.toString('utf8');
  if (findSensitive(text).length > 0 && !mayFindSensitive(bytes)) {
    expect.fail(`mayFindSensitive said no to ${JSON.stringify(text)}, which findSensitive flags`);
  }
}

describe('mayFindSensitive', () => {
  it('never says no to a value findSensitive flags (examples in many spellings)', () => {
    const all = examples();
    expect(all.length).toBeGreaterThan(150);
    let flagged = 0;
    for (let round = 0; round < 20; round++) {
      for (const example of all) {
        for (const value of variants(example)) {
          if (round === 0 && findSensitive(value).length > 0) flagged++;
          check(Buffer.from(value));
        }
      }
    }
    expect(flagged).toBeGreaterThan(500);
  });

  it('never says no to random text or bytes that findSensitive flags', () => {
    const alphabet = 'aZ09 .-@:"=%+/_()\t\né€😀\u00a0';
    for (let n = 0; n < 50_000; n++) {
      const text = Array.from({ length: randomInt(0, 40) }, () => [...alphabet][randomInt(25)]).join('');
      check(Buffer.from(text));
      // Invalid UTF-8 decodes to U+FFFD: still never a "no" for what the decoded text holds.
      const bytes = Buffer.from(text);
      if (bytes.length > 0) bytes[randomInt(bytes.length)] = randomInt(0x80, 0x100);
      check(bytes);
    }
  });

  it('says no at once to ordinary values', () => {
    for (const value of ['shipped', 'vip', 'Blue widget, large', 'order 1234', '10.50', 'north'])
      expect([value, mayFindSensitive(Buffer.from(value))]).toEqual([value, false]);
  });
});
