import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { REPO_ROOT, startProxyProcess } from '../../e2e/support/proxy-process.ts';
import type { MariaDbInfo } from '../../harness/mariadb.ts';
import { FUZZ_USER, fuzzPolicyDocuments, parametrize, ROW_LIMIT } from './fuzz-policy-documents.ts';
import type { ClientMode, FuzzTarget, Outcome } from './fuzz-target.ts';
import { MYSQL_DIALECT, MYSQL_FUNCTIONS, SAMPLE_SCHEMA } from './generate-statements.ts';
import { receivedText } from './leak-oracle.ts';
import { learnSecrets, perturbStatements, ROTATE_FROM, ROTATE_TO } from './learn-secrets.ts';

const DATABASE = 'policy_fuzz';
/** The seed's copy, where only the administrator can read it. */
const SEED_COPY = 'fuzzseed';
const UPSTREAM = { user: 'gh_fuzz', password: 'gh-fuzz-upstream' };
const CUSTOMERS = 12;
const TABLES = SAMPLE_SCHEMA.map((t) => t.name);
const REFUSED = new Set([1142, 1227]);

/** The MariaDB counterpart of postgres-target.ts: the quickstart's seed-mysql.sql behind the proxy. */
export async function startMysqlTarget(
  server: MariaDbInfo,
  options: { rowLimit: boolean },
): Promise<FuzzTarget> {
  const admin = await mysql.createConnection({
    host: server.host,
    port: server.port,
    user: server.admin.user,
    password: server.admin.password,
    multipleStatements: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  admin.on('error', () => {});
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}; DROP DATABASE IF EXISTS ${SEED_COPY};
    CREATE DATABASE ${DATABASE}; CREATE DATABASE ${SEED_COPY}; USE ${DATABASE};`);
  await admin.query(readFileSync(join(REPO_ROOT, 'examples/quickstart/seed-mysql.sql'), 'utf8'));
  await admin.query(`DELETE FROM orders WHERE customer_id > ${CUSTOMERS}; DELETE FROM customers WHERE id > ${CUSTOMERS};
    ${TABLES.map((t) => `CREATE TABLE ${SEED_COPY}.${t} AS SELECT * FROM ${DATABASE}.${t};`).join('\n')}
    CREATE USER IF NOT EXISTS '${UPSTREAM.user}'@'%' IDENTIFIED BY '${UPSTREAM.password}';
    ALTER USER '${UPSTREAM.user}'@'%' WITH MAX_STATEMENT_TIME 2;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${DATABASE}.* TO '${UPSTREAM.user}'@'%';`);

  const proxy = await startProxyProcess(
    {
      upstream: {
        protocol: 'mysql',
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

  const clients = new Map<ClientMode, mysql.Connection>();
  const connect = async (mode: ClientMode) => {
    const existing = clients.get(mode);
    if (existing) return existing;
    const connection = await mysql.createConnection({
      host: '127.0.0.1',
      port: proxy.port,
      user: FUZZ_USER.name,
      password: FUZZ_USER.password,
      database: DATABASE,
      enableCleartextPlugin: true,
      connectTimeout: 10_000,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
    connection.on('error', () => clients.delete(mode));
    connection.on('end', () => clients.delete(mode));
    clients.set(mode, connection);
    return connection;
  };

  const run = async (sql: string, mode: ClientMode): Promise<Outcome> => {
    const connection = await connect(mode);
    let outcome: { refused: boolean; failed: boolean; payload: unknown };
    try {
      if (mode === 'text') {
        const [rows, fields] = await connection.query({ sql, timeout: 15_000 });
        outcome = { refused: false, failed: false, payload: { rows, names: columnNames(fields) } };
      } else {
        const { text, values } = parametrize(sql, () => '?');
        try {
          const [rows, fields] = await connection.execute({ sql: text, values, timeout: 15_000 });
          outcome = { refused: false, failed: false, payload: { rows, names: columnNames(fields) } };
        } finally {
          connection.unprepare(text);
        }
      }
    } catch (error) {
      const e = error as { errno?: number; sqlMessage?: string; message?: string; sqlState?: string };
      const fields = { ...e, message: e.message };
      const refused = e.errno !== undefined && REFUSED.has(e.errno);
      outcome = { refused, failed: !refused, payload: fields };
    }
    // Warnings are the MySQL protocol's notices: the oracle reads them as a client would.
    const warnings = await connection
      .query('SHOW WARNINGS')
      .then(([rows]) => rows)
      .catch((e: unknown) => ({ showWarningsFailed: (e as Error).message }));
    return {
      refused: outcome.refused,
      failed: outcome.failed,
      received: receivedText([outcome.payload, warnings]),
    };
  };

  const readStored = async (table: string) =>
    (
      (await admin.query(`SELECT * FROM ${DATABASE}.${table} ORDER BY id`)) as [
        Record<string, unknown>[],
        unknown,
      ]
    )[0];
  const readThroughProxy = async (table: string) =>
    (
      (await (await connect('text')).query(`SELECT * FROM ${table} ORDER BY id`)) as [
        Record<string, unknown>[],
        unknown,
      ]
    )[0];
  const { oracle, maskedColumns } = await learnSecrets(readStored, readThroughProxy);

  const changedRows = async (): Promise<number> => {
    let changed = 0;
    for (const t of TABLES) {
      const [rows] = (await admin.query(
        `SELECT COUNT(DISTINCT id) AS n FROM (
          (SELECT * FROM ${DATABASE}.${t} EXCEPT ALL SELECT * FROM ${SEED_COPY}.${t})
          UNION ALL (SELECT * FROM ${SEED_COPY}.${t} EXCEPT ALL SELECT * FROM ${DATABASE}.${t})) d`,
      )) as [Array<{ n: string | number }>, unknown];
      changed += Number(rows[0]?.n ?? 0);
    }
    return changed;
  };
  const rowsUpdatedOrDeleted = async (): Promise<number> => {
    let changed = 0;
    for (const t of TABLES) {
      const [rows] = (await admin.query(
        `SELECT COUNT(DISTINCT id) AS n FROM (SELECT * FROM ${SEED_COPY}.${t} EXCEPT ALL SELECT * FROM ${DATABASE}.${t}) d`,
      )) as [Array<{ n: string | number }>, unknown];
      changed += Number(rows[0]?.n ?? 0);
    }
    return changed;
  };
  const restore = async (): Promise<void> => {
    if ((await changedRows()) > 0) {
      await admin.query(`SET FOREIGN_KEY_CHECKS = 0;
        ${TABLES.map((t) => `DELETE FROM ${DATABASE}.${t}; INSERT INTO ${DATABASE}.${t} SELECT * FROM ${SEED_COPY}.${t};`).join('\n')}
        SET FOREIGN_KEY_CHECKS = 1;`);
    }
  };

  const directly = async (sql: string): Promise<readonly string[]> => {
    await admin.query(`USE ${DATABASE}`);
    await admin.query('BEGIN');
    try {
      const [rows] = await admin.query(sql);
      return receivedText(rows);
    } catch (error) {
      return receivedText({ ...(error as object), message: (error as Error).message });
    } finally {
      await admin.query('ROLLBACK');
    }
  };

  const perturbSecrets = async () => {
    const statements = perturbStatements(maskedColumns, rotate, (c) => `${c} + INTERVAL 1 DAY`);
    await admin.query(
      statements.map((sql) => `${sql.replace(/^UPDATE /, `UPDATE ${DATABASE}.`)};`).join('\n'),
    );
    return (await learnSecrets(readStored, readThroughProxy)).oracle;
  };

  return {
    protocol: 'mysql',
    perturbSecrets,
    direct: directly,
    dialect: MYSQL_DIALECT,
    functions: MYSQL_FUNCTIONS,
    oracle,
    maskedColumns,
    rowLimit: options.rowLimit ? ROW_LIMIT : undefined,
    run,
    changedRows,
    rowsUpdatedOrDeleted,
    restore,
    alive: () => proxy.child.exitCode === null && proxy.child.signalCode === null,
    async close() {
      for (const connection of clients.values()) await connection.end().catch(() => {});
      await admin.end().catch(() => {});
      await proxy.stop();
    },
  };
}

/** Column names only: mysql2's field objects also hold the driver's whole read buffer. */
function columnNames(fields: unknown): string[] {
  return Array.isArray(fields) ? fields.map((f: { name?: string }) => String(f?.name ?? '')) : [];
}

/**
 * MariaDB has no translate(): each letter and digit to a placeholder (circled characters, which the
 * data never holds), then each placeholder to its character moved on by one. REPLACE matches case.
 */
function rotate(column: string): string {
  const from = [...ROTATE_FROM];
  const to = [...ROTATE_TO];
  const placeholder = (i: number) => String.fromCodePoint(0x2460 + i);
  let sql = column;
  for (let i = 0; i < from.length; i++) sql = `REPLACE(${sql}, '${from[i]}', '${placeholder(i)}')`;
  for (let i = 0; i < to.length; i++) sql = `REPLACE(${sql}, '${placeholder(i)}', '${to[i]}')`;
  return sql;
}
