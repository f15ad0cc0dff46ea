import { randomBytes } from 'node:crypto';
import { parseTree } from '../../sql/parse-tree.ts';
import { encodeMessage, Frontend } from './codes.ts';

/**
 * The server-side half of Guardrail row limits on PostgreSQL: a query the proxy runs right after a
 * statement that may change rows, in the same transaction and before anything can commit. It reads
 * the transaction's own statistics (rows updated and deleted in user tables, whatever changed them:
 * the statement, its triggers, foreign-key cascades, functions, rolled-back subtransactions) and
 * raises an error when the count is over the cap, which aborts the transaction. The proxy never
 * decides after the fact: the database refuses before the commit, so no round trip is added.
 *
 * Everything is schema-qualified (functions, operators, types) so nothing a user puts on the
 * search_path changes it. The error comes from casting a text that contains the count to int8: it
 * depends on the counted value, so the planner cannot fold it into an error that fires every time.
 * With track_counts off the statistics are empty: an enforcing check fails then too.
 */
export function checkQuery(column: string, cap: string): string {
  const q = (op: string) => `OPERATOR(pg_catalog.${op})`;
  return [
    `SELECT CASE WHEN pg_catalog.current_setting('track_counts') ${q('<>')} 'on' THEN`,
    ` CASE WHEN ${cap} ${q('>=')} 0 THEN ('${TRACK_COUNTS_OFF} ' ${q('||')} n)::pg_catalog.int8 ELSE -1 END`,
    ` WHEN ${cap} ${q('>=')} 0 AND n ${q('>')} ${cap} THEN ('${OVER_CAP} ' ${q('||')} n)::pg_catalog.int8`,
    ` ELSE n END AS "${column}"`,
    ' FROM (SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)',
    ` ${q('+')} pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)), 0)::pg_catalog.int8 AS n`,
    // User tables: catalog rows that DDL changes are not the user's rows (TOAST rows are relkind t).
    ` FROM pg_catalog.pg_class c WHERE c.relkind ${q('=')} ANY ('{r,m,p}'::pg_catalog."char"[])`,
    ` AND c.relnamespace ${q('<>')} 11::pg_catalog.oid) s,`,
    // The counts of a transaction that ended stay in the backend until it flushes them, at most once a
    // second: flushed when the session next goes idle, they are not counted again in its next one.
    ' (SELECT pg_catalog.pg_stat_force_next_flush()) f',
  ].join('\n');
}

const OVER_CAP = 'Gatehouse row limit: count';
const TRACK_COUNTS_OFF = 'Gatehouse row limit: track_counts is off, count';

/**
 * A check's result column, unguessable before the text that carries it is sent: a client cannot
 * spell a result the proxy would take for the check's.
 */
export function checkColumn(): string {
  return `gatehouse_rows_${randomBytes(9).toString('hex')}`;
}

/** Cap for `checkQuery`: -1 measures without refusing (warn and dryRun limits only). */
function capLiteral(cap: number | undefined): string {
  return cap === undefined ? '(-1)::pg_catalog.int8' : `(${Math.max(0, Math.floor(cap))})::pg_catalog.int8`;
}

/**
 * A client's Query text with the check after it, so both run in one implicit transaction (or the
 * client's own). The newline ends a trailing `--` comment. Only texts that parse are measured, so no
 * open literal or comment can swallow the check.
 */
export function withRowCheck(sql: string, column: string, cap: number | undefined, before?: number): Buffer {
  const check = checkQuery(column, capLiteral(cap));
  if (before === undefined) return encodeMessage(Frontend.Query, Buffer.from(`${sql}\n;${check}\0`, 'utf8'));
  // Before the text's final COMMIT (a byte offset: where the parser says that statement starts, right
  // after the semicolon that ends the one before), so the check runs before anything can commit.
  const bytes = Buffer.from(sql, 'utf8');
  return encodeMessage(
    Frontend.Query,
    Buffer.concat([
      bytes.subarray(0, before),
      Buffer.from(`\n${check};\n`, 'utf8'),
      bytes.subarray(before),
      Buffer.from([0]),
    ]),
  );
}

/**
 * The extended-protocol check, sent right after the client's Execute: Parse, Bind, Execute and Close
 * of a statement whose name is new each time. A name used once cannot be learnt (pg_prepared_statements)
 * and replaced by the client before it is run: nothing of the client's runs between the Parse and the
 * Execute. The portal goes with the statement's Close.
 */
export function rowCheckMessages(cap: number | undefined): { messages: Buffer; statement: string } {
  const statement = checkColumn();
  const column = 'n';
  const parse = Buffer.concat([
    Buffer.from(`${statement}\0${checkQuery(column, '$1')}\0`, 'utf8'),
    int16(1),
    int32(INT8_OID),
  ]);
  const value = Buffer.from(String(cap === undefined ? -1 : Math.max(0, Math.floor(cap))), 'utf8');
  const bind = Buffer.concat([
    Buffer.from(`${statement}\0${statement}\0`, 'utf8'),
    int16(0),
    int16(1),
    int32(value.length),
    value,
    int16(0),
  ]);
  const execute = Buffer.concat([Buffer.from(`${statement}\0`, 'utf8'), int32(0)]);
  const close = Buffer.from(`S${statement}\0`, 'utf8');
  return {
    messages: Buffer.concat([
      encodeMessage(Frontend.Parse, parse),
      encodeMessage(Frontend.Bind, bind),
      encodeMessage(Frontend.Execute, execute),
      encodeMessage(Frontend.Close, close),
    ]),
    statement,
  };
}

/**
 * Where the text's last statement starts, as a byte offset into its UTF-8 form; undefined when the
 * text does not parse into two statements or more.
 */
export function lastStatementStart(sql: string): number | undefined {
  const stmts = parseTree(sql);
  if (typeof stmts === 'string' || stmts.length < 2) return undefined;
  const start = stmts[stmts.length - 1]!.stmt_location;
  return typeof start === 'number' && start > 0 ? start : undefined;
}

/** The count in a check's DataRow (one text column); undefined if it is not one. */
export function checkCount(dataRow: Buffer): number | undefined {
  if (dataRow.length < 11 || dataRow.readInt16BE(5) !== 1) return undefined;
  const length = dataRow.readInt32BE(7);
  if (length < 0 || 11 + length > dataRow.length) return undefined;
  const value = Number(dataRow.toString('latin1', 11, 11 + length));
  return Number.isSafeInteger(value) ? value : undefined;
}

/** What a check's error says: the count over the cap, track_counts off, or nothing (another error). */
export function checkFailure(message: string): { count?: number; trackCountsOff?: boolean } {
  const off = message.includes(TRACK_COUNTS_OFF);
  const match = /Gatehouse row limit: [^"]*count (\d+)/.exec(message);
  const count = match ? Number(match[1]) : undefined;
  return {
    ...(count !== undefined && Number.isSafeInteger(count) && { count }),
    ...(off && { trackCountsOff: true }),
  };
}

/** The first column name of a RowDescription. */
export function firstColumnName(rowDescription: Buffer): string | undefined {
  if (rowDescription.length < 8 || rowDescription.readInt16BE(5) < 1) return undefined;
  const end = rowDescription.indexOf(0, 7);
  return end < 0 ? undefined : rowDescription.toString('utf8', 7, end);
}

const INT8_OID = 20;

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}
