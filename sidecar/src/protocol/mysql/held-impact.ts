import { type ImpactPlan, impactPlan, type Measured } from '../../approvals/impact-plan.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { ColumnType } from './binary-cells.ts';
import { binaryCells, MYSQL_TYPE } from './binary-cells.ts';
import type { BoundParameters, MysqlAnswer, MysqlLink } from './impact-link.ts';
import { PayloadReader } from './packet-io.ts';
import { counterQuery, counterValue, type MysqlTableCatalog, unmeasurable } from './row-measure.ts';

/**
 * What the approver of a held MySQL statement is shown, measured on the requester's own connection
 * while its client waits:
 *
 *   START TRANSACTION, or SAVEPOINT inside the client's transaction ─► rows: EXPLAIN, the session's
 *   Handler_update + Handler_delete, the statement (under max_statement_time and
 *   innodb_lock_wait_timeout), the counters again; dependents: the information_schema
 *   ─► ROLLBACK, or ROLLBACK TO SAVEPOINT and RELEASE.
 *
 * A held execution of a prepared statement is measured the same way, with EXPLAIN and the statement
 * each prepared, executed with the execution's bound parameters and closed (impact-link.ts).
 *
 * Each step waits for the one before. Only MariaDB can bound the time of an UPDATE or DELETE
 * (MySQL's max_execution_time covers SELECT alone): on MySQL the rows are not measured.
 */

/** The longest a measuring statement may run or wait for a lock, in seconds. */
export const MEASURE_TIMEOUT_SECONDS = 3;
const SAVEPOINT = '`gatehouse impact`';
const MAX_DEPENDENTS = 50;
/** The `rows` column of MariaDB's EXPLAIN (id, select_type, table, type, possible_keys, key, key_len, ref, rows). */
const EXPLAIN_ROWS_COLUMN = 8;

export interface MysqlProbeResult {
  readonly measured: Measured;
  /** False when the transaction could not be put back as it was: the session cannot go on. */
  readonly intact: boolean;
}

/** The plan for a held MySQL statement (row-measure.ts says what its counters can count). */
export function mysqlImpactPlan(
  sql: string,
  facts: StatementFacts,
  catalog: MysqlTableCatalog | undefined,
  database: string,
  mariadb: boolean,
): ImpactPlan {
  const plan = impactPlan(facts, unmeasurable(facts, catalog, database)?.reason);
  if (plan.measure === 'dependents' && plan.targets.some((t) => qualify(t, database) === undefined))
    return { measure: 'nothing' };
  if (plan.measure !== 'rows') return plan;
  if (!mariadb)
    return {
      measure: 'impossible',
      reason: 'MySQL cannot bound the time of an UPDATE or DELETE (max_execution_time covers SELECT only)',
    };
  if (facts.statementCount !== 1)
    return { measure: 'impossible', reason: 'a text of several statements is not measured' };
  // A user variable assigned in an UPDATE or DELETE keeps its value after the rollback.
  if (sql.includes(':='))
    return {
      measure: 'impossible',
      reason: 'it assigns user variables, whose values a rollback does not restore',
    };
  return plan;
}

export async function measureMysqlImpact(
  link: MysqlLink,
  plan: ImpactPlan,
  sql: string,
  inTransaction: boolean,
  database: string,
  parameters?: BoundParameters,
): Promise<MysqlProbeResult> {
  if (plan.measure === 'nothing') return { measured: {}, intact: true };
  if (plan.measure === 'impossible') return { measured: { notMeasured: plan.reason }, intact: true };
  if (plan.measure === 'dependents')
    return { measured: await listDependents(link, plan.targets, database), intact: true };
  const opened = await link.run(inTransaction ? `SAVEPOINT ${SAVEPOINT}` : 'START TRANSACTION');
  if (!opened.ok)
    return {
      measured: { notMeasured: failure('opening the measurement', opened) },
      intact: opened.inTransaction === inTransaction,
    };
  const measured = await measureRows(link, sql, parameters);
  let intact: boolean;
  if (inTransaction) {
    // A deadlock rolls the client's whole transaction back, and its savepoint with it: not intact.
    const back = await link.run(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
    const released = back.ok ? await link.run(`RELEASE SAVEPOINT ${SAVEPOINT}`) : back;
    intact = released.ok && released.inTransaction;
  } else {
    const back = await link.run('ROLLBACK');
    intact = back.ok && !back.inTransaction;
  }
  return { measured, intact };
}

async function measureRows(
  link: MysqlLink,
  sql: string,
  parameters: BoundParameters | undefined,
): Promise<Measured> {
  const statement = sql.replace(/[\s;]+$/, '');
  const bounded = (text: string) =>
    `SET STATEMENT max_statement_time=${MEASURE_TIMEOUT_SECONDS}, innodb_lock_wait_timeout=${MEASURE_TIMEOUT_SECONDS} FOR ${text}`;
  const run = (text: string) => (parameters ? link.runBound(text, parameters) : link.run(text));
  const explained = await run(bounded(`EXPLAIN ${statement}`));
  const estimatedRows = explained.ok ? explainRows(explained.rows, explained.columns) : undefined;
  const estimate = estimatedRows === undefined ? {} : { estimatedRows };
  const before = await link.run(counterQuery(true));
  const ran = await run(bounded(statement));
  if (!ran.ok) return { ...estimate, notMeasured: failure('the statement', ran) };
  const after = await link.run(counterQuery(true));
  const start = before.rows[0] && counterValue(before.rows[0]);
  const end = after.rows[0] && counterValue(after.rows[0]);
  if (typeof start !== 'number' || typeof end !== 'number')
    return { ...estimate, notMeasured: 'the row counters could not be read' };
  return { ...estimate, affectedRows: Math.max(0, end - start) };
}

/**
 * The estimate of MariaDB's EXPLAIN: the rows of its first line (the table changed). `columns` are
 * given for a binary-protocol row (an EXPLAIN prepared with the client's parameters).
 */
export function explainRows(rows: readonly Buffer[], columns?: readonly ColumnType[]): number | undefined {
  const first = rows[0];
  if (!first) return undefined;
  if (columns) return binaryExplainRows(first, columns);
  const r = new PayloadReader(first);
  let value: string | undefined;
  for (let i = 0; i <= EXPLAIN_ROWS_COLUMN && r.remaining > 0; i++) {
    if (first[first.length - r.remaining] === 0xfb) {
      r.u8();
      value = undefined;
    } else value = r.lenencBytes().toString('latin1');
  }
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

function binaryExplainRows(row: Buffer, columns: readonly ColumnType[]): number | undefined {
  const column = columns[EXPLAIN_ROWS_COLUMN];
  let cell: Buffer | null | undefined;
  try {
    cell = binaryCells(row, columns)[EXPLAIN_ROWS_COLUMN];
  } catch {
    return undefined;
  }
  if (!column || !cell) return undefined;
  if (column.type === MYSQL_TYPE.LONGLONG && cell.length === 8) {
    const rows = cell.readBigUInt64LE();
    return rows <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(rows) : undefined;
  }
  const text = cell.toString('latin1');
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

async function listDependents(
  link: MysqlLink,
  targets: readonly string[],
  database: string,
): Promise<Measured> {
  const answer = await link.run(dependentsQuery(targets, database));
  if (!answer.ok) return {};
  const dependents = answer.rows.slice(0, MAX_DEPENDENTS).map((row) => {
    const r = new PayloadReader(row);
    return `${r.lenencBytes().toString('utf8')} ${r.lenencBytes().toString('utf8')}`;
  });
  if (answer.rows.length > MAX_DEPENDENTS) dependents.push(`… and more (over ${MAX_DEPENDENTS})`);
  return { dependents };
}

/** `schema.table` with the session's database for an unqualified name; undefined for a name it cannot split. */
function qualify(target: string, database: string): [string, string] | undefined {
  const parts = target.replaceAll('`', '').split('.');
  if (parts.length === 1 && parts[0]) return [database, parts[0]];
  if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
  return undefined;
}

/**
 * Views that name each target in their definition, foreign keys that reference it, routines whose body
 * names it, and its triggers. Names travel as hex literals, so no quote in a name changes the query.
 */
export function dependentsQuery(targets: readonly string[], database: string): string {
  const text = (s: string) => `CONVERT(X'${Buffer.from(s, 'utf8').toString('hex')}' USING utf8mb4)`;
  const parts = targets.flatMap((target) => {
    const q = qualify(target, database);
    if (!q) return [];
    const [schema, table] = [text(q[0]), text(q[1])];
    return [
      `SELECT 'view', CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.VIEWS WHERE VIEW_DEFINITION LIKE CONCAT('%\`', ${schema}, '\`.\`', ${table}, '\`%')`,
      `SELECT 'foreign key', CONCAT(CONSTRAINT_NAME, ' on ', TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_SCHEMA = ${schema} AND REFERENCED_TABLE_NAME = ${table} AND NOT (TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${table})`,
      `SELECT 'routine', CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_DEFINITION LIKE CONCAT('%', ${table}, '%')`,
      `SELECT 'trigger', CONCAT(TRIGGER_NAME, ' on ', EVENT_OBJECT_SCHEMA, '.', EVENT_OBJECT_TABLE) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ${schema} AND EVENT_OBJECT_TABLE = ${table}`,
    ];
  });
  return `SELECT DISTINCT * FROM (${parts.join(' UNION ALL ')}) d ORDER BY 1, 2 LIMIT ${MAX_DEPENDENTS + 1}`;
}

function failure(what: string, answer: MysqlAnswer): string {
  const errorCode = answer.errorCode;
  if (answer.failure) return `${what} could not run under measurement: ${answer.failure}`;
  if (errorCode === 1969 || errorCode === 3024)
    return `${what} ran past the measurement's ${MEASURE_TIMEOUT_SECONDS} s time limit`;
  if (errorCode === 1205) return `${what} waited for a lock past the measurement's time limit`;
  return `${what} failed under measurement (error ${errorCode ?? 'unknown'})`;
}

/** What measuring a held statement needs of the MySQL session. */
export interface MysqlImpactSession {
  /** Resolves once no answer the session's commands are owed is outstanding. */
  whenQuiet(): Promise<void>;
  /** Sends commands of the proxy's own; their answers never reach the client. */
  run: MysqlLink['run'];
  runBound: MysqlLink['runBound'];
  inTransaction(): boolean;
  readonly catalog: MysqlTableCatalog | undefined;
  readonly database: string;
  readonly mariadb: boolean;
  /** The measurement changed the session's counters: row counting reads them anew. */
  countersMoved(): void;
  /** The transaction could not be put back: the session ends (which rolls it back). */
  lost(): void;
  closed(): boolean;
}

/**
 * Measures a held text's impact on the session's own connection, once nothing else is in flight;
 * `parameters` for an execution of a prepared statement, measured with the values it binds.
 */
export async function measureMysqlHeld(
  session: MysqlImpactSession,
  sql: string,
  facts: StatementFacts | undefined,
  parameters?: BoundParameters,
): Promise<Measured> {
  if (!facts) return {};
  const plan = mysqlImpactPlan(sql, facts, session.catalog, session.database, session.mariadb);
  if (plan.measure === 'nothing') return {};
  if (plan.measure === 'impossible') return { notMeasured: plan.reason };
  await session.whenQuiet();
  if (session.closed()) return { notMeasured: 'the session ended' };
  const result = await measureMysqlImpact(
    session,
    plan,
    sql,
    session.inTransaction(),
    session.database,
    parameters,
  );
  session.countersMoved();
  if (!result.intact) {
    session.lost();
    return { notMeasured: 'the measurement could not restore the transaction' };
  }
  return result.measured;
}
