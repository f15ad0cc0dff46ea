import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BINARY_FORMAT, createCellMasker, maskCell, TEXT_FORMAT } from './mask-cell.ts';
import { MASK_METHODS, type MaskContext, maskValue } from './mask-methods.ts';
import { createMaskingKey } from './masking-key.ts';
import { PG_TYPE } from './pg-types.ts';
import type { PiiKind } from './pii-kind.ts';

const server = inject('postgres');
const key = createMaskingKey(Buffer.alloc(32, 0x42));
let client: pg.Client;

/** Raw values: strings for text results, Buffers for binary ones. */
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

interface Sample {
  readonly type: string;
  readonly literal: string;
  readonly kind: PiiKind | null;
}

const SAMPLES: Sample[] = [
  { type: 'text', literal: 'alice@example.com', kind: 'email' },
  { type: 'text', literal: '4111 1111 1111 1111', kind: 'card' },
  { type: 'varchar(20)', literal: 'Alice Smith', kind: 'person-name' },
  { type: 'varchar(3)', literal: 'abc', kind: null },
  { type: 'char(12)', literal: '123-45-6789', kind: 'ssn' },
  { type: 'name', literal: 'Zoë Ünal', kind: 'person-name' },
  { type: 'int2', literal: '-32768', kind: null },
  { type: 'int4', literal: '2147483647', kind: null },
  { type: 'int8', literal: '4111111111111111', kind: 'card' },
  { type: 'numeric', literal: '-1234567.0089', kind: null },
  { type: 'numeric(10,2)', literal: '10.50', kind: null },
  { type: 'numeric', literal: '0.000001', kind: null },
  { type: 'numeric', literal: 'NaN', kind: null },
  { type: 'float4', literal: '3.14', kind: null },
  { type: 'float8', literal: '-2.5e+300', kind: null },
  { type: 'uuid', literal: '123e4567-e89b-12d3-a456-426614174000', kind: null },
  { type: 'inet', literal: '192.168.1.20', kind: 'ip' },
  { type: 'inet', literal: '2001:db8::1/64', kind: 'ip' },
  { type: 'cidr', literal: '10.1.0.0/16', kind: 'ip' },
  { type: 'date', literal: '1980-05-17', kind: 'date-of-birth' },
  { type: 'date', literal: 'infinity', kind: 'date-of-birth' },
  { type: 'timestamp', literal: '1980-05-17 13:45:00.25', kind: 'date-of-birth' },
  { type: 'timestamptz', literal: '1980-05-17 13:45:00+02', kind: 'date-of-birth' },
  { type: 'json', literal: '{"name": "Alice Smith", "ssn": "123-45-6789", "n": [1, -2.5e3]}', kind: null },
  { type: 'jsonb', literal: '{"email": "alice@example.com", "card": 4111111111111111}', kind: null },
  { type: 'bytea', literal: '\\x313233', kind: null },
  { type: 'bool', literal: 't', kind: null },
  { type: 'text[]', literal: '{alice@example.com,NULL,"Alice Smith"}', kind: 'email' },
  { type: 'int4[]', literal: '{{1,22},{333,NULL}}', kind: null },
  { type: 'varchar[]', literal: '{"a,b","{c}"}', kind: null },
  { type: 'varchar(2)[]', literal: '{ab,cd}', kind: null },
  { type: 'uuid[]', literal: '{123e4567-e89b-12d3-a456-426614174000}', kind: null },
  { type: 'date[]', literal: '{1980-05-17,2001-02-03}', kind: 'date-of-birth' },
  { type: 'numeric[]', literal: '{1.5,-20}', kind: null },
];

interface Original {
  readonly oid: number;
  readonly typmod: number;
  readonly text: string;
  readonly binary: Buffer;
}

/**
 * A sample as the server sends it in each format. node-postgres decodes binary results as UTF-8
 * before handing them over, so the binary form comes from the type's send function instead.
 */
async function original(sample: Sample): Promise<Original> {
  const asText = await client.query({
    text: `SELECT $1::${sample.type} AS v`,
    values: [sample.literal],
    types: RAW,
  });
  const field = asText.fields[0]!;
  return {
    oid: field.dataTypeID,
    typmod: field.dataTypeModifier,
    text: asText.rows[0].v as string,
    binary: await sent(field.dataTypeID, `$1::${sample.type}`, [sample.literal]),
  };
}

async function sent(oid: number, expression: string, values: unknown[]): Promise<Buffer> {
  const send = await client.query({
    text: 'SELECT typsend::text AS f FROM pg_type WHERE oid = $1',
    values: [oid],
  });
  const result = await client.query({
    text: `SELECT ${send.rows[0].f}(${expression}) AS v`,
    values,
    types: RAW,
  });
  return Buffer.from((result.rows[0].v as string).slice(2), 'hex');
}

/** PostgreSQL's own text for a value sent as text or as binary (through the type's recv function). */
async function asServerText(type: string, value: string | Buffer): Promise<string> {
  const result = await client.query({ text: `SELECT ($1::${type})::text AS v`, values: [value], types: RAW });
  return result.rows[0].v as string;
}

const FLOAT_TYPES = new Set<number>([PG_TYPE.float4, PG_TYPE.float8]);

describe('cell masking keeps values valid for their type, in text and in binary format', () => {
  for (const sample of SAMPLES) {
    it(`${sample.type} ${sample.literal}`, async () => {
      const cell = await original(sample);
      for (const method of MASK_METHODS) {
        const context: MaskContext = { key, kind: sample.kind, typeOid: cell.oid, typmod: cell.typmod };
        const masker = createCellMasker(method, context);
        const label = `${method}(${sample.type} ${sample.literal})`;

        const text = maskValue(cell.text, method, context);
        const textCell = masker(Buffer.from(cell.text), TEXT_FORMAT);
        expect(textCell === null ? null : Buffer.from(textCell).toString(), label).toBe(text);
        const serverText = text === null ? null : await asServerText(sample.type, text);

        const binary = masker(cell.binary, BINARY_FORMAT);
        if (sample.type === 'bool' || method === 'nullify') {
          expect(text, label).toBeNull();
          expect(binary, label).toBeNull();
          continue;
        }
        expect(binary, `${label} in binary`).not.toBeNull();
        const serverBinary = await asServerText(sample.type, Buffer.from(binary!));
        // Floats print differently in JavaScript and PostgreSQL, so their tokens may differ by path.
        if (!FLOAT_TYPES.has(cell.oid) && !sample.type.startsWith('float')) {
          expect(serverBinary, `${label}: binary and text paths agree`).toBe(serverText);
        }
        if (
          method !== 'partial' &&
          sample.literal.length > 3 &&
          cell.text !== 'NaN' &&
          cell.text !== 'infinity'
        ) {
          expect(serverText, label).not.toBe(cell.text);
        }
      }
    });
  }

  it('redacts text-like columns without decoding the cell, to shared bytes', () => {
    const context: MaskContext = { key, kind: 'email', typeOid: PG_TYPE.text };
    const masker = createCellMasker('redact', context);
    const a = masker(Buffer.from('alice@example.com'), TEXT_FORMAT);
    expect(Buffer.from(a!).toString()).toBe('****');
    expect(masker(Buffer.from('bob@example.com'), TEXT_FORMAT)).toBe(a);
    const sameLength = createCellMasker('redact', { ...context, redactStyle: 'same-length' });
    expect(Buffer.from(sameLength(Buffer.from('Zoë'), TEXT_FORMAT)!).toString()).toBe('***');
  });

  it('masks binary bytea as bytes', () => {
    const bytes = Buffer.from('123-45-6789');
    const context: MaskContext = { key, kind: 'ssn', typeOid: PG_TYPE.bytea };
    expect(maskCell(bytes, BINARY_FORMAT, 'redact', context)).toHaveLength(0);
    expect(maskCell(bytes, BINARY_FORMAT, 'hash', context)).toHaveLength(32);
    const token = maskCell(bytes, BINARY_FORMAT, 'tokenize', context)!;
    expect(token).toHaveLength(bytes.length);
    expect(Buffer.from(token).equals(bytes)).toBe(false);
    expect(maskCell(bytes, BINARY_FORMAT, 'tokenize', context)).toEqual(token);
  });

  it('gives NULL for binary cells of types it has no codec for', async () => {
    const interval = await sent(PG_TYPE.interval, "'1 day'::interval", []);
    const context: MaskContext = { key, kind: null, typeOid: PG_TYPE.interval };
    expect(maskCell(interval, BINARY_FORMAT, 'redact', context)).toBeNull();
    expect(
      maskCell(Buffer.from([1, 2, 3]), BINARY_FORMAT, 'tokenize', { key, kind: null, typeOid: 16385 }),
    ).toBeNull();
  });
});
