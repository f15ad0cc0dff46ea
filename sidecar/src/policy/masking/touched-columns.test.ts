import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { touchedSensitiveColumns } from './touched-columns.ts';

// The parser's WebAssembly may still be loading when the first test runs: wait for it.
beforeAll(loadSqlParser);

const catalog = createCatalog({
  tables: [
    { schema: 'public', name: 'customers', columns: [{ name: 'id' }, { name: 'email' }, { name: 'note' }] },
    { schema: 'crm', name: 'customers', columns: [{ name: 'id' }, { name: 'phone' }] },
    { schema: 'public', name: 'orders', columns: [{ name: 'id' }, { name: 'note' }] },
  ],
});
const masked = (_schema: string, _table: string, column: string) => column === 'email' || column === 'phone';
const touched = (sql: string) => touchedSensitiveColumns(analyzeStatement(sql), catalog, masked);

describe('touchedSensitiveColumns', () => {
  it('counts every masked column of rows a statement removes, in every schema the name may be', () => {
    expect(touched('DELETE FROM customers')).toEqual(['crm.customers.phone', 'public.customers.email']);
    expect(touched('DELETE FROM public.customers WHERE id = 1')).toEqual(['public.customers.email']);
    expect(touched('TRUNCATE crm.customers')).toEqual(['crm.customers.phone']);
    expect(touched('DROP TABLE public.customers')).toEqual(['public.customers.email']);
  });

  it('counts the columns an UPDATE names, and a whole table read without naming any', () => {
    expect(touched("UPDATE public.customers SET note = 'x' WHERE id = 1")).toEqual([]);
    expect(touched("UPDATE public.customers SET email = 'x'")).toEqual(['public.customers.email']);
    expect(touched('UPDATE orders SET note = (SELECT max(email) FROM public.customers)')).toEqual([
      'public.customers.email',
    ]);
    expect(touched('DELETE FROM orders')).toEqual([]);
  });

  it('cannot tell for a text it cannot read', () => {
    expect(touched('DELETE FROM')).toBeUndefined();
  });
});
