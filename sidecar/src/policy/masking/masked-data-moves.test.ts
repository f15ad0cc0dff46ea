import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { PURE_FUNCTIONS } from '../../sql/lineage/builtins.ts';
import { analyzeMysql } from '../../sql/mysql/analyze-mysql.ts';
import { MYSQL_PURE_FUNCTIONS } from '../../sql/mysql/builtins.ts';
import { loadMysqlParser } from '../../sql/mysql/parser.ts';
import { DEFAULT_SQL_MODE } from '../../sql/mysql/sql-mode.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { maskedDataMove, maybeMaskedAmong } from './masked-data-moves.ts';

beforeAll(async () => {
  await loadSqlParser();
  await loadMysqlParser();
});

const maybeMasked = maybeMaskedAmong(() => ['customers', 'odd.name']);
const pg = (sql: string) =>
  maskedDataMove(analyzeStatement(sql), { maybeMasked, pureFunctions: PURE_FUNCTIONS, ctasTraced: true });
const mysql = (sql: string) =>
  maskedDataMove(analyzeMysql(sql, { sqlMode: DEFAULT_SQL_MODE }), {
    maybeMasked,
    pureFunctions: MYSQL_PURE_FUNCTIONS,
    ctasTraced: false,
  });

describe('maybeMaskedAmong', () => {
  it.each([
    ['customers', true],
    ['CUSTOMERS', true],
    ['public.customers', true],
    ['"public"."customers"', true],
    ['`db`.`Customers`', true],
    ['odd.name', true],
    ['s."odd.name"', true],
    ['name', false],
    ['customers_archive', false],
    ['notes', false],
  ])('%s: %s', (relation, expected) => {
    expect(maybeMasked(relation)).toBe(expected);
  });

  it('takes every relation as masked without a catalog', () => {
    expect(maybeMaskedAmong(() => undefined)('anything')).toBe(true);
  });
});

describe('maskedDataMove (PostgreSQL)', () => {
  it.each([
    ['ALTER TABLE customers RENAME COLUMN ssn TO x', /changes customers/],
    ['ALTER TABLE public.customers RENAME TO people', /changes public\.customers/],
    ['CREATE INDEX ON customers (ssn)', /changes customers/],
    ["CREATE POLICY p ON customers USING (ssn > 'a')", /changes customers/],
    [
      'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$INSERT INTO log SELECT ssn FROM customers$$',
      /keeps in the schema/,
    ],
    [
      "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('c', ssn) FROM customers; END$$",
      /keeps in the schema/,
    ],
    ['DO $$BEGIN INSERT INTO log SELECT ssn FROM customers; END$$', /writes log/],
    [
      'CREATE VIEW v AS SELECT ssn AS x FROM customers',
      /keeps in the schema a query or code that reads customers/,
    ],
    ['CREATE MATERIALIZED VIEW v AS SELECT ssn FROM public.customers', /keeps in the schema/],
    ['CREATE RULE r AS ON INSERT TO notes DO INSTEAD SELECT ssn FROM customers', /keeps in the schema/],
    // Harmless as written, but it can be named in a default, an index or a view later.
    [
      'CREATE FUNCTION f() RETURNS bigint LANGUAGE sql AS $$SELECT count(*) FROM customers$$',
      /keeps in the schema/,
    ],
    ["COPY customers (ssn) TO '/tmp/out'", /no mask reaches/],
    ['COPY notes FROM PROGRAM \'psql -c "select ssn from customers"\'', /no mask reaches/],
    ["SELECT pg_read_binary_file('base/1/1259')", /no mask reaches/],
  ])('%s is refused', (sql, reason) => {
    expect(pg(sql)).toMatch(reason);
  });

  it.each([
    'DROP TABLE customers',
    "COMMENT ON TABLE customers IS 'x'",
    'ALTER TABLE notes ADD COLUMN x int',
    'CREATE TABLE c AS SELECT id FROM customers',
    'INSERT INTO log SELECT ssn FROM customers',
    'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$INSERT INTO log SELECT body FROM notes$$',
    'SELECT * FROM customers',
    'CREATE VIEW v AS SELECT body FROM notes',
  ])('%s is left to lineage', (sql) => {
    expect(pg(sql)).toBeUndefined();
  });
});

describe('maskedDataMove (MySQL)', () => {
  it.each([
    ['RENAME TABLE notes TO n2, customers TO people', /changes customers/],
    ['ALTER TABLE customers CHANGE ssn x text', /changes customers/],
    ['CREATE INDEX i ON customers (ssn)', /changes customers/],
    ['CREATE TRIGGER t BEFORE UPDATE ON customers FOR EACH ROW SET @v = OLD.ssn', /changes customers/],
    ['CREATE TABLE c AS SELECT ssn FROM customers', /fill c from customers/],
    ['CREATE TABLE c SELECT id FROM customers', /fill c from customers/],
    [
      'CREATE TRIGGER t AFTER INSERT ON notes FOR EACH ROW INSERT INTO log SELECT ssn FROM customers',
      /keeps in the schema/,
    ],
    ['CREATE VIEW v AS SELECT ssn AS x FROM customers', /keeps in the schema/],
    [
      'CREATE OR REPLACE ALGORITHM=MERGE VIEW v AS SELECT n.body FROM notes n JOIN customers c ON c.id = n.id',
      /keeps in the schema a query or code that reads customers/,
    ],
    ['ALTER VIEW v AS SELECT id FROM customers', /keeps in the schema a query or code that reads customers/],
    ["SELECT ssn FROM customers INTO OUTFILE '/tmp/out'", /no mask reaches/],
    // A temporary table may take a base table's name, which lineage would trust for the session.
    ['CREATE TEMPORARY TABLE notes SELECT id, ssn AS body FROM customers', /fill notes from customers/],
    ['CREATE TEMPORARY TABLE IF NOT EXISTS t AS SELECT * FROM customers', /fill t from customers/],
    ["SELECT id INTO DUMPFILE '/tmp/out' FROM notes", /no mask reaches/],
    ["LOAD DATA INFILE '/var/lib/mysql/app/customers.ibd' INTO TABLE notes", /no mask reaches/],
  ])('%s is refused', (sql, reason) => {
    expect(mysql(sql)).toMatch(reason);
  });

  it.each([
    'DROP TABLE customers',
    'CREATE TABLE c AS SELECT body FROM notes',
    'CREATE INDEX i ON notes (body(10))',
    'CREATE TRIGGER t AFTER INSERT ON notes FOR EACH ROW INSERT INTO log VALUES (NEW.body)',
    'INSERT INTO log SELECT ssn FROM customers',
    'CREATE OR REPLACE VIEW v AS SELECT body FROM notes',
    'CREATE TEMPORARY TABLE t SELECT body FROM notes',
  ])('%s is left to lineage', (sql) => {
    expect(mysql(sql)).toBeUndefined();
  });
});

/**
 * Generated spellings: every way of naming the masked table (case, schema, quotes) in every template
 * of a schema change or a kept query, with comments and line breaks where the grammar allows them.
 */
describe('maskedDataMove over generated spellings', () => {
  const PG_NAMES = [
    'customers',
    'CUSTOMERS',
    'public.customers',
    '"customers"',
    '"public"."customers"',
    'Public.Customers',
  ];
  const MYSQL_NAMES = [
    'customers',
    'CUSTOMERS',
    'app.customers',
    '`customers`',
    '`app`.`customers`',
    '`App`.Customers',
  ];
  const PG_TEMPLATES = [
    'ALTER TABLE § RENAME COLUMN ssn TO x',
    'ALTER TABLE IF EXISTS ONLY § RENAME TO people',
    'ALTER TABLE § SET SCHEMA other',
    'ALTER TABLE § ADD COLUMN g text GENERATED ALWAYS AS (ssn) STORED',
    'ALTER TABLE § ALTER COLUMN body TYPE text USING ssn',
    'CREATE INDEX ON § ((length(ssn)))',
    "CREATE POLICY p ON § USING (ssn > 'a')",
    'CREATE TRIGGER t AFTER UPDATE ON § FOR EACH ROW EXECUTE FUNCTION f()',
    'CREATE VIEW v AS SELECT ssn AS x FROM §',
    'CREATE MATERIALIZED VIEW v AS SELECT 1 FROM §',
    'CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT ssn FROM § LIMIT 1$$',
    "DO $$BEGIN EXECUTE 'ALTER TABLE § RENAME COLUMN ssn TO x'; END$$",
    "COPY (SELECT ssn FROM §) TO '/tmp/out'",
  ];
  const MYSQL_TEMPLATES = [
    'ALTER TABLE § RENAME COLUMN ssn TO x',
    'ALTER TABLE § CHANGE ssn x text',
    'ALTER TABLE § MODIFY ssn int',
    'RENAME TABLE § TO people',
    'ALTER TABLE § ADD COLUMN g text AS (ssn) STORED',
    'CREATE INDEX i ON § (ssn)',
    'CREATE TRIGGER t BEFORE DELETE ON § FOR EACH ROW SET @v = OLD.ssn',
    'CREATE TABLE c AS SELECT ssn FROM §',
    'CREATE VIEW v AS SELECT ssn AS x FROM §',
    'CREATE FUNCTION f() RETURNS text READS SQL DATA RETURN (SELECT ssn FROM § LIMIT 1)',
    "SELECT ssn FROM § INTO OUTFILE '/tmp/out'",
  ];
  /** Where a comment or a line break may stand: around the table's name. */
  const around = (name: string) => [name, `/* c */ ${name}`, `${name} -- c\n`, `\n\t${name}\n`];
  const spellings = (templates: readonly string[], names: readonly string[]) =>
    templates.flatMap((template) =>
      names.flatMap((name) => around(name).map((spelled) => template.replaceAll('§', spelled))),
    );

  it('refuses every PostgreSQL spelling', () => {
    const all = spellings(PG_TEMPLATES, PG_NAMES);
    expect(all.length).toBeGreaterThan(300);
    expect(all.filter((sql) => pg(sql) === undefined)).toEqual([]);
  });

  it('refuses every MySQL spelling', () => {
    const all = spellings(MYSQL_TEMPLATES, MYSQL_NAMES);
    expect(all.length).toBeGreaterThan(250);
    expect(all.filter((sql) => mysql(sql) === undefined)).toEqual([]);
  });
});
