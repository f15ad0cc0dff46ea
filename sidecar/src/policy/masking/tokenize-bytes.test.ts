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

/*
 * More inputs, recorded before the HMAC was rebuilt over noble's SHA-256 objects: empty and one
 * character, lengths that need one, two and four HMAC blocks of stream (55, 78, 100), non-ASCII
 * text and email parts, a zip code with a leading zero, a spaced card number; each tokenized as
 * text, hashed, and tokenized as binary bytea (a stream the length of the value, in hex).
 */
describe('tokens of edge-case values are stable across versions', () => {
  const golden: [string, number, string, string, string][] = [
    ['', 25, '', '7edeef2d601811dc5257e92567851d5e91bcbd16888652a82fcf30187c60ab2d', ''],
    ['a', 25, 'o', '36c75b3d88a75911586d6c696632ebb96bf19acb95c42f351e2b752c24e00b89', '76'],
    ['0', 25, '2', 'ec6a6cd8422d2493e2ceff1b12ee462a8cc93686a3f0e5bd91838d232a73fd62', '02'],
    [
      'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      25,
      'griaeucecfaxorrmdemrjtymwkvoqhagmbqaenshqygalribvcfsoap',
      'c35a5f5b0c16526966acc9dbd8ac953a85fe886abc954597209e0c905a549ed9',
      'bc5fa4eaa0960252b8871a31c445930ced8674450947cef6300a49aaac5568885aeb444ed475600744cef0eadb938a1b2f02ef2cf88277',
    ],
    [
      'Lorem ipsum dolor sit amet, consectetur adipiscing elit 0123456789 ABCDEFGHIJ',
      25,
      'Dnuya fsggn viiki hxr ywdj, hxvkbmspzfo ridbyaofqe llvx 8318488624 LCAYDFMNXC',
      'ccf6e747f57e8de82c41a1e53fe96b7d60ef0c527980d4d1efe668c3cec3946f',
      '85dd48ce3475871220bcc3134956f258225ca3b3ad0aceb251a5616e21e7497201a8465d4d535c0b2b221dd180b6c439e08664f573b1b3133af3a1d0904e08a62accd83fec9c66d31ff6dd6584',
    ],
    [
      '9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999',
      25,
      '8659734352452374615339798113692705490647521002476393617357080498843417704439252162969030560261247226',
      '79d41e8c065313e04a7ee65645629af91d0a89d50d75fc8422a31b29c8da26b4',
      'bc7e41efe3e97c8fd734fe55b6b79d4038792dcb3581c5b3da9729496aefca9396a522f9a024b81119f23dc8fade22894cb7b349b0b56b8f73cf5ac6d22cc7761cb85dc2652fd928c2b87b77fc2d2aabc4def974275a7ba03774b4fc6ab5fc721102f2c4',
    ],
    [
      'Ünïcödé straße 42 — 東京 ١٢٣',
      25,
      'Qqguxyz bzctrp 94 — fj 277',
      '4b11c3a5d936ba23d19b65a72387ccbd51276be2d86026710eddfc80112b422f',
      '442aa296994c67289de902e379ab7c1deadb69fd878b42989d2ff372f362cbfa61fc42fed512fbfd',
    ],
    [
      'bob.o-neil+tag@Mail.Example.CO.uk',
      25,
      'iwi.q-qudv+fwo@Yiqt.Mnrdeaa.TJ.uk',
      '7e239229123a5bccbd972340c190037a5aa28ef24013dd59ef388c8969a9c715',
      '58a3fb479e6907644582d60a01c5c9cd5d3bcf34d001d157cdede54da00d0eac35',
    ],
    [
      'ä@ö.de',
      25,
      'l@g.de',
      '8e2d1d559ef058197e63e23be5bc5ffda6c2a61b648f81a247cc8a5283bfde67',
      'f2945878a92aa5f8',
    ],
    [
      '00012',
      1043,
      '04366',
      '15dd3024a5bc4bb5e9a1ba85006ddefb4aeb0d041c526c6c1adb38b8d7724916',
      'f022b71ab0',
    ],
    [
      '4012 8888 8888 1881',
      25,
      '8860 2163 0637 8182',
      '18f7c1cf2b4a7032460d70fa506ebcc6ec63cf22110e4718cb1729d5d2f8dc64',
      '76a89232061665383f0bb492531bf36ca19eb6',
    ],
  ];
  it.each(golden)('%j (type %i)', (value, typeOid, token, hashed, byteaToken) => {
    const cell = Buffer.from(value);
    const context = { key, kind: null, typeOid };
    expect(Buffer.from(createCellMasker('tokenize', context)(cell, TEXT_FORMAT)!).toString()).toBe(token);
    expect(Buffer.from(createCellMasker('hash', context)(cell, TEXT_FORMAT)!).toString()).toBe(hashed);
    expect(maskValue(value, 'tokenize', context)).toBe(token);
    const bytea = createCellMasker('tokenize', { key, kind: null, typeOid: PG_TYPE.bytea });
    expect(Buffer.from(bytea(cell, BINARY_FORMAT)!).toString('hex')).toBe(byteaToken);
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
