import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement } from '../../sql/analyze/analyze-statement.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { statementTouched, type TracedTouch, tablesTouched } from './statement-touched.ts';

beforeAll(async () => {
  await loadSqlParser();
});

describe('tablesTouched', () => {
  it('names per top-level statement the tables it and its nested statements read and write', () => {
    const facts = analyzeStatement(
      'SELECT name FROM customers; WITH gone AS (DELETE FROM sales.orders RETURNING id) INSERT INTO archive SELECT id FROM gone; SELECT 1',
    );
    expect(tablesTouched(facts)).toEqual([
      { tablesRead: ['customers'] },
      { tablesWritten: ['archive', 'sales.orders'] },
      {},
    ]);
  });

  it('is made once per analysis, which the shape cache shares', () => {
    const facts = analyzeStatement('SELECT * FROM public.customers');
    expect(tablesTouched(facts)).toBe(tablesTouched(facts));
  });
});

describe('statementTouched', () => {
  const traced: TracedTouch = {
    tablesRead: ['public.customers'],
    tablesWritten: ['public.audit'],
    columns: { 'public.customers.ssn': 'redact' },
  };

  it('takes the qualified tables lineage traced, and qualifies written ones it names', () => {
    expect(statementTouched({ tablesRead: ['customers'], tablesWritten: ['audit', 'logs'] }, traced)).toEqual(
      {
        tablesRead: ['public.customers'],
        tablesWritten: ['logs', 'public.audit'],
        columns: { 'public.customers.ssn': 'redact' },
      },
    );
  });

  it('keeps the analysis alone where masking traced nothing, and says nothing where nothing was analysed', () => {
    const analysed = { tablesRead: ['customers'] };
    expect(statementTouched(analysed, undefined)).toBe(analysed);
    expect(statementTouched(undefined, undefined)).toBeUndefined();
    expect(statementTouched({}, undefined)).toBeUndefined();
  });

  it('joins an analysis and a trace once, so each record serialises the same object', () => {
    const analysed = { tablesRead: ['customers'] };
    expect(statementTouched(analysed, traced)).toBe(statementTouched(analysed, traced));
  });
});
