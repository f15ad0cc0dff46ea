import { beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { outputLineage } from '../../sql/lineage/output-lineage.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { statementShape } from '../../sql/statement-shape.ts';
import { withTraced } from '../gates/statement-touched.ts';
import { clearTouch } from './traced-touch.ts';

const catalog = createCatalog({
  tables: [
    { schema: 'public', name: 'customers', columns: ['id', 'plan', 'ssn'].map((name) => ({ name })) },
    { schema: 'public', name: 'visits', columns: ['id'].map((name) => ({ name })) },
  ],
  views: [
    { schema: 'public', name: 'ids', columns: ['id', 'ssn'], definition: 'SELECT id, ssn FROM customers' },
  ],
});

beforeAll(loadSqlParser);

/** The record's columns for an identity that sees clear values. */
function columnsOf(sql: string): Readonly<Record<string, string>> | undefined {
  return clearTouch(outputLineage(sql, catalog).statements[0]!).columns;
}

describe('clearTouch', () => {
  it.each([
    'SELECT ssn FROM customers',
    'SELECT c.ssn AS s FROM customers c JOIN visits v ON v.id = c.id',
    'SELECT s FROM (SELECT ssn AS s FROM customers) q',
    'WITH c AS (SELECT ssn FROM customers) SELECT * FROM c',
    'SELECT * FROM customers',
    'SELECT ssn FROM ids',
    "SELECT upper(ssn) || '-' FROM customers",
    'SELECT plan FROM customers UNION SELECT ssn FROM customers',
  ])('names customers.ssn clear: %s', (sql) => {
    expect(columnsOf(sql)).toMatchObject({ 'public.customers.ssn': 'clear' });
  });

  it('marks the tables read unknown where the output cannot be tied to columns, never clear', () => {
    // An unknown function of a row: lineage cannot tell which of its columns it returns.
    const columns = columnsOf('SELECT some_function(c) FROM customers c JOIN visits USING (id)');
    expect(columns?.['public.customers.*']).toBe('unknown');
    expect(columns?.['public.visits.*']).toBe('unknown');
  });

  it('names no columns for a statement without output', () => {
    expect(
      clearTouch(outputLineage("UPDATE customers SET plan = 'x'", catalog).statements[0]!),
    ).toMatchObject({
      tablesWritten: ['public.customers'],
      columns: undefined,
    });
  });

  it('is kept per lineage, which texts of one shape share', () => {
    const [a, b] = ['SELECT ssn FROM customers WHERE id = 1', 'SELECT ssn FROM customers WHERE id = 2'].map(
      (sql) => outputLineage(sql, catalog, { shape: statementShape(sql) }).statements[0]!,
    );
    expect(a).toBe(b);
    expect(clearTouch(a!)).toBe(clearTouch(b!));
  });
});

describe('withTraced', () => {
  it('records the tables the analysis named with unknown columns when lineage could not read the text', () => {
    expect(withTraced([{ tablesRead: ['customers'] }, {}], undefined)).toEqual([
      { tablesRead: ['customers'], columns: { 'customers.*': 'unknown' } },
      {},
    ]);
  });
});
