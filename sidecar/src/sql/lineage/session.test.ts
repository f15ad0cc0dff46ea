import { beforeAll, describe, expect, it } from 'vitest';
import { loadSqlParser } from '../normalize.ts';
import { createCatalog } from './catalog.ts';
import { outputLineage } from './output-lineage.ts';
import { applySessionEffects, EMPTY_SESSION, preparedStatement, type SessionState } from './session.ts';
import type { Lineage, StatementLineage } from './types.ts';
import { viewFromCreateView } from './view-from-create-view.ts';

const CUSTOMERS = ['id', 'name', 'email', 'ssn', 'phone', 'card', 'notes'];
const ORDERS = ['id', 'customer_id', 'amount', 'shipped_to'];

const CATALOG = createCatalog({
  tables: [
    { schema: 'public', name: 'customers', columns: CUSTOMERS.map((name) => ({ name })) },
    { schema: 'public', name: 'orders', columns: ORDERS.map((name) => ({ name })) },
    { schema: 'archive', name: 'customers', columns: [{ name: 'id' }, { name: 'legacy_ssn' }] },
    { schema: 'pg_catalog', name: 'pg_settings', columns: [{ name: 'name' }, { name: 'setting' }] },
  ],
});

beforeAll(async () => {
  await loadSqlParser();
});

/** Runs statements one call at a time, as a proxy session would, applying each call's effects. */
function session(...texts: string[]): { state: SessionState; last: readonly StatementLineage[] } {
  let state = EMPTY_SESSION;
  let last: readonly StatementLineage[] = [];
  for (const text of texts) {
    last = outputLineage(text, CATALOG, { session: state }).statements;
    for (const statement of last) state = applySessionEffects(state, statement.effects);
  }
  return { state, last };
}

function sources(column: Lineage | undefined): string[] {
  return (column?.sources ?? []).map((source) => `${source.schema}.${source.table}.${source.column}`).sort();
}

function only(statements: readonly StatementLineage[]): StatementLineage {
  expect(statements).toHaveLength(1);
  return statements[0]!;
}

describe('views created in the session', () => {
  it('follows a temporary view created by an earlier call', () => {
    const { last } = session(
      'CREATE TEMP VIEW v AS SELECT email AS contact FROM customers',
      'SELECT contact FROM v',
    );
    expect(sources(only(last).columns![0])).toEqual(['pg_temp.v.contact', 'public.customers.email']);
  });

  it('still sees the relation a temporary view shadows, which a ROLLBACK or DROP may have brought back', () => {
    const { last } = session(
      "CREATE TEMP VIEW customers AS SELECT 1 AS id, 'n' AS name, 'e' AS email, 's' AS ssn, 'p' AS phone, 'c' AS card, 'x' AS notes",
      'ROLLBACK',
      'SELECT ssn FROM customers',
    );
    expect(sources(only(last).columns![0])).toContain('public.customers.ssn');
  });

  it('keeps every definition a view name has had, since a CREATE OR REPLACE can be rolled back', () => {
    const { last } = session(
      'CREATE TEMP VIEW w AS SELECT ssn AS x FROM customers',
      'CREATE OR REPLACE TEMP VIEW w AS SELECT notes AS x FROM customers',
      'SELECT x FROM w',
    );
    expect(sources(only(last).columns![0])).toEqual([
      'pg_temp.w.x',
      'public.customers.notes',
      'public.customers.ssn',
    ]);
  });

  it('does not answer a session with views from results cached for a fresh session', () => {
    const fresh = outputLineage('SELECT shipped_to FROM orders', CATALOG);
    expect(sources(fresh.statements[0]!.columns![0])).toEqual(['public.orders.shipped_to']);
    const { last } = session(
      'CREATE TEMP VIEW orders AS SELECT 1 AS id, 2 AS customer_id, 3 AS amount, ssn AS shipped_to FROM customers',
      'SELECT shipped_to FROM orders',
    );
    expect(sources(only(last).columns![0])).toContain('public.customers.ssn');
  });
});

describe('viewFromCreateView', () => {
  it.each([
    [
      'CREATE TEMP VIEW v AS SELECT email AS contact FROM customers',
      { schema: 'pg_temp', name: 'v', definition: 'SELECT email AS contact FROM customers' },
    ],
    [
      'create or replace view Reports.V (a, "B") with (security_barrier) as select id, ssn from customers with local check option',
      { schema: 'reports', name: 'v', columns: ['a', 'B'], definition: 'select id, ssn from customers' },
    ],
    [
      'CREATE VIEW "as" AS SELECT 1 AS "AS"',
      { schema: 'public', name: 'as', definition: 'SELECT 1 AS "AS"' },
    ],
    [
      'CREATE RECURSIVE VIEW r (n) AS VALUES (1) UNION ALL SELECT n + 1 FROM r WHERE n < 3',
      {
        schema: 'public',
        name: 'r',
        columns: ['n'],
        definition:
          'WITH RECURSIVE "r" ("n") AS (VALUES (1) UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT "n" FROM "r"',
      },
    ],
  ])('%s', (sql, expected) => {
    expect(viewFromCreateView(sql)).toEqual(expected);
  });

  it('returns undefined for anything but one CREATE VIEW', () => {
    expect(viewFromCreateView('SELECT 1')).toBeUndefined();
    expect(viewFromCreateView('CREATE VIEW a AS SELECT 1; CREATE VIEW b AS SELECT 2')).toBeUndefined();
  });

  it('gives a recursive view a definition that lineage can follow', () => {
    const view = viewFromCreateView(
      'CREATE RECURSIVE VIEW chain (e, n) AS SELECT email, 1 FROM customers UNION ALL SELECT e, n + 1 FROM chain WHERE n < 3',
    )!;
    const catalog = createCatalog({ tables: [...CATALOG.tables.values()], views: [view] });
    const column = outputLineage('SELECT e FROM chain', catalog).statements[0]!.columns![0];
    expect(sources(column)).toEqual(['public.chain.e', 'public.customers.email']);
  });
});

describe('cursors', () => {
  it('maps FETCH in a later call to the cursor declared earlier', () => {
    const { last } = session(
      'BEGIN',
      'DECLARE c CURSOR FOR SELECT ssn AS x, id FROM customers',
      'FETCH 10 FROM c',
    );
    const fetch = only(last);
    expect(fetch.columns!.map((col) => col.name)).toEqual(['x', 'id']);
    expect(sources(fetch.columns![0])).toEqual(['public.customers.ssn']);
    expect(fetch.reads.map((table) => table.table)).toEqual(['customers']);
  });

  it('returns no rows for MOVE', () => {
    const { last } = session('DECLARE c CURSOR FOR SELECT ssn FROM customers', 'MOVE 1 IN c');
    expect(only(last).columns).toBeNull();
  });

  it('makes FETCH from a cursor it has not seen opaque', () => {
    const fetch = only(session('FETCH ALL FROM "<unnamed portal 1>"').last);
    expect(fetch.exact).toBe(false);
    expect(fetch.readsUnknown).toBe(true);
    expect(fetch.columns!.every((col) => col.opaque)).toBe(true);
  });

  it('forgets cursors on CLOSE, at the end of the transaction unless WITH HOLD, and after unknown code ran', () => {
    const closed = session('DECLARE c CURSOR FOR SELECT ssn FROM customers', 'CLOSE c');
    expect(closed.state.cursors.size).toBe(0);
    const ended = session(
      'DECLARE c CURSOR FOR SELECT ssn FROM customers',
      'DECLARE h CURSOR WITH HOLD FOR SELECT email FROM customers',
      'COMMIT',
    );
    expect([...ended.state.cursors.keys()]).toEqual(['h']);
    // A function may open a portal under the name of a cursor we know.
    const opaque = session(
      'DECLARE c CURSOR FOR SELECT notes FROM customers',
      'SELECT open_cursor_named_c()',
      'FETCH ALL FROM c',
    );
    expect(only(opaque.last).columns!.every((col) => col.opaque)).toBe(true);
  });

  it('reports the predicates of the cursor query when it is declared', () => {
    const declare = only(session("DECLARE c CURSOR FOR SELECT id FROM customers WHERE ssn LIKE '1%'").last);
    expect(sources(declare.predicates)).toEqual(['public.customers.ssn']);
  });
});

describe('prepared statements', () => {
  it('analyses EXECUTE again under the search path in force then', () => {
    const { last } = session(
      'PREPARE p AS SELECT * FROM customers',
      'SET search_path TO archive',
      'EXECUTE p',
    );
    const execute = only(last);
    // Either customers may be meant now: the union of both, and the shapes differ.
    expect(execute.exact).toBe(false);
    const all = execute.columns!.flatMap((col) => sources(col));
    expect(all).toContain('archive.customers.legacy_ssn');
    expect(all).toContain('public.customers.ssn');
  });

  it('lets an EXECUTE argument that carries data taint every column', () => {
    const { last } = session(
      "SELECT set_config('app.v', ssn, false) FROM customers LIMIT 1",
      'PREPARE q(text) AS SELECT $1 AS echo',
      "EXECUTE q(current_setting('app.v'))",
    );
    expect(sources(only(last).columns![0])).toEqual(['public.customers.ssn']);
  });

  it('records statements prepared through the extended protocol, and forgets them on DEALLOCATE', () => {
    const statement = preparedStatement('SELECT card FROM customers WHERE id = $1')!;
    let state = applySessionEffects(EMPTY_SESSION, [{ kind: 'prepare', name: 's1', statement }]);
    const execute = only(outputLineage('EXECUTE s1(5)', CATALOG, { session: state }).statements);
    expect(sources(execute.columns![0])).toEqual(['public.customers.card']);
    for (const effect of only(outputLineage('DEALLOCATE s1', CATALOG, { session: state }).statements).effects)
      state = applySessionEffects(state, [effect]);
    expect(
      only(outputLineage('EXECUTE s1(5)', CATALOG, { session: state }).statements).columns![0]!.opaque,
    ).toBe(true);
  });
});

describe('settings', () => {
  it('traces a value stored by set_config to SHOW, current_setting and pg_settings in later calls', () => {
    const stored = session("SELECT set_config('app.secret', ssn, false) FROM customers WHERE id = 1");
    expect(stored.state.settings.has('app.secret')).toBe(true);
    for (const sql of [
      "SELECT current_setting('app.secret')",
      'SHOW app.secret',
      "SELECT setting FROM pg_settings WHERE name = 'app.secret'",
    ]) {
      const statement = only(outputLineage(sql, CATALOG, { session: stored.state }).statements);
      expect(sources(statement.columns!.at(-1)).filter((source) => source.endsWith('.ssn'))).toEqual([
        'public.customers.ssn',
      ]);
    }
    const other = only(
      outputLineage("SELECT current_setting('app.other')", CATALOG, { session: stored.state }).statements,
    );
    expect(sources(other.columns![0])).toEqual([]);
  });

  it('lets a computed setting name taint every setting, and never cleans a setting again', () => {
    const { state } = session(
      "SELECT set_config('app.' || id, email, false) FROM customers",
      "SET app.anything = 'clean'",
    );
    const statement = only(
      outputLineage("SELECT current_setting('app.anything')", CATALOG, { session: state }).statements,
    );
    expect(sources(statement.columns![0])).toEqual(['public.customers.email', 'public.customers.id']);
  });

  it('does not add a clean set_config to the session', () => {
    expect(session("SELECT set_config('statement_timeout', '5s', false)").state).toEqual(EMPTY_SESSION);
  });
});

describe('search_path', () => {
  it('resolves unqualified names under every search path the session has set', () => {
    const { last } = session('SET search_path TO archive', 'SELECT id FROM customers');
    expect(sources(only(last).columns![0])).toEqual(['archive.customers.id', 'public.customers.id']);
  });

  it('treats a search path it cannot read as any schema', () => {
    const { last } = session(
      "SELECT set_config('search_path', current_user || ',public', false)",
      'SELECT id FROM customers',
    );
    expect(sources(only(last).columns![0])).toEqual(['archive.customers.id', 'public.customers.id']);
  });
});

describe('routines created in the session', () => {
  it('stops trusting a built-in once a function of that name is created', () => {
    const before = only(session('SELECT lower(1)').last);
    expect(before.columns![0]!.opaque).toBe(false);
    const { last } = session(
      "CREATE FUNCTION public.lower(int) RETURNS text LANGUAGE sql AS 'SELECT ssn FROM customers LIMIT 1'",
      'SELECT lower(1)',
    );
    expect(only(last).columns![0]!.opaque).toBe(true);
    expect(only(last).readsUnknown).toBe(true);
  });
});
