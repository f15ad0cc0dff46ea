import { beforeAll, describe, expect, it } from 'vitest';
import { reachCode } from '../code-reach.ts';
import { loadSqlParser } from '../normalize.ts';
import { analyzeStatement } from './analyze-statement.ts';
import { buildPgCodeCatalog } from './pg-code-catalog.ts';

beforeAll(async () => {
  await loadSqlParser();
});

const def = (schema: string, name: string, body: string, language = 'sql') =>
  `CREATE OR REPLACE FUNCTION ${schema}.${name}() RETURNS integer LANGUAGE ${language} AS $function$${body}$function$`;

/** Rows as CODE_CATALOG_SQL returns them: oid, schema, name, kind, language, volatility, definition, components. */
const CATALOG = buildPgCodeCatalog({
  routines: [
    ['870', 'pg_catalog', 'lower', 'f', 'internal', 'i', null, null],
    ['871', 'pg_catalog', 'upper', 'f', 'internal', 'i', null, null],
    ['2147', 'pg_catalog', 'count', 'a', 'internal', 'i', null, null],
    [
      '20000',
      'shadow',
      'lower',
      'f',
      'sql',
      'i',
      def('shadow', 'lower', 'DELETE FROM public.v RETURNING 1'),
      null,
    ],
    ['20001', 'public', 'ok_add', 'f', 'sql', 'i', def('public', 'ok_add', 'SELECT 1'), null],
    [
      '20002',
      'public',
      'gh_pl',
      'f',
      'plpgsql',
      's',
      def('public', 'gh_pl', 'BEGIN DELETE FROM v; RETURN 1; END', 'plpgsql'),
      null,
    ],
    ['20003', 'public', 'crypt_ish', 'f', 'c', 'i', null, null],
    ['20004', 'public', 'random_ish', 'f', 'c', 'v', null, null],
    ['20005', 'public', 'gh_agg', 'a', 'internal', 'i', null, '20002'],
    [
      '20006',
      'pg_temp_3',
      'tmp_fn',
      'f',
      'sql',
      'v',
      def('pg_temp_3', 'tmp_fn', 'UPDATE v SET x = 1 RETURNING 1'),
      null,
    ],
    ['20007', 'public', 'py', 'f', 'plpython3u', 'v', def('public', 'py', 'return 1', 'plpython3u'), null],
  ],
  triggers: [['public', 'audited', 'wipes', '20002']],
  rules: [
    [
      'public',
      'ruled',
      'also_delete',
      'CREATE RULE also_delete AS ON INSERT TO public.ruled DO ALSO DELETE FROM v;',
    ],
  ],
  views: [
    ['public', 'calls_view', ' SELECT gh_pl() AS n;'],
    ['public', 'plain_view', ' SELECT audited.id FROM audited;'],
  ],
  implicit: [['public', 'defaulted', '20002', 'f']],
  operators: [['###', '20002']],
  casts: [['gh_dom', '20002']],
  cascades: [['public', 'parent', 'public', 'audited']],
});

const judged = (sql: string) => reachCode(analyzeStatement(sql), CATALOG);
const kinds = (sql: string) => judged(sql).facts.findings.map((f) => f.kind);

describe('buildPgCodeCatalog', () => {
  it.each([
    ['SELECT count(*) FROM t', []],
    ['SELECT ok_add()', []],
    ['SELECT crypt_ish()', []],
    ['SELECT lower(x) FROM t', ['delete-without-where']],
    ['SELECT shadow.lower(x) FROM t', ['delete-without-where']],
    ['SELECT pg_catalog.upper(x) FROM t', []],
    ['SELECT gh_pl()', ['delete-without-where']],
    ['SELECT random_ish()', ['dynamic-sql']],
    ['SELECT py()', ['dynamic-sql']],
    ['SELECT gh_agg(id) FROM t', ['delete-without-where']],
    ['SELECT pg_temp.tmp_fn()', ['update-without-where']],
    ['SELECT 1 ### 2', ['delete-without-where']],
    ['INSERT INTO audited VALUES (1)', ['delete-without-where']],
    ['INSERT INTO ruled VALUES (1)', ['delete-without-where']],
    ['INSERT INTO defaulted(id) VALUES (1)', ['delete-without-where']],
    ['SELECT * FROM calls_view', ['delete-without-where']],
    ['SELECT * FROM plain_view', []],
    ['INSERT INTO plain_view VALUES (1)', ['delete-without-where']],
    ['SELECT elsewhere.ok_add()', ['dynamic-sql']],
    ['SELECT 1::gh_dom', ['delete-without-where']],
    ['DELETE FROM parent WHERE id = 1', ['delete-without-where']],
    ['SELECT CAST(1 AS public.gh_dom)', ['delete-without-where']],
    ['SELECT 1::int, upper(x)::text FROM t', []],
  ])('%s → %j', (sql, expected) => {
    expect([...new Set(kinds(sql))]).toEqual(expected);
  });

  it('reports the code a write runs: its trigger and the trigger function', () => {
    expect(judged('INSERT INTO audited VALUES (1)').code).toEqual([
      'trigger wipes on public.audited',
      'function public.gh_pl',
    ]);
  });

  it('finds fast-path targets by OID', () => {
    expect(CATALOG.byOid(870)).toMatchObject({ schema: 'pg_catalog', name: 'lower' });
    expect(CATALOG.byOid(20002)).toMatchObject({ schema: 'public', name: 'gh_pl' });
    expect(CATALOG.byOid(99999)).toBeUndefined();
  });
});
