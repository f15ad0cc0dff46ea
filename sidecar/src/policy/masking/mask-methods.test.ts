import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type MaskContext, type MaskMethod, maskValue } from './mask-methods.ts';
import { maskOutput } from './mask-output.ts';
import { createMaskingKey, HASH_LABEL } from './masking-key.ts';
import { PG_TYPE } from './pg-types.ts';
import type { PiiKind } from './pii-kind.ts';
import { luhnValid } from './validators.ts';

const SECRET = Buffer.alloc(32, 0x5a);
const key = createMaskingKey(SECRET);
const otherKey = createMaskingKey(Buffer.alloc(32, 0xa5));
const text = (kind: PiiKind | null, extra: Partial<MaskContext> = {}): MaskContext => ({
  key,
  kind,
  ...extra,
});

const RED_TEAM: [string, PiiKind][] = [
  ['Alice Smith', 'person-name'],
  ['Bob Jones', 'person-name'],
  ['alice@example.com', 'email'],
  ['bob@example.com', 'email'],
  ['123-45-6789', 'ssn'],
  ['987-65-4321', 'ssn'],
  ['+1-555-0100', 'phone'],
  ['+1-555-0199', 'phone'],
  ['4111111111111111', 'card'],
  ['5500000000000004', 'card'],
];
const REVEALING_METHODS: MaskMethod[] = ['redact', 'partial', 'hash', 'tokenize'];

/** Forms of a value from which it can be read back without a key. */
function reversibleForms(value: string): string[] {
  const forms = [
    value,
    value.toLowerCase(),
    value.toUpperCase(),
    [...value].reverse().join(''),
    Buffer.from(value).toString('base64').replace(/=+$/, ''),
    Buffer.from(value).toString('base64url'),
    Buffer.from(value).toString('hex'),
    encodeURIComponent(value),
  ];
  const digits = value.replace(/[^0-9]/g, '');
  if (digits.length >= 6) forms.push(digits);
  const letters = value.replace(/[^A-Za-z]/g, '');
  if (letters.length >= 4) forms.push(letters, letters.toLowerCase());
  return forms;
}

/** Letters, digits and everything else, position by position: the layout tokenize keeps. */
function layout(value: string): string {
  return value.replace(/[a-z]/g, 'a').replace(/[A-Z]/g, 'A').replace(/[0-9]/g, '9');
}

describe('masking the red-team values', () => {
  for (const method of REVEALING_METHODS) {
    it(`${method} leaves no reversible form of any value`, () => {
      for (const [value, kind] of RED_TEAM) {
        for (const context of [text(kind), text(null), text(undefined as unknown as null), { key }]) {
          const masked = maskValue(value, method, context);
          expect(masked).not.toBeNull();
          for (const form of reversibleForms(value)) {
            expect(masked!.includes(form), `${method}(${value}) = ${masked} contains ${form}`).toBe(false);
          }
        }
      }
    });
  }

  it('nullify gives NULL', () => {
    for (const [value, kind] of RED_TEAM) expect(maskValue(value, 'nullify', text(kind))).toBeNull();
  });
});

describe('redact', () => {
  it.each<[string, Partial<MaskContext>, string]>([
    ['alice@example.com', {}, '****'],
    ['alice@example.com', { redactStyle: 'same-length' }, '*****************'],
    ['Zoë', { redactStyle: 'same-length' }, '***'],
    ['alice@example.com', { typeOid: PG_TYPE.varchar, typmod: 2 + 4 }, '**'],
    ['Alice     ', { typeOid: PG_TYPE.bpchar, typmod: 10 + 4 }, '**********'],
    ['4111111111111111', { typeOid: PG_TYPE.int8 }, '0'],
    ['12.50', { typeOid: PG_TYPE.numeric }, '0'],
    [
      '123e4567-e89b-12d3-a456-426614174000',
      { typeOid: PG_TYPE.uuid },
      '00000000-0000-0000-0000-000000000000',
    ],
    ['192.168.1.20', { typeOid: PG_TYPE.inet }, '0.0.0.0'],
    ['10.1.0.0/16', { typeOid: PG_TYPE.cidr }, '0.0.0.0/16'],
    ['1980-05-17', { typeOid: PG_TYPE.date }, '1900-01-01'],
    ['1980-05-17 13:45:00.5+02', { typeOid: PG_TYPE.timestamptz }, '1900-01-01 00:00:00+02'],
    [
      '{"a": "x", "b": [1, 2.5, null, true]}',
      { typeOid: PG_TYPE.jsonb },
      '{"a": "****", "b": [0, 0, null, true]}',
    ],
    ['\\x616c696365', { typeOid: PG_TYPE.bytea }, '\\x'],
    ['{alice@example.com,NULL,"a b"}', { typeOid: 1009 }, '{****,NULL,****}'],
  ])('%j with %j is %j', (value, extra, expected) => {
    expect(maskValue(value, 'redact', text('email', extra))).toBe(expected);
  });

  it('keeps varchar(n) elements of arrays within n', () => {
    expect(maskValue('{abcdef,de}', 'redact', text(null, { typeOid: 1015, typmod: 2 + 4 }))).toBe('{**,**}');
    expect(maskValue('{abcdef,de}', 'hash', text(null, { typeOid: 1015, typmod: 3 + 4 }))).toMatch(
      /^\{[0-9a-f]{3},[0-9a-f]{3}\}$/,
    );
  });

  it('gives NULL for types it cannot fill', () => {
    expect(maskValue('t', 'redact', text(null, { typeOid: PG_TYPE.bool }))).toBeNull();
    expect(maskValue('1 day', 'redact', text(null, { typeOid: PG_TYPE.interval }))).toBeNull();
    expect(maskValue('05/17/1980', 'redact', text(null, { typeOid: PG_TYPE.date }))).toBeNull();
  });
});

describe('partial', () => {
  it.each<[string, PiiKind | null, string]>([
    ['alice@example.com', 'email', 'a***@example.com'],
    ['4111111111111111', 'card', '************1111'],
    ['4111 1111 1111 1111', 'card', '**** **** **** 1111'],
    ['123-45-6789', 'ssn', '***-**-6789'],
    ['+1-555-0100', 'phone', '+*-***-**00'],
    ['GB82 WEST 1234 5698 7654 32', 'iban', 'GB** **** **** **** **54 32'],
    ['192.168.1.20', 'ip', '192.*.*.*'],
    ['Alice Smith', 'person-name', 'A**** S****'],
    ['1 Main St', 'street-address', '* **** St'],
    ['1980-05-17', 'date-of-birth', '1980-**-**'],
    ['17/05/1980', 'date-of-birth', '**/**/1980'],
    ['hunter2', 'secret', '****'],
    ['AB123456C', 'national-id', '*******6C'],
    ['abc', null, '***'],
  ])('%j (%s) is %j', (value, kind, expected) => {
    expect(maskValue(value, 'partial', text(kind))).toBe(expected);
  });

  it('classifies the value itself when the context does not say what it is', () => {
    expect(maskValue('alice@example.com', 'partial', { key })).toBe('a***@example.com');
  });

  it.each<[string, number, PiiKind | null, string]>([
    ['4111111111111111', PG_TYPE.int8, 'card', '1111'],
    ['123456789', PG_TYPE.int4, null, '89'],
    ['-1200.75', PG_TYPE.numeric, null, '0'],
    ['123e4567-e89b-12d3-a456-426614174000', PG_TYPE.uuid, null, '00000000-0000-0000-0000-000000004000'],
    ['192.168.1.20', PG_TYPE.inet, 'ip', '192.0.0.0'],
    ['2001:db8::1/64', PG_TYPE.inet, 'ip', '2001:0:0:0:0:0:0:0/64'],
    ['1980-05-17', PG_TYPE.date, 'date-of-birth', '1980-01-01'],
    ['Alice     ', PG_TYPE.bpchar, 'person-name', 'A****     '],
    [
      '{"email": "alice@example.com", "n": 4711}',
      PG_TYPE.json,
      null,
      '{"email": "a***@example.com", "n": 11}',
    ],
  ])('%j of type %i (%s) is %j', (value, typeOid, kind, expected) => {
    expect(maskValue(value, 'partial', text(kind, { typeOid }))).toBe(expected);
  });
});

describe('hash', () => {
  it('is HMAC-SHA-256 of the value under the key derived for hashing, as hex', () => {
    const derived = createHmac('sha256', SECRET).update(HASH_LABEL).digest();
    const expected = createHmac('sha256', derived).update('alice@example.com').digest('hex');
    expect(maskValue('alice@example.com', 'hash', text('email'))).toBe(expected);
    expect(maskValue('alice@example.com', 'hash', text('email', { hashLength: 16 }))).toBe(
      expected.slice(0, 16),
    );
  });

  it('depends on the key and is the same for the same value', () => {
    const a = maskValue('123-45-6789', 'hash', text('ssn'));
    expect(maskValue('123-45-6789', 'hash', text('ssn'))).toBe(a);
    expect(maskValue('123-45-6789', 'hash', { key: otherKey, kind: 'ssn' })).not.toBe(a);
    expect(maskValue('123-45-6788', 'hash', text('ssn'))).not.toBe(a);
  });

  it('gives values of the column type where hex does not fit', () => {
    expect(maskValue('12345', 'hash', text(null, { typeOid: PG_TYPE.int4 }))).toMatch(/^[1-9][0-9]{4}$/);
    expect(
      maskValue('123e4567-e89b-12d3-a456-426614174000', 'hash', text(null, { typeOid: PG_TYPE.uuid })),
    ).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(maskValue('1980-05-17', 'hash', text(null, { typeOid: PG_TYPE.date }))).toMatch(
      /^(19|20)\d\d-\d\d-\d\d$/,
    );
    expect(maskValue('Alice     ', 'hash', text(null, { typeOid: PG_TYPE.bpchar }))).toMatch(
      /^[0-9a-f]{10}$/,
    );
    expect(maskValue('Alice', 'hash', text(null, { typeOid: PG_TYPE.varchar, typmod: 8 + 4 }))).toMatch(
      /^[0-9a-f]{8}$/,
    );
    expect(maskValue('\\x616c696365', 'hash', text(null, { typeOid: PG_TYPE.bytea }))).toMatch(
      /^\\x[0-9a-f]{64}$/,
    );
  });
});

describe('tokenize', () => {
  it('is deterministic under one key and differs under another', () => {
    for (const [value, kind] of RED_TEAM) {
      const token = maskValue(value, 'tokenize', text(kind));
      expect(maskValue(value, 'tokenize', text(kind))).toBe(token);
      expect(maskValue(value, 'tokenize', text(null))).toBe(token); // the kind does not change a token
      expect(maskValue(value, 'tokenize', { key: otherKey, kind })).not.toBe(token);
    }
  });

  it('keeps the layout: length, classes of characters, separators', () => {
    for (const value of [
      ...RED_TEAM.map(([v]) => v),
      'GB82 WEST 1234 5698 7654 32',
      '4111-1111-1111-1111',
      'Mixed Case 123 / with_punctuation!',
    ]) {
      const token = maskValue(value, 'tokenize', text(null))!;
      expect(token).toHaveLength(value.length);
      expect(layout(token)).toBe(layout(value));
      expect(token).not.toBe(value);
    }
  });

  it('gives emails at one domain one tokenized domain and keeps the top-level domain', () => {
    const a = maskValue('alice@example.com', 'tokenize', text('email'))!;
    const b = maskValue('bob@example.com', 'tokenize', text('email'))!;
    const c = maskValue('alice@example.org', 'tokenize', text('email'))!;
    expect(a).toMatch(/^[a-z]{5}@[a-z]{7}\.com$/);
    expect(a.split('@')[1]).toBe(b.split('@')[1]);
    expect(a.split('@')[0]).not.toBe(c.split('@')[0]);
    expect(a.split('@')[1]).not.toBe('example.com');
  });

  it('never gives a card number a Luhn-valid token', () => {
    let checked = 0;
    for (let n = 0; checked < 2000; n++) {
      const candidate = `4${String(n * 7_919_113 + 123_456_789).padStart(15, '0')}`.slice(0, 16);
      if (!luhnValid(candidate, 0, 16)) continue;
      checked++;
      const token = maskValue(candidate, 'tokenize', text('card'))!;
      expect(token).toMatch(/^[0-9]{16}$/);
      expect(luhnValid(token, 0, 16), `${candidate} → ${token}`).toBe(false);
      const asNumber = maskValue(candidate, 'tokenize', text('card', { typeOid: PG_TYPE.int8 }))!;
      expect(luhnValid(asNumber, 0, asNumber.length)).toBe(false);
    }
  });

  it('keeps numbers in their type: digit counts, sign, range, no leading zero', () => {
    const ranges: [number, bigint, bigint][] = [
      [PG_TYPE.int2, -32768n, 32767n],
      [PG_TYPE.int4, -2147483648n, 2147483647n],
      [PG_TYPE.int8, -9223372036854775808n, 9223372036854775807n],
    ];
    for (const [typeOid, min, max] of ranges) {
      for (const value of [String(max), String(min), '0', '7', '-45', '99999'].filter(
        (v) => BigInt(v) >= min && BigInt(v) <= max,
      )) {
        const token = maskValue(value, 'tokenize', text(null, { typeOid }))!;
        expect(token).toMatch(/^-?(0|[1-9][0-9]*)$/);
        expect(token.replace('-', '')).toHaveLength(value.replace('-', '').length);
        expect(token.startsWith('-')).toBe(value.startsWith('-'));
        expect(BigInt(token) >= min && BigInt(token) <= max, `${value} → ${token}`).toBe(true);
      }
    }
    expect(maskValue('-1200.75', 'tokenize', text(null, { typeOid: PG_TYPE.numeric }))).toMatch(
      /^-[1-9][0-9]{3}\.[0-9]{2}$/,
    );
    expect(maskValue('NaN', 'tokenize', text(null, { typeOid: PG_TYPE.numeric }))).toBe('NaN');
    for (const value of ['3.4028235e+38', '1.5e+20', '-0.001']) {
      const token = maskValue(value, 'tokenize', text(null, { typeOid: PG_TYPE.float4 }))!;
      expect(Number.isFinite(Math.fround(Number(token))), `${value} → ${token}`).toBe(true);
    }
  });

  it('keeps dates in their year and addresses in their family', () => {
    expect(maskValue('1980-05-17', 'tokenize', text('date-of-birth', { typeOid: PG_TYPE.date }))).toMatch(
      /^1980-\d\d-\d\d$/,
    );
    expect(maskValue('1980-05-17 13:45:00', 'tokenize', text(null, { typeOid: PG_TYPE.timestamp }))).toMatch(
      /^1980-\d\d-\d\d 00:00:00$/,
    );
    expect(maskValue('192.168.1.20', 'tokenize', text('ip', { typeOid: PG_TYPE.inet }))).toMatch(
      /^\d+\.\d+\.\d+\.\d+$/,
    );
    expect(maskValue('10.1.0.0/16', 'tokenize', text('ip', { typeOid: PG_TYPE.cidr }))).toMatch(
      /^\d+\.\d+\.0\.0\/16$/,
    );
    expect(maskValue('2001:db8::1', 'tokenize', text('ip', { typeOid: PG_TYPE.inet }))).toMatch(
      /^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/,
    );
    expect(maskValue('\\x616c696365', 'tokenize', text(null, { typeOid: PG_TYPE.bytea }))).toMatch(
      /^\\x[0-9a-f]{10}$/,
    );
  });

  it('tokenizes JSON leaves and array elements, not keys or structure', () => {
    const json = maskValue(
      '{"email": "alice@example.com", "n": [12, "x"]}',
      'tokenize',
      text(null, { typeOid: PG_TYPE.jsonb }),
    )!;
    expect(JSON.parse(json)).toEqual({
      email: expect.stringMatching(/^[a-z]{5}@[a-z]{7}\.com$/),
      n: [expect.any(Number), expect.stringMatching(/^[a-z]$/)],
    });
    const array = maskValue(
      '{alice@example.com,NULL,"Alice Smith"}',
      'tokenize',
      text(null, { typeOid: 1009 }),
    )!;
    expect(array).toMatch(/^\{[a-z]{5}@[a-z]{7}\.com,NULL,"[A-Z][a-z]{4} [A-Z][a-z]{4}"\}$/);
  });
});

describe('createMaskingKey', () => {
  it('refuses secrets shorter than 16 bytes', () => {
    expect(() => createMaskingKey(Buffer.alloc(15))).toThrow(RangeError);
  });
});

describe('maskOutput', () => {
  it('says what each method gives per type', () => {
    expect(maskOutput('nullify', 'text').produces).toBe('null');
    expect(maskOutput('tokenize', 'character varying')).toMatchObject({
      produces: 'value',
      joinable: true,
      keepsLength: true,
    });
    expect(maskOutput('redact', PG_TYPE.int4)).toMatchObject({ produces: 'value', joinable: false });
    expect(maskOutput('redact', 'boolean').produces).toBe('null');
    expect(maskOutput('hash', 'text[]')).toEqual(maskOutput('hash', 'text'));
    expect(maskOutput('hash', 1007)).toEqual(maskOutput('hash', 'int4'));
    expect(maskOutput('partial', 'my_enum').description).toContain('NULL in binary format');
    expect(maskOutput('redact', 'interval').produces).toBe('null');
  });
});
