import { describe, expect, it } from 'vitest';
import { findSensitive } from './find-sensitive.ts';
import type { PiiKind } from './pii-kind.ts';

/** The PII of the red-team schema (/work/shared/redteam/schema-postgres.sql), by column. */
const CUSTOMERS = [
  {
    id: 1,
    name: 'Alice Smith',
    email: 'alice@example.com',
    ssn: '123-45-6789',
    phone: '+1-555-0100',
    card: '4111111111111111',
    notes: 'vip',
  },
  {
    id: 2,
    name: 'Bob Jones',
    email: 'bob@example.com',
    ssn: '987-65-4321',
    phone: '+1-555-0199',
    card: '5500000000000004',
    notes: 'test',
  },
] as const;
const PII_COLUMNS = ['name', 'email', 'ssn', 'phone', 'card'] as const;
const KIND_OF: Record<(typeof PII_COLUMNS)[number], PiiKind> = {
  name: 'person-name',
  email: 'email',
  ssn: 'ssn',
  phone: 'phone',
  card: 'card',
};

function kindsIn(text: string): string[] {
  return findSensitive(text).map((f) => `${f.kind}:${text.slice(f.start, f.end)}`);
}

/** Whether some finding covers text[start..end). */
function covered(text: string, start: number, end: number): boolean {
  return findSensitive(text).some((f) => f.start <= start && f.end >= end);
}

function expectCovered(text: string, needle: string): void {
  const at = text.indexOf(needle);
  expect(at, `${JSON.stringify(needle)} in ${JSON.stringify(text)}`).toBeGreaterThanOrEqual(0);
  expect(covered(text, at, at + needle.length), `${needle} found in ${text}`).toBe(true);
}

const base64 = (s: string) => Buffer.from(s).toString('base64');
const base64url = (s: string) => Buffer.from(s).toString('base64url');
const hex = (s: string) => Buffer.from(s).toString('hex');

describe('findSensitive: single values', () => {
  it.each<[string, PiiKind]>([
    ['alice@example.com', 'email'],
    ['first.last+tag@sub.example.co.uk', 'email'],
    ['ALICE@EXAMPLE.COM', 'email'],
    ['123-45-6789', 'ssn'],
    ['123 45 6789', 'ssn'],
    ['987-65-4321', 'ssn'],
    ['+1-555-0100', 'phone'],
    ['+15550100100', 'phone'],
    ['+44 20 7946 0958', 'phone'],
    ['+1 (555) 010-0100', 'phone'],
    ['(555) 010-0100', 'phone'],
    ['555-010-0100', 'phone'],
    ['1-800-555-0199', 'phone'],
    ['020 7946 0958', 'phone'],
    ['07700 900123', 'phone'],
    ['01 23 45 67 89', 'phone'],
    ['4111111111111111', 'card'],
    ['5500000000000004', 'card'],
    ['4111 1111 1111 1111', 'card'],
    ['4111-1111-1111-1111', 'card'],
    ['378282246310005', 'card'],
    ['GB82 WEST 1234 5698 7654 32', 'iban'],
    ['DE89370400440532013000', 'iban'],
    ['AB123456C', 'national-id'],
    ['AB 12 34 56 C', 'national-id'],
    ['12345678Z', 'national-id'],
    ['756.1234.5678.97', 'national-id'],
    ['192.168.1.20', 'ip'],
    ['10.0.0.1', 'ip'],
    ['2001:db8::1', 'ip'],
    ['fe80::1ff:fe23:4567:890a', 'ip'],
    ['Alice Smith', 'person-name'],
    ['ALICE SMITH', 'person-name'],
    ['Mary Ann Smith', 'person-name'],
    ["Patrick O'Brien", 'person-name'],
    ['José García', 'person-name'],
    ['1 Main St', 'street-address'],
    ['2 Oak Ave', 'street-address'],
    ['1600 Pennsylvania Avenue', 'street-address'],
    ['221B Baker Street', 'street-address'],
    ['12 Elm St., Apt 4', 'street-address'],
    ['Hauptstraße 5', 'street-address'],
    ['12 rue de Rivoli', 'street-address'],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl', 'secret'],
    ['AKIAIOSFODNN7EXAMPLE', 'secret'],
    ['ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'secret'],
    ['github_pat_11ABCDEFG0123456789_abcdefghijklmnop', 'secret'],
    ['xoxb-1234567890-abcdefghij', 'secret'],
    ['sk_live_51H8xYzABCdefGHIjkl0123456789', 'secret'],
    ['sk-proj-abcdefghijklmnopqrstuvwxyz012345', 'secret'],
    ['AIzaSyA1234567890abcdefghijklmnopqrstuv', 'secret'],
    ['myapp_Xk29fLq8ZpR3mN7vB2cT5wY', 'secret'],
    ['$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', 'secret'],
    ['$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG', 'secret'],
    ['$6$rounds=5000$saltsalt$Jhd9zM2v1hZ5W0bq', 'secret'],
    ['SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVkS2V5:c2VydmVyS2V5', 'secret'],
    ['md5e10adc3949ba59abbe56e057f20f883e', 'secret'],
    ['-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----', 'secret'],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk', 'secret'],
  ])('%j is %s', (value, kind) => {
    const findings = findSensitive(value);
    expect(findings.map((f) => f.kind)).toEqual([kind]);
    expect(findings[0]!.start).toBe(0);
    expect(findings[0]!.end).toBe(value.length);
  });
});

describe('findSensitive: near misses and ordinary data', () => {
  it.each([
    '4111111111111112', // Luhn-invalid 16 digits
    '1234567812345670', // Luhn-valid, unknown issuer
    '1000000000000000000001', // longer than any card, and no card at either end
    '100234',
    '98765432',
    '123456789', // nine bare digits: an SSN only under a hint
    '20240115',
    '2024-01-15',
    '2024-01-15 10:30:00+00',
    '2024-01-15T10:30:00.123Z',
    '15/01/2024',
    '10:30:00',
    '10.5',
    '20',
    '$1,234.56',
    '19.99 EUR',
    '-42.001',
    '1.2.3',
    '10.0.19045',
    'v1.2.3.4',
    'version 2.10.3',
    '127.0.0.1',
    '0.0.0.0',
    '::1',
    '00:1A:2B:3C:4D:5E',
    '3f2b8c1e-9a7d-4e5f-8b6a-1c2d3e4f5a6b',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'd41d8cd98f00b204e9800998ecf8427e',
    'vip',
    'test',
    'Widget Pro',
    'New York',
    'Main Street',
    'May Day',
    'Grace Period',
    'The quick brown fox jumps over the lazy dog',
    'order 12345 shipped',
    'SELECT 1::bigint',
    'user_account_settings_table_name',
    'state-of-the-art',
    'ISBN 978-3-16-148410-0',
    'AB123456E',
    'GB82WEST12345698765433',
    'Password reset required',
    '{1,2,3}',
    '(1,1,10.5,20)',
    'https://example.com/path?page=2',
  ])('%j holds nothing sensitive', (text) => {
    expect(kindsIn(text)).toEqual([]);
  });
});

describe('findSensitive: the red-team PII inside longer text', () => {
  const row = CUSTOMERS[0];
  const wholeRow = (c: (typeof CUSTOMERS)[number]) =>
    `(${c.id},"${c.name}",${c.email},${c.ssn},${c.phone},${c.card},${c.notes})`;
  const json = (c: (typeof CUSTOMERS)[number], space: string) =>
    `{"id":${space}${c.id},${space}"name":${space}"${c.name}",${space}"email":${space}"${c.email}",${space}"ssn":${space}"${c.ssn}",${space}"phone":${space}"${c.phone}",${space}"card":${space}"${c.card}",${space}"notes":${space}"${c.notes}"}`;
  const encodings: [string, (c: (typeof CUSTOMERS)[number]) => string][] = [
    ['whole-row text (c::text)', wholeRow],
    ['row_to_json', (c) => json(c, '')],
    ['to_jsonb', (c) => json(c, ' ')],
    ['CSV line', (c) => `${c.id},${c.name},${c.email},${c.ssn},${c.phone},${c.card},${c.notes}`],
    ['format %s|%s', (c) => `${c.name}|${c.card}|${c.email}|${c.ssn}|${c.phone}`],
    ['concatenation without separators', (c) => `${c.email}${c.ssn}`],
    ['array_agg text', () => `{${CUSTOMERS.map((c) => c.email).join(',')}}`],
    ['array of quoted values', () => `{"${CUSTOMERS.map((c) => c.name).join('","')}"}`],
    [
      'query_to_xml',
      (c) =>
        `<row>\n  <id>${c.id}</id>\n  <name>${c.name}</name>\n  <email>${c.email}</email>\n  <ssn>${c.ssn}</ssn>\n  <phone>${c.phone}</phone>\n  <card>${c.card}</card>\n</row>`,
    ],
    [
      'error message',
      (c) =>
        `invalid input syntax for type integer: "${c.name}" "${c.email}" "${c.ssn}" "${c.phone}" "${c.card}"`,
    ],
    [
      'failing row detail',
      (c) => `Failing row contains (${c.id}, ${c.name}, ${c.email}, ${c.ssn}, ${c.phone}, ${c.card}, vip).`,
    ],
    ['upper()', (c) => `${c.name.toUpperCase()}|${c.email.toUpperCase()}`],
    ['spaced card', (c) => c.card.replace(/(\d{4})(?=\d)/g, '$1 ')],
  ];

  for (const [encoding, render] of encodings) {
    it(`finds every value in ${encoding}`, () => {
      for (const customer of CUSTOMERS) {
        const text = render(customer);
        for (const column of PII_COLUMNS) {
          const value = customer[column];
          for (const variant of [value, value.toUpperCase(), value.replace(/(\d{4})(?=\d)/g, '$1 ')]) {
            if (text.includes(variant)) expectCovered(text, variant);
          }
        }
      }
    });
  }

  it('finds every value of every column in its own encodings', () => {
    for (const customer of CUSTOMERS) {
      for (const column of PII_COLUMNS) {
        const value = customer[column];
        // Each encoding, and the part of it that must be found.
        for (const [encoded, needle] of [
          [value, value],
          [base64(value), base64(value)],
          [base64(value).replace(/=+$/, ''), base64(value).replace(/=+$/, '')],
          [base64url(value), base64url(value)],
          [hex(value), hex(value)],
          [hex(value).toUpperCase(), hex(value).toUpperCase()],
          [`\\x${hex(value)}`, `\\x${hex(value)}`],
          [encodeURIComponent(value).replace(/[-.]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)],
          [`${column}=${value}`, value],
          [`${column}: ${value}`, value],
          [`"${column}": "${value}"`, value],
        ] as const) {
          const findings = findSensitive(encoded);
          expect(findings.length, `${column} as ${encoded}`).toBeGreaterThan(0);
          expectCovered(`[${encoded}]`, needle ?? encoded);
        }
        const kinds = findSensitive(base64(value)).map((f) => f.kind);
        expect(kinds).toEqual([KIND_OF[column]]);
      }
    }
  });

  it('finds base64 wrapped across lines as PostgreSQL encode() writes it', () => {
    const long = base64(JSON.stringify(row).repeat(2)).replace(/(.{76})/g, '$1\n');
    expect(long).toContain('\n');
    expect(findSensitive(long).some((f) => f.encoding === 'base64')).toBe(true);
  });

  it('keeps scanning a text after decoding a token inside it', () => {
    const text = `${base64('Alice Smith')} \\x${hex('alice@example.com')} alice%40example.com`;
    expect(findSensitive(text).map((f) => f.encoding)).toEqual(['base64', 'hex', 'percent']);
  });

  it('marks encoded findings with their encoding', () => {
    expect(findSensitive(base64(row.ssn))).toEqual([{ kind: 'ssn', start: 0, end: 16, encoding: 'base64' }]);
    expect(findSensitive(`\\x${hex(row.email)}`)[0]?.encoding).toBe('hex');
    expect(findSensitive('alice%40example.com')[0]?.encoding).toBe('percent');
  });

  it("reads the column names of PostgreSQL's key details", () => {
    expect(kindsIn('Key (ssn)=(123456789) already exists.')).toEqual(['ssn:123456789']);
    expect(kindsIn('Key (email, tenant)=(x@y, 7) already exists.')).toEqual(['email:x@y, 7']);
    expect(kindsIn('Key (customer_id)=(42) is not present in table "customers".')).toEqual([]);
  });

  it('uses keys as hints for values that are sensitive only by context', () => {
    expect(kindsIn('{"ssn": 123456789, "id": 123456789}')).toEqual(['ssn:123456789']);
    expect(kindsIn('{"dob": "1980-05-17", "created": "2024-01-15"}')).toEqual(['date-of-birth:1980-05-17']);
    expect(kindsIn('host=db user=app password=hunter2 port=5432')).toEqual(['secret:hunter2']);
    expect(kindsIn('Name: Zyx Qwerty, age 4')).toEqual(['person-name:Zyx Qwerty']);
    expect(kindsIn('{"name": "Widget", "last_name": "Qwerty"}')).toEqual(['person-name:Qwerty']);
    // The password also reads as the start of an email address; the merged span is a secret.
    expect(kindsIn('postgres://app:s3cr3t@db.internal/app')).toEqual(['secret:s3cr3t@db.internal']);
  });

  it('leaves the non-PII columns of the red-team rows alone', () => {
    const text = '(1,1,10.5,"1 Main St") (2,2,20,"2 Oak Ave") vip test';
    expect(kindsIn(text)).toEqual(['street-address:1 Main St', 'street-address:2 Oak Ave']);
  });

  it('finds a card glued to the end or the start of other digits', () => {
    expect(kindsIn('+1-555-01004111111111111111')).toEqual(['card:+1-555-01004111111111111111']);
    for (const text of ['41111111111111110000', '67894111111111111111']) {
      expect(findSensitive(text).map((f) => f.kind)).toEqual(['card']);
      expectCovered(text, '4111111111111111');
    }
  });

  it('returns sorted, non-overlapping findings', () => {
    const text = `${JSON.stringify(CUSTOMERS)} ${base64(row.ssn)} postgres://u:${row.email}@h/db`;
    const findings = findSensitive(text);
    for (let i = 1; i < findings.length; i++) {
      expect(findings[i]!.start).toBeGreaterThanOrEqual(findings[i - 1]!.end);
    }
  });

  it('stays linear on long blobs', () => {
    const blob = `${'a1'.repeat(200_000)}@`;
    const started = performance.now();
    findSensitive(blob);
    findSensitive(`${'0123456789abcdef'.repeat(50_000)} x@y.com`);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
