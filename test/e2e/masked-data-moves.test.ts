import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { freshDatabase, localProxyConfig } from './support/clients.ts';
import { directMysql, mysqlClient, mysqlProxyConfig } from './support/mysql.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * A masked identity that may change the schema must not move masked values out of the rules that mask
 * them: renaming the column or the table, a generated column or a USING expression over it, an
 * index, constraint, trigger, rule or policy that computes on it, or stored code (its own or the
 * database's) that copies it where it shows in clear. The column here is masked by a rule that names
 * it and nothing else (no automatic detection, a value no scanner recognises), so only the rule
 * protects it: after every attempt, the database is checked directly for what changed.
 */

const SECRET = 'zq-7731-secret';
/** Masked by name only: `customers.code`, whose values look like nothing in particular. */
const POLICIES = [
  policyDocument('MaskingPolicy', 'by-name', {
    autoDetect: false,
    rules: [{ columns: ['customers.code', 'mv_customers.code'], method: 'redact' }],
  }),
  policyDocument('DatabaseAccess', 'agent', {
    subjects: [localUser('demo')],
    allow: ['read', 'write', 'ddl', 'admin'],
    maskingPolicies: ['by-name'],
  }),
  // Someone who sees everything in clear and may change the schema, through the same proxy.
  policyDocument('DatabaseAccess', 'owner', {
    subjects: [localUser('admin')],
    allow: ['read', 'write', 'ddl'],
  }),
];

/** Spellings that aim at customers' schema: each must be refused by masking. */
const PG_SCHEMA_CHANGES = [
  'ALTER TABLE customers RENAME COLUMN code TO label2',
  'ALTER TABLE customers RENAME code TO label2',
  'alter table CUSTOMERS rename column CODE to label2',
  'ALTER TABLE public.customers RENAME COLUMN code TO label2',
  'ALTER TABLE "customers" RENAME COLUMN "code" TO "label2"',
  'ALTER TABLE IF EXISTS ONLY customers RENAME COLUMN code TO label2',
  'ALTER /* x */ TABLE customers -- y\n RENAME COLUMN code TO label2',
  'ALTER TABLE customers RENAME TO people',
  'ALTER TABLE customers SET SCHEMA elsewhere',
  'ALTER TABLE customers ADD COLUMN copy text GENERATED ALWAYS AS (code) STORED',
  'ALTER TABLE customers ALTER COLUMN label TYPE text USING code',
  "ALTER TABLE customers ADD CONSTRAINT probe CHECK (code < 'm')",
  'CREATE INDEX probe ON customers ((1 / length(code)))',
  'CREATE UNIQUE INDEX probe ON public.customers (code)',
  "CREATE POLICY probe ON customers USING (code > 'm')",
  'CREATE RULE probe AS ON UPDATE TO customers DO ALSO INSERT INTO log VALUES (NEW.code)',
  'CREATE TRIGGER probe AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION copy_row()',
  "DO $$ BEGIN EXECUTE 'ALTER TABLE customers RENAME COLUMN code TO label2'; END $$",
  'BEGIN; ALTER TABLE customers RENAME COLUMN code TO label2; COMMIT',
];

/** Stored code that would carry the masked values: created here, or the database's own, fired here. */
const PG_CODE = [
  'CREATE FUNCTION leak() RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO log SELECT code FROM customers; END$$',
  'CREATE FUNCTION leak() RETURNS void LANGUAGE sql AS $$INSERT INTO log SELECT code FROM customers$$',
  'CREATE FUNCTION leak() RETURNS void LANGUAGE plpgsql AS $$DECLARE v text; BEGIN SELECT code INTO v FROM customers LIMIT 1; INSERT INTO log VALUES (v); END$$',
  "CREATE FUNCTION leak() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('out', code) FROM customers; END$$",
  "CREATE FUNCTION leak() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('app.v', code, false) FROM customers; END$$",
  // The database's own triggers: copy_on_insert (on trig) reads customers; history (on customers) sees NEW.
  'INSERT INTO trig VALUES (1)',
  "UPDATE customers SET label = 'changed' WHERE id = 1",
  'DELETE FROM customers WHERE id = 2',
  'DO $$ BEGIN INSERT INTO log SELECT code FROM customers; END $$',
  // A view read later by a statement prepared under its old definition would be masked by that one.
  'CREATE VIEW leak AS SELECT id, code AS label FROM customers',
  'CREATE OR REPLACE VIEW leak AS SELECT c.id, upper(c.code) AS label FROM public.customers c',
  'CREATE MATERIALIZED VIEW leak AS SELECT code FROM customers',
  'CREATE VIEW leak AS SELECT label FROM shown',
  'CREATE RULE probe AS ON INSERT TO notes DO INSTEAD SELECT code FROM customers',
  // A default or an expression that calls code reading the masked table fills clear columns later.
  'ALTER TABLE notes ALTER COLUMN body SET DEFAULT code_of_first()',
  'CREATE TABLE leak (id int, v text DEFAULT code_of_first())',
  'ALTER TABLE notes ADD COLUMN leak text DEFAULT code_of_first()',
  'CREATE INDEX leak ON notes ((code_of_first() || body))',
  'CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS $$SELECT code FROM customers LIMIT 1$$',
  // Server files and programs hold every value in clear.
  "COPY (SELECT code FROM customers) TO '/tmp/gatehouse-masked-moves.txt'",
  "COPY customers TO PROGRAM 'cat > /dev/null'",
  "COPY notes FROM PROGRAM 'echo 1'",
  "SELECT pg_read_file('PG_VERSION')",
];

/** What the identity may still do: schema changes and code that keep masked values where they are. */
const PG_ALLOWED = [
  'ALTER TABLE notes ADD COLUMN extra int',
  'CREATE INDEX ON notes (body)',
  'CREATE TABLE scratch(id int)',
  'DROP TABLE scratch',
  'INSERT INTO notes VALUES (1, $$hello$$)',
  'CREATE FUNCTION harmless() RETURNS bigint LANGUAGE sql AS $$SELECT count(*) FROM notes$$',
];

const pgInfo = inject('postgres');
const mariadb = inject('mariadb');

describe('PostgreSQL: a masked identity cannot move masked values', () => {
  const DATABASE = 'moves';
  let proxy: ProxyProcess;
  let admin: pg.Client;

  beforeAll(async () => {
    admin = await freshDatabase(pgInfo, DATABASE);
    await admin.query(`
      CREATE SCHEMA elsewhere;
      CREATE TABLE customers(id int, label text, code text);
      INSERT INTO customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}');
      CREATE TABLE log(v text);
      CREATE TABLE history(v text);
      CREATE TABLE trig(id int);
      CREATE TABLE notes(id int, body text);
      CREATE FUNCTION copy_from_customers() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO log SELECT code FROM customers; RETURN NEW; END$$;
      CREATE TRIGGER copy_on_insert AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION copy_from_customers();
      CREATE FUNCTION copy_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO history VALUES (OLD.code); RETURN NEW; END$$;
      CREATE TRIGGER history AFTER UPDATE OR DELETE ON customers FOR EACH ROW EXECUTE FUNCTION copy_row();
      CREATE VIEW shown AS SELECT id, code AS label FROM customers;
      CREATE FUNCTION code_of_first() RETURNS text LANGUAGE sql AS $fn$SELECT code FROM customers ORDER BY id LIMIT 1$fn$;
    `);
    const config = localProxyConfig(pgInfo, {
      masking: { key: { value: 'test-masking-key-0123456789abcdef' } },
    });
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    proxy = await startProxyProcess(config, { extraDocuments: POLICIES });
  });

  afterAll(async () => {
    await proxy?.stop();
    await admin?.end();
  });

  async function asAgent<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: proxy.port,
      user: 'demo',
      password: 'demo-secret',
      database: DATABASE,
    });
    client.on('error', () => {});
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  it.each([...PG_SCHEMA_CHANGES, ...PG_CODE])('refuses %s', async (sql) => {
    const error = await asAgent((c) =>
      c.query(sql).then(
        () => undefined,
        (e: Error) => e,
      ),
    );
    expect(error?.message).toMatch(/MaskingPolicy "by-name" refuses/);
    const columns = await admin.query(
      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) AS c FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customers'",
    );
    expect(columns.rows[0].c).toBe('id,label,code');
    for (const table of ['log', 'history'])
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
    expect(
      (await admin.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'leak'")).rows[0].n,
    ).toBe(0);
    expect(
      (await admin.query("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'leak'")).rows[0].n,
    ).toBe(0);
    expect((await admin.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(2);
    const defaults = await admin.query(
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'notes' AND (column_default IS NOT NULL OR column_name = 'leak')",
    );
    expect(defaults.rows[0].n).toBe(0);
  });

  it.each(PG_ALLOWED)('allows %s', async (sql) => {
    await asAgent((c) => c.query(sql));
  });

  it('keeps a statement prepared over a view masked: the view cannot be redefined over masked columns', async () => {
    // Someone who may defines it; the masked identity prepares a statement over it.
    await admin.query('CREATE VIEW labels AS SELECT id, label AS x FROM customers');
    await asAgent(async (c) => {
      const prepared = () => c.query({ name: 'over_view', text: 'SELECT x FROM labels ORDER BY id' });
      expect((await prepared()).rows.map((r) => r.x)).toEqual(['first', 'second']);
      const redefined = await c
        .query('CREATE OR REPLACE VIEW labels AS SELECT id, code AS x FROM customers')
        .then(
          () => undefined,
          (e: Error) => e,
        );
      expect(redefined?.message).toMatch(/keeps in the schema a query or code that reads customers/);
      expect((await prepared()).rows.map((r) => r.x)).toEqual(['first', 'second']);
    });
    await admin.query('DROP VIEW labels');
  });

  it('still masks the column when read, and shows the clear ones', async () => {
    const rows = await asAgent((c) => c.query('SELECT id, label, code FROM customers ORDER BY id'));
    expect(rows.rows.map((r) => r.label)).toEqual(['first', 'second']);
    expect(JSON.stringify(rows.rows)).not.toContain(SECRET);
  });
});

/** MySQL's spellings of the same moves. */
const MYSQL_SCHEMA_CHANGES = [
  'ALTER TABLE mv_customers RENAME COLUMN code TO label2',
  'alter table MV_CUSTOMERS rename column CODE to label2',
  'ALTER TABLE `mv_customers` CHANGE `code` label2 text',
  'ALTER TABLE moves.mv_customers CHANGE COLUMN code label2 text',
  'ALTER TABLE mv_customers MODIFY code int',
  'ALTER TABLE mv_customers RENAME TO people',
  'ALTER TABLE mv_customers RENAME moves.people',
  'RENAME TABLE mv_customers TO people',
  'RENAME TABLE mv_notes TO notes2, mv_customers TO people',
  'ALTER TABLE mv_customers ADD COLUMN copy text AS (code) STORED',
  'ALTER TABLE mv_customers ADD COLUMN copy text GENERATED ALWAYS AS (upper(code)) VIRTUAL',
  "ALTER TABLE mv_customers ADD CONSTRAINT probe CHECK (code < 'm')",
  'CREATE INDEX probe ON mv_customers (code)',
  'CREATE UNIQUE INDEX probe USING BTREE ON moves.mv_customers (code)',
  'ALTER TABLE mv_customers ADD INDEX probe (code)',
  'CREATE TRIGGER probe AFTER UPDATE ON mv_customers FOR EACH ROW INSERT INTO mv_log VALUES (OLD.code)',
  'CREATE TRIGGER probe BEFORE DELETE ON `mv_customers` FOR EACH ROW SET @v = OLD.code',
  '/*!50001 ALTER TABLE mv_customers RENAME COLUMN code TO label2 */',
];

const MYSQL_CODE = [
  'CREATE TABLE copy AS SELECT id, code AS label FROM mv_customers',
  'CREATE TABLE copy SELECT code FROM mv_customers',
  'CREATE TABLE copy (v text) SELECT code AS v FROM mv_customers',
  'CREATE TABLE IF NOT EXISTS copy SELECT * FROM mv_customers',
  'CREATE TABLE copy IGNORE SELECT code FROM mv_customers',
  'CREATE TABLE copy AS (SELECT code FROM mv_customers)',
  'CREATE TABLE copy AS WITH c AS (SELECT code FROM mv_customers) SELECT * FROM c',
  // A temporary table named like a base table is read as that table by lineage for the session.
  'CREATE TEMPORARY TABLE mv_notes SELECT id, code AS body FROM mv_customers',
  'CREATE TEMPORARY TABLE IF NOT EXISTS mv_notes (id int, body text) SELECT id, code AS body FROM mv_customers',
  'CREATE TRIGGER probe AFTER INSERT ON mv_notes FOR EACH ROW INSERT INTO mv_log SELECT code FROM mv_customers',
  'CREATE VIEW copy AS SELECT code AS label FROM mv_customers',
  'CREATE OR REPLACE VIEW copy AS SELECT id, code AS label FROM moves.mv_customers',
  'CREATE SQL SECURITY INVOKER VIEW copy (a) AS SELECT code FROM mv_customers',
  'CREATE FUNCTION leak() RETURNS text READS SQL DATA RETURN (SELECT code FROM mv_customers LIMIT 1)',
  "SELECT code FROM mv_customers INTO OUTFILE '/tmp/gatehouse-masked-moves.csv'",
  "SELECT id INTO DUMPFILE '/tmp/gatehouse-masked-moves.bin' FROM mv_notes LIMIT 1",
  'CREATE PROCEDURE leak() INSERT INTO mv_log SELECT code FROM mv_customers',
  'CREATE PROCEDURE leak() BEGIN DECLARE v text; SELECT code INTO v FROM mv_customers LIMIT 1; INSERT INTO mv_log VALUES (v); END',
  // The database's own triggers: copy_on_insert (on mv_trig) reads mv_customers; mv_history (on mv_customers) sees OLD.
  'INSERT INTO mv_trig VALUES (1)',
  "UPDATE mv_customers SET label = 'changed' WHERE id = 1",
  'DELETE FROM mv_customers WHERE id = 2',
];

const MYSQL_ALLOWED = [
  'ALTER TABLE mv_notes ADD COLUMN extra int',
  'CREATE INDEX notes_body ON mv_notes (body(10))',
  'CREATE TABLE scratch(id int)',
  'DROP TABLE scratch',
  "INSERT INTO mv_notes VALUES (1, 'hello', NULL)",
  'CREATE TABLE labels AS SELECT id, body FROM mv_notes',
  'CREATE OR REPLACE VIEW note_view AS SELECT body FROM mv_notes',
];

describe('MySQL: a masked identity cannot move masked values', () => {
  const DATABASE = 'moves';
  let proxy: ProxyProcess;

  beforeAll(async () => {
    const admin = await directMysql(mariadb);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.query(`GRANT ALL PRIVILEGES ON ${DATABASE}.* TO '${mariadb.users.native.user}'@'%'`);
    await admin.changeUser({ database: DATABASE });
    for (const sql of [
      'CREATE TABLE mv_customers(id int, label text, code text)',
      `INSERT INTO mv_customers VALUES (1, 'first', '${SECRET}'), (2, 'second', '${SECRET}')`,
      'CREATE TABLE mv_log(v text)',
      'CREATE TABLE mv_history(v text)',
      'CREATE TABLE mv_trig(id int)',
      'CREATE TABLE mv_notes(id int, body text)',
      'CREATE TRIGGER copy_on_insert AFTER INSERT ON mv_trig FOR EACH ROW INSERT INTO mv_log SELECT code FROM mv_customers',
      'CREATE TRIGGER history_update AFTER UPDATE ON mv_customers FOR EACH ROW INSERT INTO mv_history VALUES (OLD.code)',
      'CREATE TRIGGER history_delete AFTER DELETE ON mv_customers FOR EACH ROW INSERT INTO mv_history VALUES (OLD.code)',
    ])
      await admin.query(sql);
    await admin.end();
    const config = mysqlProxyConfig(mariadb);
    (config['upstream'] as Record<string, unknown>)['database'] = DATABASE;
    proxy = await startProxyProcess(config, { extraDocuments: POLICIES });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  async function asAgent<T>(
    run: (client: Awaited<ReturnType<typeof mysqlClient>>) => Promise<T>,
  ): Promise<T> {
    const client = await mysqlClient(proxy.port, { database: DATABASE });
    try {
      return await run(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  it.each([...MYSQL_SCHEMA_CHANGES, ...MYSQL_CODE])('refuses %s', async (sql) => {
    const error = await asAgent((c) =>
      c.query(sql).then(
        () => undefined,
        (e: Error) => e,
      ),
    );
    expect(error?.message).toMatch(/Gatehouse masking refuses/);
    const admin = await directMysql(mariadb, DATABASE);
    try {
      const [columns] = await admin.query(
        `SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '${DATABASE}' AND TABLE_NAME = 'mv_customers'`,
      );
      expect((columns as { c: string }[])[0]!.c).toBe('id,label,code');
      for (const table of ['mv_log', 'mv_history']) {
        const [rows] = await admin.query(`SELECT count(*) AS n FROM ${table}`);
        expect((rows as { n: number }[])[0]!.n).toBe(0);
      }
      const [tables] = await admin.query(
        `SELECT count(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${DATABASE}' AND TABLE_NAME IN ('copy', 'people')`,
      );
      expect((tables as { n: number }[])[0]!.n).toBe(0);
      const [code] = await admin.query(
        `SELECT (SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '${DATABASE}') + (SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '${DATABASE}') AS n`,
      );
      expect(Number((code as { n: number }[])[0]!.n)).toBe(3);
    } finally {
      await admin.end();
    }
  });

  it.each(MYSQL_ALLOWED)('allows %s', async (sql) => {
    await asAgent((c) => c.query(sql));
  });

  it('reads a view by its definition as it is now, after another identity redefines it', async () => {
    const owner = await mysqlClient(proxy.port, {
      database: DATABASE,
      user: 'admin',
      password: 'admin-secret',
    });
    const agent = await mysqlClient(proxy.port, { database: DATABASE });
    const read = async () => {
      const [rows] = await agent.query('SELECT v FROM shown ORDER BY id');
      return (rows as { v: string }[]).map((r) => r.v);
    };
    try {
      await owner.query('CREATE OR REPLACE VIEW shown AS SELECT id, label AS v FROM mv_customers');
      // Traced through the definition: the clear column comes back clear, not masked for being a view.
      expect(await read()).toEqual(['first', 'second']);
      await owner.query('CREATE OR REPLACE VIEW shown AS SELECT id, code AS v FROM mv_customers');
      const masked = await read();
      expect(masked).toHaveLength(2);
      expect(masked).not.toContain(SECRET);
      await owner.query('CREATE OR REPLACE VIEW shown (id, v) AS SELECT id, label FROM mv_customers');
      expect(await read()).toEqual(['first', 'second']);
      await owner.query('CREATE OR REPLACE VIEW shown (v, id) AS SELECT code, id FROM mv_customers');
      expect(await read()).not.toContain(SECRET);
    } finally {
      await owner.query('DROP VIEW IF EXISTS shown');
      await owner.end();
      await agent.end();
    }
  });
});
