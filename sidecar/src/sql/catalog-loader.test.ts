import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectUpstream, type UpstreamConnection } from '../protocol/postgres/upstream.ts';
import { runUpstreamQuery } from '../protocol/postgres/upstream-query.ts';
import { loadCatalog, parseSearchPath } from './catalog-loader.ts';
import { qualifiedName } from './lineage/catalog.ts';
import { outputLineage } from './lineage/output-lineage.ts';
import { loadSqlParser } from './normalize.ts';

const info = inject('postgres');
let connection: UpstreamConnection;

beforeAll(async () => {
  await loadSqlParser();
  const admin = new pg.Client({
    host: info.host,
    port: info.port,
    database: info.database,
    user: info.admin.user,
    password: info.admin.password,
  });
  await admin.connect();
  await admin.query(`
    DROP SCHEMA IF EXISTS catalog_test CASCADE;
    CREATE SCHEMA catalog_test;
    CREATE TABLE catalog_test.people(id int, full_name text, email varchar(200), dropped text);
    ALTER TABLE catalog_test.people DROP COLUMN dropped;
    CREATE VIEW catalog_test.v_contact AS SELECT id, email AS contact FROM catalog_test.people;
    CREATE FUNCTION catalog_test.launder(x text) RETURNS text LANGUAGE sql AS 'SELECT x';`);
  await admin.end();
  connection = await connectUpstream({
    host: info.host,
    port: info.port,
    database: info.database,
    user: info.admin.user,
    password: info.admin.password,
    tls: { mode: 'disable' },
    connectTimeoutMs: 10_000,
    startupParameters: {},
  });
});

afterAll(() => connection?.socket.destroy());

describe('loadCatalog', () => {
  it('reads tables with their live columns, views with definitions, routines and the search path', async () => {
    const catalog = await loadCatalog(
      async (sql) => (await runUpstreamQuery(connection.socket, sql, 10_000)).results,
    );
    const people = catalog.tables.get(qualifiedName('catalog_test', 'people'));
    expect(people?.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['full_name', 'text'],
      ['email', 'character varying(200)'],
    ]);
    expect(catalog.views.get(qualifiedName('catalog_test', 'v_contact'))?.columns).toEqual(['id', 'contact']);
    expect(catalog.tables.has(qualifiedName('pg_catalog', 'pg_class'))).toBe(true);
    expect(catalog.userRoutines.has('launder')).toBe(true);
    expect(catalog.searchPath).toEqual([info.admin.user, 'public']);

    // The catalog is enough for lineage to see through the view to the column it renames.
    const lineage = outputLineage('SELECT contact FROM catalog_test.v_contact', catalog);
    const sources = lineage.statements[0]?.columns?.[0]?.sources ?? [];
    expect(sources.map((s) => `${s.schema}.${s.table}.${s.column}`)).toContain('catalog_test.people.email');
  });

  it('leaves the connection usable, with nothing of the answer left unread', async () => {
    const { results, leftover } = await runUpstreamQuery(connection.socket, "SELECT 'still', 1", 10_000);
    expect(results).toEqual([[['still', '1']]]);
    expect(leftover.length).toBe(0);
    await expect(
      runUpstreamQuery(connection.socket, 'SELECT * FROM no_such_relation', 10_000),
    ).rejects.toThrow(/42P01/);
  });
});

describe('parseSearchPath', () => {
  it.each([
    ['"$user", public', 'ann', ['ann', 'public']],
    ['Public, "Mixed Case"', 'ann', ['public', 'Mixed Case']],
    ['', 'ann', []],
  ])('%s', (setting, user, expected) => {
    expect(parseSearchPath(setting, user)).toEqual(expected);
  });
});
