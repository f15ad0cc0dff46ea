import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BINARY_FORMAT, createCellMasker, TEXT_FORMAT } from './mask-cell.ts';
import { maskValue } from './mask-methods.ts';
import { maskTextFreeform } from './mask-text-freeform.ts';
import { createMaskingKey } from './masking-key.ts';
import { PG_TYPE } from './pg-types.ts';

const key = createMaskingKey(Buffer.from('gatehouse golden token key 32 bytes!'));

/*
 * Tokens must not change between versions: masked exports joined on tokens, and equality between
 * columns tokenized alike (comparedInClear), rely on it. These were computed before cells were
 * tokenized as bytes and HMAC-SHA-256 was unrolled; any change here changes every token in use.
 */
describe('tokens are stable across versions', () => {
  const golden: [string, number, string, string][] = [
    [
      'alice@example.com',
      25,
      'yqtzb@vzketbr.com',
      'c01de849911cbdc9c9a9beac57ba34a16eee1da0cb9043cc2f695a32d68cd168',
    ],
    [
      '4111111111111111',
      25,
      '2858691775993725',
      '90596e2a2f1c695c0bb921ec6d3d224cbe75e673d281bdd9d002221d0b7a76e9',
    ],
    ['123-45-6789', 1043, '681-65-9042', '1638c28ebb579d8675f32b00fd80471a6da375a96ab7ea2b6554da0b1795f947'],
    ['Alice Smith', 25, 'Nueme Ducjt', '2522ec23fcb0f0abc49f7ae455688a99b6766c9b15488e2b0ed6372a3d17575e'],
    ['Zoë Ångström', 25, 'Qgn Wvmbeiry', '6c6d9c546a5f5e358bab0d3b6ed977a8019fd6d1a9b31ba57c9401d07073933f'],
    ['AB12   ', 1042, 'TZ24   ', 'fd1753e'],
    [
      `${'x'.repeat(70)}@example.org`,
      25,
      'aykkljkwmfzairbootiaungerisqlonnsmieeidzolbfifylbwdqycmchnnieueamehcda@cvvormt.org',
      '290f83e8b8882534cfedb0d34aed44a2033bf39a428d9f0e9467a4fd56d22fe2',
    ],
    ['12345', 23, '62628', '91426'],
    ['2024-02-29', 1082, '2024-08-23', '2032-07-24'],
    [
      '3f2b8c1e-9a7d-4e5f-8b6a-1c2d3e4f5a6b',
      2950,
      'd1d7e881-0cdf-560b-6a50-dd672d9e7f49',
      '81a3e64c-22f3-8013-90cb-3c15f3c6683d',
    ],
  ];
  it.each(golden)('%s (type %i)', (value, typeOid, token, hashed) => {
    const cell = Buffer.from(value);
    const tokenize = createCellMasker('tokenize', { key, kind: null, typeOid });
    const hash = createCellMasker('hash', { key, kind: null, typeOid });
    expect(Buffer.from(tokenize(cell, TEXT_FORMAT)!).toString()).toBe(token);
    expect(Buffer.from(hash(cell, TEXT_FORMAT)!).toString()).toBe(hashed);
    expect(maskValue(value, 'tokenize', { key, kind: null, typeOid })).toBe(token);
  });

  it('freeform tokens equal column tokens', () => {
    expect(maskTextFreeform('mail alice@example.com or 123-45-6789', { method: 'tokenize', key })).toBe(
      'mail yqtzb@vzketbr.com or 681-65-9042',
    );
  });
});

const ALPHABET = 'abcxyzABCXYZ0123456789 -.@_+/:,';

function randomValue(): string {
  switch (randomInt(6)) {
    case 0: // emails, some with several '@' or dots, some ending in a dot
      return `${word(1, 70)}@${word(0, 12)}.${word(0, 4)}${randomInt(4) === 0 ? '.' : ''}`;
    case 1: // 13-19 digits with separators, half of them Luhn-valid
      return cardLike();
    case 2: // anything ASCII, lengths across the SHA-256 block boundaries (55, 64, 119)
      return Array.from({ length: randomInt(0, 130) }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    case 3:
      return `${word(1, 20)} ${word(1, 20)}`;
    case 4:
      return String.fromCharCode(...Array.from({ length: randomInt(0, 40) }, () => randomInt(1, 128)));
    default:
      return `${word(0, 10)}${'é'.repeat(randomInt(0, 2))}${word(0, 10)}`;
  }
}

function word(min: number, max: number): string {
  return Array.from({ length: randomInt(min, max + 1) }, () => ALPHABET[randomInt(12)]).join('');
}

function cardLike(luhnValid = randomInt(2) === 0): string {
  const digits = Array.from({ length: randomInt(13, 20) }, () => randomInt(10));
  if (luhnValid) {
    let sum = 0;
    for (let i = digits.length - 2, double = true; i >= 0; i--, double = !double) {
      const d = double ? digits[i]! * 2 : digits[i]!;
      sum += d > 9 ? d - 9 : d;
    }
    digits[digits.length - 1] = (10 - (sum % 10)) % 10;
  }
  return digits.map((d, i) => (i > 0 && i % 4 === 0 && randomInt(3) === 0 ? '-' : '') + d).join('');
}

describe('tokenizing cells as bytes', () => {
  it('gives the token of the text path for every value, type and format', () => {
    for (const typeOid of [PG_TYPE.text, PG_TYPE.varchar, PG_TYPE.name, PG_TYPE.bpchar]) {
      const masker = createCellMasker('tokenize', { key, kind: null, typeOid });
      for (let n = 0; n < 3000; n++) {
        let value = randomValue();
        if (typeOid === PG_TYPE.name) value = value.slice(0, 63);
        if (typeOid === PG_TYPE.bpchar) value += ' '.repeat(randomInt(3));
        const expected = maskValue(value, 'tokenize', { key, kind: null, typeOid });
        for (const format of [TEXT_FORMAT, BINARY_FORMAT]) {
          const token = masker(Buffer.from(value), format);
          expect([value, token === null ? null : Buffer.from(token).toString()]).toEqual([value, expected]);
        }
      }
    }
  });

  it('gives repeated domains the token of the text path under each key, whatever their case', () => {
    const other = createMaskingKey(Buffer.from('another golden token key of 32 b'));
    const domains = ['example.com', 'Example.com', 'EXAMPLE.COM', 'ex.co', 'example.org', 'a.b.example.com'];
    for (let n = 0; n < 2000; n++) {
      const k = n % 3 === 0 ? other : key;
      const value = `${word(1, 12)}@${domains[randomInt(domains.length)]}`;
      const token = createCellMasker('tokenize', { key: k, kind: null, typeOid: PG_TYPE.text })(
        Buffer.from(value),
        TEXT_FORMAT,
      );
      expect([value, Buffer.from(token!).toString()]).toEqual([
        value,
        maskValue(value, 'tokenize', { key: k, kind: null, typeOid: PG_TYPE.text }),
      ]);
    }
  });

  it('never lets the token of a card number pass the Luhn check', () => {
    const masker = createCellMasker('tokenize', { key, kind: 'card', typeOid: PG_TYPE.text });
    for (let n = 0; n < 2000; n++) {
      const token = Buffer.from(masker(Buffer.from(cardLike(true)), TEXT_FORMAT)!).toString();
      const digits = token.replace(/[^0-9]/g, '');
      let sum = 0;
      for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
        const d = double ? Number(digits[i]) * 2 : Number(digits[i]);
        sum += d > 9 ? d - 9 : d;
      }
      expect(sum % 10).not.toBe(0);
    }
  });
});
