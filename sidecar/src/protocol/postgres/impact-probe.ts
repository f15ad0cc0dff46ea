import { explainedRows, type ImpactPlan, type Measured } from '../../approvals/impact-plan.ts';
import { BackendMessageReader } from './backend-message-reader.ts';
import { Backend, encodeMessage, Frontend } from './codes.ts';
import { transactionStatus } from './message-fields.ts';
import { checkColumn, checkQuery } from './row-check.ts';
import { readErrorFields } from './upstream-error.ts';
import { dataRowValues } from './upstream-query.ts';

/**
 * What the approver of a held PostgreSQL statement is shown, measured on the requester's own
 * connection while its client waits (so its search_path, its transaction and its privileges are the
 * ones the statement would run with):
 *
 *   BEGIN, or SAVEPOINT inside the client's transaction; SET LOCAL statement_timeout and lock_timeout
 *   ─► rows: EXPLAIN (FORMAT JSON), then the statement followed by the row check's count query
 *      (row-check.ts), whose difference from the count before is what it changed, its triggers and
 *      cascades included; dependents: one catalog query
 *   ─► ROLLBACK, or ROLLBACK TO SAVEPOINT and RELEASE: whatever happened, nothing is kept.
 *
 * Each step is its own Query, so a failure is always followed by the rollback, and the transaction
 * status after it must be the one before, or the session is not intact (and is ended).
 */

/** The longest each measuring statement may run (statement_timeout). */
export const MEASURE_TIMEOUT_MS = 3_000;
/** The longest it may wait for a lock (lock_timeout), so that a lock wait is told apart. */
const LOCK_TIMEOUT_MS = 2_000;
const SAVEPOINT = 'gatehouse_impact';
/** The most dependents listed; past it the list says there are more. */
const MAX_DEPENDENTS = 50;
const MAX_MESSAGE = 64 * 1024 * 1024;

/** One simple-protocol Query's answer: each result's columns and text values, or its first error. */
export interface QueryAnswer {
  readonly results: readonly { readonly columns: readonly string[]; readonly rows: (string | null)[][] }[];
  /** The SQLSTATE of the first error (never its text, which may quote values). */
  readonly error?: string;
  readonly status: 'I' | 'T' | 'E';
}

/** The session's upstream, while the proxy's own queries run on it. */
export interface ProbeLink {
  query(sql: string): Promise<QueryAnswer>;
}

export interface ProbeResult {
  readonly measured: Measured;
  /** Rows the measurement changed and rolled back inside the client's transaction (its statistics keep them). */
  readonly rolledBackRows: number;
  /** False when the transaction status after differs from before: the session cannot go on. */
  readonly intact: boolean;
}

export async function measurePostgresImpact(
  link: ProbeLink,
  plan: ImpactPlan,
  sql: string,
  status: 'I' | 'T' | 'E',
): Promise<ProbeResult> {
  const done = (measured: Measured, rolledBackRows = 0, intact = true) => ({
    measured,
    rolledBackRows,
    intact,
  });
  if (plan.measure === 'nothing') return done({});
  if (plan.measure === 'impossible') return done(notMeasured(plan, plan.reason));
  if (status === 'E')
    return done(notMeasured(plan, "the session's transaction has failed; it must be rolled back first"));
  const inTransaction = status === 'T';
  const opener = inTransaction ? `SAVEPOINT ${SAVEPOINT}` : 'BEGIN';
  const closer = inTransaction
    ? `ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`
    : 'ROLLBACK';
  const before = checkColumn();
  const setup = [
    opener,
    `SET LOCAL statement_timeout = ${MEASURE_TIMEOUT_MS}`,
    `SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}`,
    ...(plan.measure === 'rows' ? [checkQuery(before, '(-1)::pg_catalog.int8')] : []),
  ].join(';\n');
  const opened = await link.query(setup);
  // BEGIN or SAVEPOINT did not take: nothing was opened, nothing is to be closed.
  if (opened.status === status && !inTransaction)
    return done(notMeasured(plan, failure('opening the measurement', opened.error)));
  let measured: Measured;
  if (opened.status !== 'T') measured = notMeasured(plan, failure('opening the measurement', opened.error));
  else if (plan.measure === 'rows')
    measured = await measureRows(link, plan.explain, sql, firstValue(opened, before));
  else measured = await listDependents(link, plan.targets);
  const closed = await link.query(closer);
  const intact = closed.status === status && closed.error === undefined;
  const rows = measured.affectedRows ?? 0;
  return done(measured, inTransaction ? rows : 0, intact);
}

async function measureRows(
  link: ProbeLink,
  explain: boolean,
  sql: string,
  before: string | undefined,
): Promise<Measured> {
  let estimatedRows: number | undefined;
  if (explain) {
    const plan = await link.query(`EXPLAIN (FORMAT JSON) ${sql}`);
    const json = plan.results[0]?.rows[0]?.[0];
    if (plan.status !== 'T') return { notMeasured: failure('the planner', plan.error) };
    estimatedRows = json == null ? undefined : explainedRows(json);
  }
  const estimate = estimatedRows === undefined ? {} : { estimatedRows };
  const after = checkColumn();
  // The newline ends a trailing `--` comment; only texts that parse are measured (impact-plan.ts).
  const ran = await link.query(`${sql}\n;${checkQuery(after, '(-1)::pg_catalog.int8')}`);
  if (ran.status !== 'T') return { ...estimate, notMeasured: failure('the statement', ran.error) };
  const start = Number(before);
  const end = Number(firstValue(ran, after));
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end))
    return { ...estimate, notMeasured: 'the row counts could not be read' };
  if (start < 0 || end < 0)
    return { ...estimate, notMeasured: 'the database does not count changed rows (track_counts is off)' };
  return { ...estimate, affectedRows: Math.max(0, end - start) };
}

async function listDependents(link: ProbeLink, targets: readonly string[]): Promise<Measured> {
  const answer = await link.query(dependentsQuery(targets));
  if (answer.status !== 'T' || !answer.results[0]) return {};
  const rows = answer.results[0].rows;
  const dependents = rows.slice(0, MAX_DEPENDENTS).map(([kind, name]) => `${kind} ${name}`);
  if (rows.length > MAX_DEPENDENTS) dependents.push(`… and more (over ${MAX_DEPENDENTS})`);
  return { dependents };
}

function notMeasured(plan: ImpactPlan, reason: string): Measured {
  // Only a change of rows is "not measured": a DDL statement's dependents are listed when they can be.
  return plan.measure === 'dependents' ? {} : { notMeasured: reason };
}

function failure(what: string, sqlstate: string | undefined): string {
  if (sqlstate === '57014')
    return `${what} was cancelled, or ran past the measurement's ${MEASURE_TIMEOUT_MS} ms time limit`;
  if (sqlstate === '55P03')
    return `${what} waited for a lock past the measurement's ${LOCK_TIMEOUT_MS} ms limit`;
  return `${what} failed under measurement (SQLSTATE ${sqlstate ?? 'unknown'})`;
}

/** The first value of the result whose first column is `column`. */
function firstValue(answer: QueryAnswer, column: string): string | undefined {
  return answer.results.find((r) => r.columns[0] === column)?.rows[0]?.[0] ?? undefined;
}

/**
 * The objects that depend on each target (as the statement wrote it, resolved by the session's own
 * search_path): views and materialized views over it, foreign keys that reference it, functions
 * that use its row type or name it in a SQL-standard body, and its triggers. Every operator and type
 * is schema-qualified and every name travels as hex, so neither a search_path nor a quote in a name
 * changes what it asks.
 */
export function dependentsQuery(targets: readonly string[]): string {
  const op = (o: string) => `OPERATOR(pg_catalog.${o})`;
  const regclass = (oid: string) => `${oid}::pg_catalog.regclass::pg_catalog.text`;
  const names = targets
    .map(
      (t) =>
        `pg_catalog.convert_from(pg_catalog.decode('${Buffer.from(t, 'utf8').toString('hex')}', 'hex'), 'UTF8')`,
    )
    .join(', ');
  const cls = `'pg_catalog.pg_class'::pg_catalog.regclass`;
  return `WITH target AS (SELECT c.oid, c.reltype FROM pg_catalog.pg_class c
 WHERE c.oid ${op('=')} ANY (SELECT pg_catalog.to_regclass(n)::pg_catalog.oid FROM pg_catalog.unnest(ARRAY[${names}]::pg_catalog.text[]) AS n))
SELECT DISTINCT kind, name FROM (
 SELECT CASE WHEN v.relkind ${op('=')} 'm' THEN 'materialized view' ELSE 'view' END AS kind, ${regclass('v.oid')} AS name
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w ON w.oid ${op('=')} d.objid
  JOIN pg_catalog.pg_class v ON v.oid ${op('=')} w.ev_class JOIN target t ON d.refobjid ${op('=')} t.oid
  WHERE d.classid ${op('=')} 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid ${op('=')} ${cls} AND v.oid ${op('<>')} t.oid
 UNION ALL
 SELECT 'foreign key', c.conname::pg_catalog.text ${op('||')} ' on ' ${op('||')} ${regclass('c.conrelid')}
  FROM pg_catalog.pg_constraint c JOIN target t ON c.confrelid ${op('=')} t.oid
  WHERE c.contype ${op('=')} 'f' AND c.conrelid ${op('<>')} t.oid
 UNION ALL
 SELECT 'function', p.oid::pg_catalog.regprocedure::pg_catalog.text
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid ${op('=')} d.objid JOIN target t
  ON (d.refclassid ${op('=')} ${cls} AND d.refobjid ${op('=')} t.oid)
  OR (d.refclassid ${op('=')} 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refobjid ${op('=')} t.reltype)
  WHERE d.classid ${op('=')} 'pg_catalog.pg_proc'::pg_catalog.regclass
 UNION ALL
 SELECT 'trigger', g.tgname::pg_catalog.text ${op('||')} ' on ' ${op('||')} ${regclass('g.tgrelid')}
  FROM pg_catalog.pg_trigger g JOIN target t ON g.tgrelid ${op('=')} t.oid WHERE NOT g.tgisinternal
) s ORDER BY 1, 2 LIMIT ${MAX_DEPENDENTS + 1}`;
}

/**
 * The session's upstream socket while a measurement runs: the client is held and nothing of its is in
 * flight, so every server message until the last ReadyForQuery answers the proxy's own queries. Async
 * messages pass to `aside` (notifications, parameter reports); notices of the measured statement are
 * dropped.
 */
export class SessionProbe implements ProbeLink {
  private reader = new BackendMessageReader(MAX_MESSAGE);
  private readonly write: (bytes: Buffer) => void;
  private readonly aside: (type: number, frame: Buffer) => void;
  private current:
    | {
        answer: { results: QueryAnswer['results'][number][]; error?: string };
        done: (a: QueryAnswer) => void;
        fail: (e: Error) => void;
      }
    | undefined;

  constructor(write: (bytes: Buffer) => void, aside: (type: number, frame: Buffer) => void) {
    this.write = write;
    this.aside = aside;
  }

  query(sql: string): Promise<QueryAnswer> {
    return new Promise((resolve, reject) => {
      this.current = { answer: { results: [] }, done: resolve, fail: reject };
      this.write(encodeMessage(Frontend.Query, Buffer.from(`${sql}\0`, 'utf8')));
    });
  }

  /** The server's bytes; what is left past the answer to the last query goes back to the session. */
  push(chunk: Buffer): Buffer | undefined {
    this.reader.push(chunk);
    // Between the proxy's queries nothing is owed: what comes then is the session's (a notification).
    for (let current = this.current; current; current = this.current) {
      const frame = this.reader.next();
      if (!frame) return undefined;
      const whole = encodeMessage(frame.type, frame.body);
      const results = current.answer.results;
      if (frame.type === Backend.NotificationResponse || frame.type === Backend.ParameterStatus)
        this.aside(frame.type, whole);
      else if (frame.type === Backend.RowDescription)
        results.push({ columns: columnNames(frame.body), rows: [] });
      else if (frame.type === Backend.DataRow)
        results[results.length - 1]?.rows.push(dataRowValues(frame.body));
      else if (frame.type === Backend.ErrorResponse)
        current.answer.error ??= readErrorFields(frame.body).sqlstate;
      else if (frame.type === Backend.ReadyForQuery) {
        this.current = undefined;
        current.done({ ...current.answer, status: transactionStatus(whole) });
      }
    }
    // Handed back once: the session's scanner reads them from here on.
    const rest = this.reader.remainder();
    this.reader = new BackendMessageReader(MAX_MESSAGE);
    return rest;
  }

  /** The connection failed or timed out while a query was outstanding. */
  fail(error: Error): void {
    const current = this.current;
    this.current = undefined;
    current?.fail(error);
  }
}

function columnNames(body: Buffer): string[] {
  const names: string[] = [];
  let offset = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const end = body.indexOf(0, offset);
    names.push(body.toString('utf8', offset, end));
    offset = end + 1 + 18;
  }
  return names;
}
