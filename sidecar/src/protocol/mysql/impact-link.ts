import { type ColumnType, columnType } from './binary-cells.ts';
import { Command, ServerStatus } from './constants.ts';
import type { MysqlExchange } from './exchange.ts';
import { PayloadWriter, packet } from './packet-io.ts';
import type { ResultEnd } from './response-tracker.ts';

/**
 * The proxy's own commands on a session's connection, for measuring a held statement: their answers
 * never reach the client. A text statement runs as a COM_QUERY; a held execution of a prepared
 * statement runs as a statement of the proxy's own, prepared, executed once with the client's bound
 * parameters and closed, so the client's statement ids and the parameters bound to them stay as
 * they were.
 */

/** One command of the proxy's own, answered: its rows and the status after it. */
export interface MysqlAnswer {
  readonly ok: boolean;
  readonly errorCode?: number | undefined;
  /** Why it did not run, when no server error says so. */
  readonly failure?: string;
  /** Text-protocol rows, or binary-protocol rows when `columns` are given. */
  readonly rows: readonly Buffer[];
  /** The result's column types, for binary-protocol rows. */
  readonly columns?: readonly ColumnType[];
  /** Whether a transaction is open after it (SERVER_STATUS_IN_TRANS). */
  readonly inTransaction: boolean;
}

/** A COM_STMT_EXECUTE's parameters as its client bound them. */
export interface BoundParameters {
  /** How many the statement has. */
  readonly count: number;
  /** The execution's bytes after its iteration count: the null bitmap, new-params-bound 1 with the types, the values. */
  readonly block: Buffer;
}

export interface MysqlLink {
  run(sql: string): Promise<MysqlAnswer>;
  /** Prepares `sql`, executes it once with `parameters`, and closes it. */
  runBound(sql: string, parameters: BoundParameters): Promise<MysqlAnswer>;
}

type Send = (bytes: Buffer) => void;

const inTransaction = (exchange: MysqlExchange) => (exchange.status & ServerStatus.IN_TRANS) !== 0;

/** Runs one COM_QUERY of the proxy's own on the session's connection, its answer kept from the client. */
export function proxyCommand(exchange: MysqlExchange, send: Send): MysqlLink['run'] {
  return (sql) =>
    new Promise((resolve) => {
      const rows: Buffer[] = [];
      exchange.owe('IMPACT', {
        onRow: (row) => rows.push(Buffer.from(row)),
        onDone: (end) => resolve(answer(exchange, end, rows)),
      });
      send(packet(Buffer.concat([Buffer.of(Command.QUERY), Buffer.from(sql, 'utf8')]), 0));
    });
}

/**
 * Runs `sql` as a prepared statement of the proxy's own with a client's bound parameters: the server
 * reads the same bytes with the same types as it would for the client's execution.
 */
export function proxyBound(exchange: MysqlExchange, send: Send): MysqlLink['runBound'] {
  return async (sql, parameters) => {
    const prepared = await new Promise<{ id: number; params: number } | MysqlAnswer>((resolve) => {
      let ok: { id: number; params: number } | undefined;
      exchange.owe(
        'IMPACT',
        {
          onPrepared: (p) => {
            ok = { id: p.statementId, params: p.params };
          },
          // Without EOF packets the answer may end on a definition, with no end of its own.
          onDone: (end) => resolve(ok ?? answer(exchange, end, [])),
        },
        'prepare',
      );
      send(packet(Buffer.concat([Buffer.of(Command.STMT_PREPARE), Buffer.from(sql, 'utf8')]), 0));
    });
    if ('ok' in prepared) return prepared;
    const close = packet(new PayloadWriter().u8(Command.STMT_CLOSE).u32(prepared.id).build(), 0);
    if (prepared.params !== parameters.count) {
      send(close);
      return {
        ok: false,
        failure: `prepared again it has ${prepared.params} parameters, not ${parameters.count}`,
        rows: [],
        inTransaction: inTransaction(exchange),
      };
    }
    return new Promise((resolve) => {
      const rows: Buffer[] = [];
      const columns: ColumnType[] = [];
      exchange.owe('IMPACT', {
        onDefinition: (definition) => columns.push(columnType(definition)),
        onRow: (row) => rows.push(Buffer.from(row)),
        onDone: (end) => resolve({ ...answer(exchange, end, rows), columns }),
      });
      // Flags 0 (no cursor), one iteration; COM_STMT_CLOSE has no answer.
      const execute = new PayloadWriter().u8(Command.STMT_EXECUTE).u32(prepared.id).u8(0).u32(1).build();
      send(Buffer.concat([packet(Buffer.concat([execute, parameters.block]), 0), close]));
    });
  };
}

function answer(exchange: MysqlExchange, end: ResultEnd | undefined, rows: Buffer[]): MysqlAnswer {
  return { ok: end?.ok ?? false, errorCode: end?.errorCode, rows, inTransaction: inTransaction(exchange) };
}
