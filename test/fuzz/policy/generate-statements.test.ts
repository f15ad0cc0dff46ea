import { createHash } from 'node:crypto';
import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../../../sidecar/src/sql/normalize.ts';
import { parametrize } from './fuzz-policy-documents.ts';
import {
  type CatalogFunction,
  Generator,
  MYSQL_DIALECT,
  MYSQL_FUNCTIONS,
  POSTGRES_DIALECT,
  pgCatalogFunctions,
  Random,
} from './generate-statements.ts';
import { LeakOracle, receivedText } from './leak-oracle.ts';
import { minimizeStatement, shrinkSteps } from './minimize-statement.ts';
import { render, size } from './statement-tree.ts';

/** A few pg_proc rows as the catalog query returns them, including ones the generator must skip. */
const PG_FUNCTIONS: CatalogFunction[] = pgCatalogFunctions([
  { name: 'upper', args: ['text'], returns: 'text' },
  { name: 'substr', args: ['text', 'integer', 'integer'], returns: 'text' },
  { name: 'length', args: ['text'], returns: 'integer' },
  { name: 'md5', args: ['bytea'], returns: 'text' },
  { name: 'to_char', args: ['numeric', 'text'], returns: 'text' },
  { name: 'textin', args: ['cstring'], returns: 'text' },
  { name: 'pg_size_pretty', args: ['bigint'], returns: 'text' },
  { name: 'upper', args: ['anyrange'], returns: 'anyelement' },
]);

const statements = (dialect: typeof POSTGRES_DIALECT, functions: readonly CatalogFunction[], n: number) =>
  Array.from({ length: n }, (_, seed) => new Generator(dialect, functions, new Random(seed)).statement());

beforeAll(async () => {
  await loadSqlParser();
});

describe('generate-statements', () => {
  it('keeps only catalog functions of known types, and no internal ones', () => {
    expect(PG_FUNCTIONS.map((f) => f.name)).toEqual(['upper', 'substr', 'length', 'md5', 'to_char']);
  });

  it('gives the same statements for the same seed, and others for another', () => {
    const a = statements(POSTGRES_DIALECT, PG_FUNCTIONS, 50).map((s) => s.sql);
    const b = statements(POSTGRES_DIALECT, PG_FUNCTIONS, 50).map((s) => s.sql);
    expect(a).toEqual(b);
    const other = new Generator(POSTGRES_DIALECT, PG_FUNCTIONS, new Random(1_000_001)).statement().sql;
    expect(a).not.toContain(other);
  });

  it('writes PostgreSQL that PostgreSQL parses', () => {
    const unparsed = statements(POSTGRES_DIALECT, PG_FUNCTIONS, 400).filter((s) => {
      try {
        parseSync(s.sql);
        return false;
      } catch {
        return true;
      }
    });
    expect(unparsed.map((s) => s.sql)).toEqual([]);
  });

  it('writes MariaDB without PostgreSQL spellings', () => {
    for (const { sql } of statements(MYSQL_DIALECT, MYSQL_FUNCTIONS, 400)) {
      expect(sql).not.toMatch(/::|\|\||RETURNING|MERGE|ILIKE|jsonb/);
    }
  });

  it.each([
    [
      'postgres',
      POSTGRES_DIALECT,
      PG_FUNCTIONS,
      ['MERGE INTO', 'RETURNING', 'ROW(', 'to_jsonb(', 'pg_notify('],
    ],
    [
      'mysql',
      MYSQL_DIALECT,
      MYSQL_FUNCTIONS,
      ['REPLACE INTO', 'ON DUPLICATE KEY UPDATE', 'GROUP_CONCAT(', 'JSON_OBJECT('],
    ],
  ] as const)('covers the grammar (%s)', (_name, dialect, functions, own) => {
    const all = statements(dialect, functions, 600)
      .map((s) => s.sql)
      .join('\n');
    const features = [
      'WITH ',
      'UNION',
      'INTERSECT',
      'EXCEPT',
      ' OVER (',
      'CASE WHEN',
      'COALESCE(',
      'CAST(',
      ' LIKE ',
      'EXISTS (',
      ' IN (SELECT',
      'GROUP BY',
      'HAVING',
      'ORDER BY',
      'DISTINCT',
      'LIMIT',
      ' JOIN ',
      'UPDATE ',
      'DELETE FROM',
      'INSERT INTO',
      ') VALUES (',
      '(SELECT',
      ' BETWEEN ',
      ...own,
    ];
    expect(features.filter((f) => !all.includes(f))).toEqual([]);
    // Functions come from the catalog given.
    expect(functions.filter((f) => all.includes(`${f.name}(`)).length).toBeGreaterThan(functions.length / 2);
  });

  it('marks writes', () => {
    for (const s of statements(POSTGRES_DIALECT, PG_FUNCTIONS, 200))
      expect(s.write).toBe(/^(UPDATE|DELETE|INSERT|MERGE|REPLACE)/.test(s.sql));
  });
});

describe('minimize-statement', () => {
  it('shrinks to a statement no single step can shrink while the failure holds', async () => {
    const withSsn = statements(POSTGRES_DIALECT, PG_FUNCTIONS, 200).filter(
      (s) => s.sql.includes('.ssn') && size(s.tree) > 20,
    );
    expect(withSsn.length).toBeGreaterThan(10);
    for (const statement of withSsn.slice(0, 10)) {
      const fails = async (sql: string) => sql.includes('.ssn');
      const minimal = await minimizeStatement(statement.tree, fails);
      expect(render(minimal)).toContain('.ssn');
      expect(size(minimal)).toBeLessThan(size(statement.tree));
      for (const step of shrinkSteps(minimal)) expect(render(step).includes('.ssn')).toBe(false);
    }
  });

  it('stops after its budget of checks', async () => {
    const statement = statements(POSTGRES_DIALECT, PG_FUNCTIONS, 50).find((s) => size(s.tree) > 30)!;
    let checks = 0;
    await minimizeStatement(
      statement.tree,
      async () => {
        checks++;
        return false;
      },
      5,
    );
    expect(checks).toBe(5);
  });
});

describe('leak-oracle', () => {
  const secrets = [
    { column: 'customers.ssn', value: '912-34-5678' },
    { column: 'customers.ssn', value: '987-65-4321' },
    { column: 'customers.card_number', value: '4111110123456789' },
    { column: 'customers.card_number', value: '4111119876543217' },
    { column: 'customers.email', value: 'olivia.smith@example.com' },
    { column: 'customers.email', value: 'liam.jones@example.com' },
    { column: 'customers.name', value: 'Olivia Smith' },
  ];
  const oracle = new LeakOracle(secrets, ['****', '************6789', 'Enamel camp mug']);

  it.each([
    ['912-34-5678', 'clear'],
    ['OLIVIA.SMITH@EXAMPLE.COM', 'clear'],
    ['8765-43-219', 'reversed'],
    ['ssn 912345678 ok', 'digits'],
    ['x-34-56-x', '6-character piece'],
    ['912345', '6-digit piece'],
    ['110123', '6-character piece'],
    ['olivia.smi', '6-character piece'],
    [Buffer.from('912-34-5678').toString('base64'), 'base64'],
    [Buffer.from('Olivia Smith').toString('hex'), 'hex'],
    [createHash('md5').update('liam.jones@example.com').digest('hex'), 'md5 hex'],
  ])('finds %s (%s)', (text, form) => {
    expect(oracle.find(['nothing', text])?.form).toBe(form);
  });

  it.each([
    ['411111', 'a prefix every card shares'],
    ['@example.com', 'a domain every email shares'],
    ['6789', 'shorter than a piece'],
    ['************6789', 'what the masked identity sees anyway'],
    ['hkim.fhbwcgs@zgmmncr.net', 'a token'],
  ])('ignores %s (%s)', (text) => {
    expect(oracle.find([text])).toBeUndefined();
  });

  it('reads strings out of driver results: cells, nested values, bytes, errors', () => {
    const error = Object.assign(new Error('bad'), { detail: 'Key (email)=(x) exists' });
    expect(
      receivedText([{ rows: [{ a: 'x', b: 3, c: Buffer.from('912-34-5678'), d: null }] }, { error }]),
    ).toEqual(['x', '3', '912-34-5678', 'Key (email)=(x) exists', 'bad']);
  });
});

describe('parametrize', () => {
  it('makes plain literals parameters and leaves typed, cast and separator literals', () => {
    const sql =
      "SELECT 'a', DATE '1980-01-01', '{}'::jsonb, GROUP_CONCAT(x SEPARATOR ','), X'2d', c.x LIKE '9%' FROM t";
    expect(parametrize(sql, (i) => `$${i}::text`)).toEqual({
      text: "SELECT $1::text, DATE '1980-01-01', '{}'::jsonb, GROUP_CONCAT(x SEPARATOR ','), X'2d', c.x LIKE $2::text FROM t",
      values: ['a', '9%'],
    });
  });
});
