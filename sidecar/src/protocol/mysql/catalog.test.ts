import { describe, expect, it } from 'vitest';
import { qualifiedName } from '../../sql/lineage/catalog.ts';
import {
  CATALOG_QUERY,
  catalogOf,
  identitySetup,
  loginQueries,
  readLoginResults,
  SESSION_SETTINGS_QUERY,
  type TextRows,
  withViews,
} from './catalog.ts';
import { lineageViewsOf } from './code-catalog-cache.ts';

const IDENTITY_TAG = identitySetup({ subject: 'alice' } as never, 'abc');
const CATALOG_ROWS: TextRows = [
  ['app', 'customers', 'id'],
  ['app', 'customers', 'email'],
  ['information_schema', 'COLUMNS', 'COLUMN_NAME'],
];
const SETTINGS_ROWS: TextRows = [['STRICT_TRANS_TABLES', 'utf8mb4']];

describe('loginQueries', () => {
  it('asks for the catalog only when the session masks, and always for the settings last', () => {
    expect(loginQueries(IDENTITY_TAG, true).map((q) => q.name)).toEqual(['identity', 'catalog', 'session']);
    expect(loginQueries(IDENTITY_TAG, false).map((q) => q.name)).toEqual(['identity', 'session']);
    expect(loginQueries(IDENTITY_TAG, true)[1]!.sql).toBe(CATALOG_QUERY);
    expect(loginQueries([], false)).toEqual([{ name: 'session', sql: SESSION_SETTINGS_QUERY }]);
  });
});

describe('readLoginResults', () => {
  it('reads the settings and the catalog by name, with the catalog asked for', () => {
    const queries = loginQueries(IDENTITY_TAG, true);
    const facts = readLoginResults(queries, [[], CATALOG_ROWS, SETTINGS_ROWS], 'app');
    expect(facts.sqlMode).toBe('STRICT_TRANS_TABLES');
    expect(facts.clientCharset).toBe('utf8mb4');
    expect(facts.catalog?.tables.get(qualifiedName('app', 'customers'))?.columns).toEqual([
      { name: 'id' },
      { name: 'email' },
    ]);
  });

  it('has no catalog when none was asked for, and reads the settings from their own result', () => {
    const queries = loginQueries(IDENTITY_TAG, false);
    const facts = readLoginResults(queries, [[], SETTINGS_ROWS], 'app');
    expect(facts).toEqual({ sqlMode: 'STRICT_TRANS_TABLES', clientCharset: 'utf8mb4', catalog: undefined });
  });

  it('does not take rows of one query for another whatever the order they were sent in', () => {
    // The settings first and the catalog after: position-based reading would swap them.
    const queries = [...loginQueries(IDENTITY_TAG, true)].reverse();
    const facts = readLoginResults(queries, [SETTINGS_ROWS, CATALOG_ROWS, []], 'app');
    expect(facts.sqlMode).toBe('STRICT_TRANS_TABLES');
    expect([...(facts.catalog?.tables.keys() ?? [])]).toHaveLength(2);
  });

  it('gives null settings for a NULL value or an empty result', () => {
    const queries = loginQueries([], false);
    expect(readLoginResults(queries, [[[null, 'latin1']]], 'app')).toMatchObject({
      sqlMode: null,
      clientCharset: 'latin1',
    });
    expect(readLoginResults(queries, [[]], 'app')).toMatchObject({ sqlMode: null, clientCharset: null });
  });

  it('refuses results that do not match the queries one to one', () => {
    const queries = loginQueries(IDENTITY_TAG, true);
    expect(() => readLoginResults(queries, [[], SETTINGS_ROWS], 'app')).toThrow(/3 sent, 2 results/);
    expect(() => readLoginResults(queries, [[], CATALOG_ROWS, SETTINGS_ROWS, []], 'app')).toThrow();
  });
});

describe('catalogOf', () => {
  it('puts metadata relations under information_schema and the rest in the session database', () => {
    const catalog = catalogOf(CATALOG_ROWS, 'app');
    expect(catalog.searchPath).toEqual(['app']);
    expect(catalog.tables.get(qualifiedName('information_schema', 'COLUMNS'))?.columns).toEqual([
      { name: 'COLUMN_NAME' },
    ]);
  });

  it('skips rows with a NULL name', () => {
    const catalog = catalogOf(
      [
        ['app', null, 'x'],
        [null, 't', 'x'],
        ['app', 't', null],
        ['app', 't', 'y'],
      ],
      'app',
    );
    expect(catalog.tables.get(qualifiedName('app', 't'))?.columns).toEqual([{ name: 'y' }]);
    expect(catalog.tables.size).toBe(1);
  });
});

describe('identitySetup', () => {
  it('keeps any identity text inside one string literal', () => {
    for (const subject of ["o'brien", 'back\\slash', "x\\'; DROP TABLE t; --", "''", '\\'])
      expect(identitySetup({ subject } as never, 's')[0]).toMatch(
        /^SET @gatehouse_identity = _utf8mb4'(?:[^'\\]|''|\\\\)*', @gatehouse_session = _utf8mb4's'$/,
      );
  });
});

describe('lineageViewsOf', () => {
  it('joins each view to its column names, and keeps a view whose definition the account may not read', () => {
    const views = lineageViewsOf(
      [
        ['app', 'listed', 'select `app`.`t`.`a` AS `a` from `app`.`t`'],
        ['app', 'hidden', ''],
        ['app', 'nameless', null],
        [null, 'x', 'select 1'],
      ],
      [
        ['app', 'listed', 'renamed'],
        ['app', 'hidden', 'h'],
        ['app', 'other', 'o'],
      ],
    );
    expect(views).toEqual([
      {
        schema: 'app',
        name: 'listed',
        definition: 'select `app`.`t`.`a` AS `a` from `app`.`t`',
        columns: ['renamed'],
      },
      { schema: 'app', name: 'hidden', definition: '', columns: ['h'] },
      { schema: 'app', name: 'nameless', definition: '' },
    ]);
  });
});

describe('withViews', () => {
  const tables = catalogOf(CATALOG_ROWS, 'app');
  const view = { schema: 'app', name: 'v', definition: 'select 1 AS `x`' };

  it('adds the views in force, and makes a new catalog only when they change', () => {
    let views: readonly (typeof view)[] | undefined = [view];
    const catalog = withViews(tables, () => views);
    const first = catalog();
    expect(first?.views.get(qualifiedName('app', 'v'))).toEqual(view);
    expect(first?.tables).toEqual(tables.tables);
    expect(catalog()).toBe(first);
    views = [view, { ...view, name: 'w' }];
    expect(catalog()?.views.size).toBe(2);
    // Views that may be outdated: none, so that lineage takes them as unknown.
    views = undefined;
    expect(catalog()).toBe(tables);
    expect(catalog()?.views.size).toBe(0);
  });

  it('gives no catalog when the session has none', () => {
    expect(withViews(undefined, () => [view])()).toBeUndefined();
  });
});
