import mysql from 'mysql2';
import type { McpTool } from '../policy/mcp-tools.ts';
import { MASKED_CATALOG, REPORT_MASKING_ATTRIBUTE } from '../protocol/mysql/masking-report.ts';
import { type Cell, type ResultBounds, ResultCollector } from './bound-results.ts';
import { MYSQL_DIALECT } from './dialects.ts';
import {
  type AgentCredentials,
  isInProcess,
  loginOf,
  type Outcome,
  type ProxyClient,
  ProxyLoginError,
  type ProxyRoute,
  type ProxySession,
  sqlstateOf,
  toolsAllowed,
} from './proxy-session.ts';

/** MySQL's character set number of binary strings (and of every number). */
const BINARY_CHARSET = 63;
/** Column types whose bytes are a string: shown as hex when the charset is binary. */
const STRING_TYPES = new Set([15, 16, 249, 250, 251, 252, 253, 254, 255]);
/** The proxy refused it: a guardrail (ER_TABLEACCESS_DENIED_ERROR) or a grant (ER_SPECIFIC_ACCESS_DENIED_ERROR). */
const POLICY_ERRNOS = new Set([1142, 1227]);

/**
 * Opens one connection to the Gatehouse proxy per tool call, as the agent, over the MySQL protocol
 * (mysql2): the proxy authenticates it, judges, masks and audits each statement as for `mysql`. The
 * `program_name` attribute names the tool (`gatehouse-mcp/query`), which the audit records keep;
 * `gatehouse.report_masking` asks the proxy to mark the columns it masks (describe_table).
 */
export class MysqlProxyClient implements ProxyClient {
  readonly dialect = MYSQL_DIALECT;
  readonly #route: ProxyRoute;
  readonly #credentials: AgentCredentials;

  constructor(route: ProxyRoute, credentials: AgentCredentials) {
    this.#route = route;
    this.#credentials = credentials;
  }

  toolsAllowed(): Promise<ReadonlySet<McpTool> | undefined> {
    return toolsAllowed(this.#route, this.#credentials);
  }

  async withSession<T>(tool: McpTool, run: (session: ProxySession) => Promise<T>): Promise<T> {
    const { user, password } = loginOf(this.#credentials);
    const route = this.#route;
    const connection = mysql.createConnection({
      // In process, the proxy knows the tool from the connection it was handed (in-process-channel.ts).
      ...(isInProcess(route)
        ? { stream: () => route.connect(tool) }
        : { host: route.host, port: route.port, ...(route.ca && { ssl: { ca: route.ca } }) }),
      user,
      password,
      // The proxy asks for the password in clear (over TLS, or on loopback): a token must reach it whole.
      enableCleartextPlugin: true,
      connectTimeout: 15_000,
      // Only execute takes several statements in one text; for the other tools the server itself
      // refuses a second statement, whatever the analysers read.
      multipleStatements: tool === 'execute',
      connectAttributes: { program_name: `gatehouse-mcp/${tool}`, [REPORT_MASKING_ATTRIBUTE]: 'on' },
    });
    // A connection the proxy ends (shutdown, a refusal at login) must not crash the server.
    connection.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) =>
        connection.connect((error) => (error ? reject(error) : resolve())),
      );
    } catch (error) {
      connection.destroy();
      const e = error as { sqlState?: string; message?: string; errno?: number };
      throw new ProxyLoginError(
        e.message ?? String(error),
        sqlstateOf(e.sqlState),
        e.errno !== undefined && POLICY_ERRNOS.has(e.errno),
      );
    }
    const session = new MysqlSession(connection);
    try {
      return await run(session);
    } finally {
      session.close();
    }
  }
}

class MysqlSession implements ProxySession {
  readonly #connection: mysql.Connection;
  #closed = false;
  /** Set when a result was cut: the rest was not read, so the connection cannot carry another command. */
  #abandoned = false;
  #keep: Promise<unknown> | undefined;

  constructor(connection: mysql.Connection) {
    this.#connection = connection;
  }

  statement(sql: string, values: readonly unknown[], bounds: ResultBounds): Promise<Outcome> {
    return this.#run(sql, values, bounds);
  }

  text(sql: string, bounds: ResultBounds): Promise<Outcome> {
    return this.#run(sql, [], bounds);
  }

  async control(sql: string): Promise<Outcome | undefined> {
    // After a cut result the connection is closed instead: that rolls the transaction back too.
    if (this.#abandoned) return undefined;
    const outcome = await this.#run(sql, [], { maxRows: 0, maxBytes: 0, maxCellChars: 0 });
    return outcome.ok ? undefined : outcome;
  }

  // MySQL sends no notices: a held statement's tool call waits for the decision (or the proxy's wait).
  noticeMatching(): Promise<string> {
    return new Promise(() => undefined);
  }

  keepOpenUntil(pending: Promise<unknown>): void {
    this.#keep = pending;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const end = () => {
      if (this.#abandoned) this.#connection.destroy();
      else this.#connection.end(() => undefined);
    };
    if (this.#keep) void this.#keep.finally(end);
    else end();
  }

  /**
   * One text, rows read as they come and converted to text cells; the last result is the answer.
   * Once a bound is met the rest is not read: MySQL cannot stop a result midway, so the connection
   * is abandoned (closed at the end of the tool call) rather than drained.
   */
  #run(sql: string, values: readonly unknown[], bounds: ResultBounds): Promise<Outcome> {
    return new Promise((resolve) => {
      let collector: ResultCollector | undefined;
      let fields: mysql.FieldPacket[] = [];
      let affected: number | undefined;
      let settled = false;
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        resolve(outcome);
      };
      const success = (): Outcome => ({
        ok: true,
        result: (collector ?? new ResultCollector([], bounds)).result(),
        command: commandOf(sql, affected),
        notices: [],
        masked: fields.filter((f) => f.catalog === MASKED_CATALOG).map((f) => f.name),
      });
      const query = this.#connection.query({
        sql,
        values: values.length > 0 ? [...values] : undefined,
        rowsAsArray: true,
        // Every cell as the bytes the proxy sent: masked stand-ins are shown as they are, nothing parsed.
        typeCast: (field: { buffer(): Buffer | null }) => field.buffer(),
      } as mysql.QueryOptions);
      query.on('fields', (received?: mysql.FieldPacket[]) => {
        if (!received) return;
        fields = received;
        collector = new ResultCollector(
          received.map((f) => f.name),
          bounds,
        );
        affected = undefined;
      });
      query.on('result', (row: unknown) => {
        if (settled) return;
        if (!Array.isArray(row)) {
          affected = (row as { affectedRows?: number }).affectedRows;
          return;
        }
        if (collector?.add(row.map((cell, i) => textOf(cell as Buffer | null, fields[i]))) === false) {
          this.#abandoned = true;
          this.#connection.pause();
          finish(success());
        }
      });
      query.on('error', (error: Error & { errno?: number; sqlState?: string }) => {
        const sqlstate = sqlstateOf(error.sqlState);
        finish({
          ok: false,
          ...(sqlstate && { sqlstate }),
          ...(error.errno !== undefined && { errno: error.errno }),
          message: error.message,
          policy: error.errno !== undefined && POLICY_ERRNOS.has(error.errno),
          notices: [],
        });
      });
      query.on('end', () => finish(success()));
    });
  }
}

function textOf(cell: Buffer | null, field: mysql.FieldPacket | undefined): Cell {
  if (cell === null) return null;
  const f = field as { characterSet?: number; columnType?: number } | undefined;
  if (f?.characterSet === BINARY_CHARSET && STRING_TYPES.has(f.columnType ?? -1))
    return `0x${cell.toString('hex')}`;
  return cell.toString('utf8');
}

/** `SELECT`, `UPDATE (3 rows affected)`: the statement's first word, as PostgreSQL's command tag reads. */
function commandOf(sql: string, affected: number | undefined): string | undefined {
  const word = /^\s*(?:\/\*.*?\*\/\s*)*([A-Za-z]+)/s.exec(sql)?.[1]?.toUpperCase();
  if (!word) return undefined;
  return affected === undefined ? word : `${word} (${affected} row${affected === 1 ? '' : 's'} affected)`;
}
