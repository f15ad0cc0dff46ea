import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findSensitive, mayFindSensitive, measuredMayFindSensitive } from './find-sensitive.ts';
import { placements, quietProse, SENSITIVE_GENERATORS, seededRandom } from './sensitive-samples.testing.ts';

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
    // Not `order 1234`: a digit, a blank and a word of five may be an address (`hauptweg 5`).
    for (const value of ['shipped', 'vip', 'Blue widget, large', 'item 1234', '10.50', 'north'])
      expect([value, mayFindSensitive(Buffer.from(value))]).toEqual([value, false]);
  });
});

/** The cell at every alignment inside a larger frame of blanks, as a DataRow holds it. */
function checkInFrame(text: string): void {
  const bytes = Buffer.from(text);
  for (let lead = 0; lead < 16; lead++) {
    const frame = Buffer.concat([Buffer.alloc(lead, 32), bytes, Buffer.alloc(16 - lead, 32)]);
    if (!mayFindSensitive(frame, lead, lead + bytes.length)) {
      expect.fail(
        `mayFindSensitive said no to ${JSON.stringify(text)} at offset ${lead}, which findSensitive flags`,
      );
    }
  }
}

function seedOf(name: string): number {
  let seed = 17;
  for (let i = 0; i < name.length; i++) seed = Math.imul(seed, 31) + name.charCodeAt(i);
  return seed;
}

describe('mayFindSensitive: generated values of every detector', () => {
  const SAMPLES = 300;
  for (const [name, generate] of Object.entries(SENSITIVE_GENERATORS)) {
    it(`never says no to ${name}, wherever it sits in a cell`, () => {
      const random = seededRandom(seedOf(name));
      for (let n = 0; n < SAMPLES; n++) {
        const sample = generate(random);
        // Every sample is a value its detector's pattern and checks accept, so findSensitive must
        // flag it: a gate inside findSensitive that skips the detector fails here.
        if (findSensitive(sample).length === 0) expect.fail(`findSensitive missed ${JSON.stringify(sample)}`);
        for (const text of placements(random, sample)) {
          if (findSensitive(text).length > 0) checkInFrame(text);
        }
      }
    });
  }
});

describe('mayFindSensitive: the quiet pass', () => {
  /*
   * The quiet pass may only answer early what measure and gates would answer: with it and without it
   * the gate must agree on every input.
   */
  function agree(bytes: Buffer): void {
    const fast = mayFindSensitive(bytes);
    if (fast !== measuredMayFindSensitive(bytes)) {
      expect.fail(`the quiet pass says ${!fast} for ${JSON.stringify(bytes.toString('latin1'))}`);
    }
  }

  it('agrees with the full measure on every byte value, alone, repeated and inside quiet text', () => {
    const random = seededRandom(1);
    for (let byte = 0; byte < 256; byte++) {
      const one = Buffer.of(byte);
      for (let count = 1; count <= 20; count++) agree(Buffer.alloc(count, byte));
      for (let n = 0; n < 50; n++) {
        const prose = Buffer.from(quietProse(random, 1 + random(6)));
        const at = random(prose.length + 1);
        agree(Buffer.concat([prose.subarray(0, at), one, prose.subarray(at)]));
      }
    }
  });

  it('agrees with the full measure on random text of mostly quiet bytes', () => {
    const random = seededRandom(2);
    const quiet = 'abcdefxyz+/-_()!,;[]~ \t\n\r   ';
    const loud = '0Z@:.=%"\u00e9';
    for (let n = 0; n < 100_000; n++) {
      let text = '';
      const length = random(48);
      for (let i = 0; i < length; i++)
        text += random(40) === 0 ? loud[random(loud.length)] : quiet[random(quiet.length)];
      agree(Buffer.from(text));
    }
  });

  it('says no to blank padding and short lowercase words at once', () => {
    for (const value of [' '.repeat(84), `abc${' '.repeat(81)}`, 'shipped', 'on hold, see note', 'x\ty\nz'])
      expect([value, mayFindSensitive(Buffer.from(value))]).toEqual([value, false]);
  });
});
