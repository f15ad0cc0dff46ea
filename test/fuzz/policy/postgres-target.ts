import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { REPO_ROOT, startProxyProcess } from '../../e2e/support/proxy-process.ts';
import type { PostgresInfo } from '../../harness/postgres.ts';
import { FUZZ_USER, fuzzPolicyDocuments, parametrize, ROW_LIMIT } from './fuzz-policy-documents.ts';
import type { ClientMode, FuzzTarget, Outcome } from './fuzz-target.ts';
import { POSTGRES_DIALECT, pgCatalogFunctions, SAMPLE_SCHEMA } from './generate-statements.ts';
import { receivedText } from './leak-oracle.ts';
import { learnSecrets, perturbStatements, ROTATE_FROM, ROTATE_TO } from './learn-secrets.ts';

const DATABASE = 'policy_fuzz';
const UPSTREAM = { user: 'gatehouse_fuzz', password: 'gatehouse-fuzz-upstream' };
/** Few customers keep results small; twelve still give every card prefix and email domain twice or more. */
const CUSTOMERS = 12;
const TABLES = SAMPLE_SCHEMA.map((t) => t.name);
/** Raw text for every type: what the server sent, not what the driver made of it. */
const RAW_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

/**
 * The quickstart's seed in a database of its own, cut to a few customers, with a copy of the seed in
 * a schema only the administrator can read (to count and undo what writes change), a non-superuser
 * upstream role with a statement timeout, and the proxy in front with the quickstart's masking policy.
 */
export async function startPostgresTarget(
  server: PostgresInfo,
  options: { rowLimit: boolean },
): Promise<FuzzTarget> {
  const direct = (database: string) =>
    new pg.Client({
      host: server.host,
      port: server.port,
      database,
      user: server.admin.user,
      password: server.admin.password,
      types: RAW_TYPES,
    });
  const bootstrap = direct(server.database);
  await bootstrap.connect();
  await bootstrap.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await bootstrap.query(`CREATE DATABASE ${DATABASE}`);
  await bootstrap.query(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${UPSTREAM.user}') THEN
      CREATE ROLE ${UPSTREAM.user} LOGIN PASSWORD '${UPSTREAM.password}';
    END IF; END $$`);
  await bootstrap.query(`ALTER ROLE ${UPSTREAM.user} SET statement_timeout = '2s'`);
  await bootstrap.end();

  const admin = direct(DATABASE);
  // Without a listener, the server going away first would end the process with an unhandled error.
  admin.on('error', () => {});
  await admin.connect();
  await admin.query(readFileSync(join(REPO_ROOT, 'examples/quickstart/seed.sql'), 'utf8'));
  await admin.query(`DELETE FROM orders WHERE customer_id > ${CUSTOMERS}; DELETE FROM customers WHERE id > ${CUSTOMERS};
    CREATE SCHEMA fuzz_seed;
    ${TABLES.map((t) => `CREATE TABLE fuzz_seed.${t} AS TABLE public.${t};`).join('\n')}
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${UPSTREAM.user};
    GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${UPSTREAM.user};
    ANALYZE;`);

  const functionRows = await admin.query<{ name: string; args: string; returns: string }>(
    `SELECT p.proname AS name, array_to_string(p.proargtypes::regtype[], '|') AS args, p.prorettype::regtype::text AS returns
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'pg_catalog' AND p.prokind = 'f' AND NOT p.proretset AND p.provolatile = 'i'
        AND p.pronargs BETWEEN 1 AND 3 AND p.provariadic = 0
      ORDER BY p.oid`,
  );
  const functions = pgCatalogFunctions(functionRows.rows.map((r) => ({ ...r, args: r.args.split('|') })));

  const proxy = await startProxyProcess(
    {
      upstream: {
        host: server.host,
        port: server.port,
        database: DATABASE,
        user: UPSTREAM.user,
        password: { value: UPSTREAM.password },
      },
      identity: { mode: 'local', local: { users: [FUZZ_USER] } },
      masking: { key: { value: 'policy-fuzz-masking-key-0123456789' } },
      audit: { file: 'audit.jsonl', stdout: false },
    },
    { extraDocuments: fuzzPolicyDocuments(options.rowLimit) },
  );

  const clients = new Map<ClientMode, { client: pg.Client; events: unknown[] }>();
  const connect = async (mode: ClientMode) => {
    const existing = clients.get(mode);
    if (existing) return existing;
    const events: unknown[] = [];
    const client = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      database: DATABASE,
      user: FUZZ_USER.name,
      password: FUZZ_USER.password,
      types: RAW_TYPES,
      query_timeout: 15_000,
    });
    const entry = { client, events };
    client.on('notice', (notice) => events.push({ notice: { ...notice, message: notice.message } }));
    client.on('notification', (notification) => events.push({ notification }));
    client.on('error', () => clients.delete(mode));
    client.on('end', () => clients.delete(mode));
    await client.connect();
    // Notifications are one of the channels the oracle watches: a generated pg_notify() lands here.
    await client.query('LISTEN fuzz').catch((e: unknown) => events.push({ listen: e }));
    clients.set(mode, entry);
    return entry;
  };

  const run = async (sql: string, mode: ClientMode): Promise<Outcome> => {
    const { client, events } = await connect(mode);
    events.length = 0;
    const config: pg.QueryConfig =
      mode === 'text'
        ? { text: sql }
        : ({ ...parametrize(sql, (i) => `$${i}::text`), queryMode: 'extended' as const } as pg.QueryConfig);
    try {
      const result = (await client.query(config)) as pg.QueryResult | pg.QueryResult[];
      const results = Array.isArray(result) ? result : [result];
      // Notifications arrive after the command completes, in the same read.
      await new Promise((r) => setImmediate(r));
      const received = receivedText([
        results.map((r) => ({
          rows: r.rows,
          command: r.command,
          count: r.rowCount,
          names: r.fields?.map((f) => f.name),
        })),
        events,
      ]);
      return { refused: false, failed: false, received };
    } catch (error) {
      await new Promise((r) => setImmediate(r));
      const e = error as pg.DatabaseError;
      const fields = { ...e, message: e.message };
      return {
        refused: e.code === '42501',
        failed: e.code !== '42501',
        received: receivedText([fields, events]),
      };
    }
  };

  const readStored = async (table: string) =>
    (await admin.query(`SELECT * FROM ${table} ORDER BY id`)).rows as Record<string, unknown>[];
  const readThroughProxy = async (table: string) =>
    (await (await connect('text')).client.query(`SELECT * FROM ${table} ORDER BY id`)).rows as Record<
      string,
      unknown
    >[];
  const { oracle, maskedColumns } = await learnSecrets(readStored, readThroughProxy);

  const changedRows = async (): Promise<number> => {
    const diff = TABLES.map(
      (t) => `SELECT '${t}' AS t, count(DISTINCT id)::int AS n FROM (
        (SELECT * FROM public.${t} EXCEPT ALL SELECT * FROM fuzz_seed.${t})
        UNION ALL (SELECT * FROM fuzz_seed.${t} EXCEPT ALL SELECT * FROM public.${t})) d`,
    ).join(' UNION ALL ');
    const counts = (await admin.query<{ t: string; n: number }>(diff)).rows;
    return counts.reduce((sum, row) => sum + Number(row.n), 0);
  };
  const rowsUpdatedOrDeleted = async (): Promise<number> => {
    const diff = TABLES.map(
      (t) =>
        `SELECT count(DISTINCT id)::int AS n FROM (SELECT * FROM fuzz_seed.${t} EXCEPT ALL SELECT * FROM public.${t}) d`,
    ).join(' UNION ALL ');
    const counts = (await admin.query<{ n: number }>(diff)).rows;
    return counts.reduce((sum, row) => sum + Number(row.n), 0);
  };
  const restore = async (): Promise<void> => {
    if ((await changedRows()) === 0) return;
    await admin.query(`BEGIN; TRUNCATE ${TABLES.join(', ')};
      ${['customers', 'products', 'orders'].map((t) => `INSERT INTO public.${t} SELECT * FROM fuzz_seed.${t};`).join('\n')}
      COMMIT;`);
  };

  const directly = async (sql: string): Promise<readonly string[]> => {
    await admin.query('BEGIN');
    try {
      const result = await admin.query(sql);
      return receivedText(result.rows);
    } catch (error) {
      return receivedText({ ...(error as object), message: (error as Error).message });
    } finally {
      await admin.query('ROLLBACK');
    }
  };

  const perturbSecrets = async () => {
    const statements = perturbStatements(
      maskedColumns,
      (c) => `translate(${c}, '${ROTATE_FROM}', '${ROTATE_TO}')`,
      (c) => `${c} + 1`,
    );
    await admin.query(statements.join(';\n'));
    return (await learnSecrets(readStored, readThroughProxy)).oracle;
  };

  return {
    protocol: 'postgres',
    perturbSecrets,
    direct: directly,
    dialect: POSTGRES_DIALECT,
    functions,
    oracle,
    maskedColumns,
    rowLimit: options.rowLimit ? ROW_LIMIT : undefined,
    run,
    changedRows,
    rowsUpdatedOrDeleted,
    restore,
    alive: () => proxy.child.exitCode === null && proxy.child.signalCode === null,
    async close() {
      for (const { client } of clients.values()) await client.end().catch(() => {});
      await admin.end().catch(() => {});
      await proxy.stop();
    },
  };
}
