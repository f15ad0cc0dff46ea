import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REDTEAM_PII } from '../../../../test/support/redteam.ts';
import { findSensitive } from './find-sensitive.ts';
import { maskTextFreeform } from './mask-text-freeform.ts';
import { createMaskingKey } from './masking-key.ts';

/*
 * The red-team schema's PII, as PostgreSQL itself prints it through the channels of the red-team
 * classes 10-13 (expressions, encodings, whole rows, JSON, set-returning functions, errors, notices).
 * The value scanner is the second line behind lineage: it must find every value in every encoding
 * it claims, and masking the text must leave no readable or decodable copy.
 */

const SCHEMA = `masking_redteam_${process.pid}`;
const PII = REDTEAM_PII;
const server = inject('postgres');
const key = createMaskingKey(Buffer.alloc(32, 0x17));
let client: pg.Client;

/** Every form of a PII value that can be read or decoded without a key. */
function readableForms(value: string): string[] {
  return [
    value,
    value.toUpperCase(),
    value.toLowerCase(),
    Buffer.from(value).toString('base64').replace(/=+$/, ''),
    Buffer.from(value).toString('hex'),
  ];
}

/** The PII forms in text; digits are also compared without spaces, dashes and plus signs. */
function leaks(text: string): string[] {
  const digits = text.replace(/[\s+-]/g, '');
  return PII.flatMap((value) => {
    const found = readableForms(value).filter((form) => text.includes(form));
    const bare = value.replace(/[\s+-]/g, '');
    if (/^[0-9]{8,}$/.test(bare) && digits.includes(bare)) found.push(bare);
    return found;
  });
}

async function cells(sql: string): Promise<string[]> {
  const result = await client.query({ text: sql, rowMode: 'array' });
  return result.rows.flat().filter((cell): cell is string => typeof cell === 'string');
}

beforeAll(async () => {
  client = new pg.Client({
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.admin.user,
    password: server.admin.password,
  });
  await client.connect();
  await client.query(
    `DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE; CREATE SCHEMA ${SCHEMA}; SET search_path = ${SCHEMA}`,
  );
  await client.query(`
    CREATE TABLE customers(id int, name text, email text, ssn text, phone text, card text, notes text);
    CREATE TABLE orders(id int, customer_id int, amount numeric, shipped_to text);
    INSERT INTO customers VALUES
      (1,'Alice Smith','alice@example.com','123-45-6789','+1-555-0100','4111111111111111','vip'),
      (2,'Bob Jones','bob@example.com','987-65-4321','+1-555-0199','5500000000000004','test');
    INSERT INTO orders VALUES (1,1,10.5,'1 Main St'),(2,2,20,'2 Oak Ave');`);
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await client.end();
});

const COLUMNS = ['name', 'email', 'ssn', 'phone', 'card'];
const QUERIES: [string, string][] = [
  ['whole row as text', 'SELECT c::text FROM customers c'],
  ['row_to_json', 'SELECT row_to_json(c)::text FROM customers c'],
  ['to_jsonb(c.*)', 'SELECT to_jsonb(c.*)::text FROM customers c'],
  ['json_agg', 'SELECT json_agg(c)::text FROM customers c'],
  ['jsonb_each_text', 'SELECT x.key, x.value FROM customers c, LATERAL jsonb_each_text(to_jsonb(c)) AS x'],
  [
    'jsonb_array_elements',
    'SELECT jsonb_array_elements_text(jsonb_build_array(email, phone)) FROM customers',
  ],
  ['format()', "SELECT format('%s|%s', name, card) FROM customers"],
  ['concatenation', "SELECT name || ' <' || email || '> ' || ssn || phone || card FROM customers"],
  ['array_agg', `SELECT ${COLUMNS.map((c) => `array_agg(${c})::text`).join(', ')} FROM customers`],
  ['string_agg', "SELECT string_agg(name || ':' || ssn, '; ') FROM customers"],
  ['query_to_xml', "SELECT query_to_xml('SELECT * FROM customers', true, false, '')::text"],
  ['upper()', 'SELECT upper(name), upper(email) FROM customers'],
  ['spaced card', "SELECT regexp_replace(card, '(\\d{4})(?=\\d)', '\\1 ', 'g') FROM customers"],
  ['translated SSN', "SELECT translate(ssn, '-', ' ') FROM customers"],
  ...COLUMNS.flatMap((c): [string, string][] => [
    [`base64 of ${c}`, `SELECT encode(convert_to(${c}, 'UTF8'), 'base64') FROM customers`],
    [`hex of ${c}`, `SELECT encode(convert_to(${c}, 'UTF8'), 'hex') FROM customers`],
    [`bytea of ${c}`, `SELECT convert_to(${c}, 'UTF8')::text FROM customers`],
  ]),
  [
    'base64 of the whole row',
    "SELECT encode(convert_to(row_to_json(c)::text, 'UTF8'), 'base64') FROM customers c",
  ],
];

describe('the red-team PII as PostgreSQL prints it', () => {
  for (const [channel, sql] of QUERIES) {
    it(`is found and masked in ${channel}`, async () => {
      const texts = await cells(sql);
      expect(leaks(texts.join('\n')).length, 'the query shows PII in the clear or encoded').toBeGreaterThan(
        0,
      );
      for (const text of texts) {
        if (leaks(text).length === 0) continue;
        expect(findSensitive(text).length, text).toBeGreaterThan(0);
        for (const method of ['redact', 'partial', 'hash', 'tokenize'] as const) {
          const masked = maskTextFreeform(text, { method, key });
          expect(leaks(masked), `${method}: ${text} → ${masked}`).toEqual([]);
        }
      }
    });
  }

  async function errorOf(sql: string): Promise<pg.DatabaseError> {
    const error = await client.query(sql).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(pg.DatabaseError);
    return error as pg.DatabaseError;
  }

  it('is found and masked in error messages and details', async () => {
    const texts: string[] = [];
    for (const column of COLUMNS) {
      texts.push((await errorOf(`SELECT ${column}::int FROM customers WHERE id = 1`)).message);
    }
    await client.query('CREATE UNIQUE INDEX customers_email ON customers(email)');
    const duplicate = await errorOf(
      "INSERT INTO customers VALUES (3,'Carol','alice@example.com','000-00-0000','x','x','x')",
    );
    texts.push(duplicate.detail ?? '');
    await client.query(
      'ALTER TABLE customers ADD CONSTRAINT short_notes CHECK (length(notes) < 2) NOT VALID',
    );
    const failing = await errorOf('UPDATE customers SET notes = notes WHERE id = 2');
    texts.push(failing.detail ?? '');
    await client.query('ALTER TABLE customers DROP CONSTRAINT short_notes; DROP INDEX customers_email');
    expect(texts.join('\n')).toContain('Key (email)=(alice@example.com)');
    expect(texts.join('\n')).toContain('Failing row contains (2, Bob Jones');
    for (const text of texts) {
      expect(leaks(text).length, text).toBeGreaterThan(0);
      expect(leaks(maskTextFreeform(text)), text).toEqual([]);
    }
  });

  it('is found and masked in notices', async () => {
    const notices: string[] = [];
    const listener = (notice: { message?: string }) => notices.push(notice.message ?? '');
    client.on('notice', listener);
    await client.query(
      "DO $$ BEGIN RAISE NOTICE 'row: %', (SELECT c::text FROM customers c WHERE id = 1); END $$",
    );
    client.off('notice', listener);
    expect(notices).toHaveLength(1);
    expect(leaks(notices[0]!).length).toBeGreaterThan(0);
    expect(leaks(maskTextFreeform(notices[0]!))).toEqual([]);
  });

  it('leaves the non-PII columns as they are', async () => {
    for (const text of await cells(
      'SELECT c.id::text, c.notes, o.amount::text, o.id::text FROM customers c JOIN orders o ON o.customer_id = c.id',
    )) {
      expect(findSensitive(text), text).toEqual([]);
      expect(maskTextFreeform(text)).toBe(text);
    }
    const orders = await cells('SELECT o::text FROM orders o');
    expect(orders.map((text) => maskTextFreeform(text))).toEqual(['(1,1,10.5,"****")', '(2,2,20,"****")']);
  });
});
