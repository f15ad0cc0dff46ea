import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeBinary, encodeBinary } from './binary-codecs.ts';

const server = inject('postgres');
let client: pg.Client;
const RAW = { getTypeParser: () => (value: unknown) => value } as unknown as pg.CustomTypesConfig;

beforeAll(async () => {
  client = new pg.Client({
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.admin.user,
    password: server.admin.password,
  });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'");
});

afterAll(async () => {
  await client.end();
});

const VALUES: [string, string[]][] = [
  ['int2', ['0', '-32768', '32767']],
  ['int4', ['-2147483648', '2147483647', '42']],
  ['int8', ['-9223372036854775808', '9223372036854775807', '4111111111111111']],
  ['oid', ['0', '4294967295']],
  [
    'numeric',
    [
      '0',
      '0.00',
      '-0.5',
      '1',
      '10000',
      '12345.6789',
      '0.000001',
      '-1234567.0089',
      '99999999999999999999.5',
      'NaN',
    ],
  ],
  ['uuid', ['123e4567-e89b-12d3-a456-426614174000']],
  ['inet', ['192.168.1.20', '10.0.0.0/8', '2001:db8::1', '::ffff:1.2.3.4/120']],
  ['cidr', ['10.1.0.0/16', '2001:db8::/32']],
  ['date', ['2000-01-01', '1980-05-17', '1999-12-31', '0044-03-15 BC', 'infinity', '-infinity']],
  ['timestamp', ['2000-01-01 00:00:00', '1980-05-17 13:45:00.25', '1969-12-31 23:59:59.999999', 'infinity']],
  ['timestamptz', ['1980-05-17 13:45:00+00', '2024-02-29 23:00:00.5+00']],
  ['text', ['Zoë', '']],
  ['jsonb', ['{"a": [1, "b"]}']],
];

describe('binary codecs agree with PostgreSQL', () => {
  for (const [type, literals] of VALUES) {
    it(`${type}: send format to text and back`, async () => {
      for (const literal of literals) {
        const row = await client.query({
          text: `SELECT t.oid, t.typsend::text AS send, ($1::${type})::text AS text FROM pg_type t WHERE t.oid = $2::regtype`,
          values: [literal, type],
          types: RAW,
        });
        const { oid, send, text } = row.rows[0] as { oid: string; send: string; text: string };
        const bytesResult = await client.query({
          text: `SELECT ${send}($1::${type}) AS v`,
          values: [literal],
          types: RAW,
        });
        const bytes = Buffer.from((bytesResult.rows[0].v as string).slice(2), 'hex');
        const decoded = decodeBinary(Number(oid), bytes);
        if (type === 'inet' || type === 'cidr') {
          // Our IPv6 text is not compressed; PostgreSQL reads both spellings as one value.
          expect(
            await client.query({ text: `SELECT $1::${type} = $2::${type} AS same`, values: [decoded, text] }),
          ).toMatchObject({ rows: [{ same: true }] });
        } else {
          expect(decoded, `${type} ${literal}`).toBe(text);
        }
        expect(Buffer.from(encodeBinary(Number(oid), text)!).toString('hex'), `${type} ${literal}`).toBe(
          bytes.toString('hex'),
        );
      }
    });
  }

  it('floats: decoded numbers are the numbers PostgreSQL sent', async () => {
    for (const [type, literal] of [
      ['float4', '3.14'],
      ['float4', '-1.5e+20'],
      ['float8', '2.5e-300'],
      ['float8', '0.1'],
    ] as const) {
      const result = await client.query({
        text: `SELECT ${type}send($1::${type}) AS v, $1::${type}::text AS t`,
        values: [literal],
        types: RAW,
      });
      const bytes = Buffer.from((result.rows[0].v as string).slice(2), 'hex');
      const decoded = decodeBinary(type === 'float4' ? 700 : 701, bytes)!;
      expect(Number(decoded)).toBe(Number(result.rows[0].t));
      expect(Buffer.from(encodeBinary(type === 'float4' ? 700 : 701, decoded)!).equals(bytes)).toBe(true);
    }
  });
});
