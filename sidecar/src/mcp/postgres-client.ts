import pg from 'pg';
import Cursor from 'pg-cursor';
import type { McpTool } from '../policy/mcp-tools.ts';
import { MASKING_REPORT_PREFIX, REPORT_MASKING_PARAMETER } from '../protocol/postgres/masking-report.ts';
import { type Cell, type ResultBounds, ResultCollector } from './bound-results.ts';
import { POSTGRES_DIALECT } from './dialects.ts';
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

const BATCH_ROWS = 50;
// Every cell as the text the proxy sent: masked stand-ins are shown as they are, nothing is parsed.
const TEXT_ONLY = { getTypeParser: () => (value: string) => value };

/**
 * Opens one connection to the Gatehouse proxy per tool call, as the agent, over the PostgreSQL wire
 * protocol: the proxy authenticates it, judges, masks and audits each statement exactly as for psql.
 * `application_name` names the tool (`gatehouse-mcp/query`), which the audit records keep as the
 * client's declaration; handed in process, the proxy also knows the tool itself (`mcpTool`).
 */
export class PostgresProxyClient implements ProxyClient {
  readonly dialect = POSTGRES_DIALECT;
  readonly #route: ProxyRoute;
  readonly #credentials: AgentCredentials;

  constructor(route: ProxyRoute, credentials: AgentCredentials) {
    this.#route = route;
    this.#credentials = credentials;
  }

  toolsAllowed(): Promise<ReadonlySet<McpTool> | undefined> {
    return toolsAllowed(this.#route, this.#credentials);
  }

  /**
   * Runs `run` on a fresh session; the session is closed afterwards, so no transaction, setting or
   * prepared statement carries over from one tool call to the next.
   */
  async withSession<T>(tool: McpTool, run: (session: ProxySession) => Promise<T>): Promise<T> {
    const { user, password } = loginOf(this.#credentials);
    const route = this.#route;
    const client = new ReportingClient({
      ...(isInProcess(route)
        ? { stream: () => route.connect(tool) }
        : {
            host: route.host,
            port: route.port,
            ...(route.ca && { ssl: { ca: route.ca, servername: route.host } }),
          }),
      user,
      password,
      database: 'gatehouse',
      application_name: `gatehouse-mcp/${tool}`,
      connectionTimeoutMillis: 15_000,
    });
    const session = new PostgresSession(client);
    client.on('notice', (notice) => session.notice(notice.message ?? ''));
    // A connection the proxy ends (shutdown, a FATAL) must not crash the server.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      client.end().catch(() => undefined);
      const e = error as { code?: string; message?: string };
      throw new ProxyLoginError(e.message ?? String(error), sqlstateOf(e.code), e.code === '42501');
    }
    try {
      return await run(session);
    } finally {
      session.close();
    }
  }
}

/**
 * node-postgres with one more startup parameter: the proxy then tells which columns each statement
 * masked for this identity (sidecar/src/protocol/postgres/masking-report.ts), for describe_table.
 */
class ReportingClient extends pg.Client {
  getStartupConf(): Record<string, string> {
    const base = (pg.Client.prototype as unknown as { getStartupConf(): Record<string, string> })
      .getStartupConf;
    return { ...base.call(this), [REPORT_MASKING_PARAMETER]: 'on' };
  }
}

class PostgresSession implements ProxySession {
  readonly notices: string[] = [];
  readonly #client: pg.Client;
  #closed = false;
  #keep: Promise<unknown> | undefined;

  readonly #noticeWaiters: ((text: string) => void)[] = [];

  constructor(client: pg.Client) {
    this.#client = client;
  }

  /** Masking reports since the statement began (masking-report.ts): kept apart from the notices. */
  #maskReports: string[] = [];

  notice(text: string): void {
    if (text.startsWith(MASKING_REPORT_PREFIX)) {
      this.#maskReports.push(text);
      return;
    }
    this.notices.push(text);
    for (const waiter of this.#noticeWaiters) waiter(text);
  }

  /** Resolves with the first notice (past or future) that `test` accepts. */
  noticeMatching(test: (text: string) => boolean): Promise<string> {
    const seen = this.notices.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#noticeWaiters.push((text) => test(text) && resolve(text)));
  }

  /** One statement through the extended protocol, its rows read only up to the bounds. */
  async statement(sql: string, values: readonly unknown[], bounds: ResultBounds): Promise<Outcome> {
    this.#maskReports = [];
    const cursor = this.#client.query(
      new Cursor(sql, values.length > 0 ? [...values] : undefined, { rowMode: 'array', types: TEXT_ONLY }),
    );
    try {
      let collector: ResultCollector | undefined;
      let command: string | undefined;
      for (;;) {
        const { rows, result } = await read(cursor, BATCH_ROWS);
        collector ??= new ResultCollector(
          (result.fields ?? []).map((f) => f.name),
          bounds,
        );
        command = result.command ?? command;
        if (rows.length === 0) break;
        if (!rows.every((row) => collector!.add(row as Cell[]))) break;
        if (rows.length < BATCH_ROWS) break;
      }
      return {
        ok: true,
        result: collector!.result(),
        ...(command && { command }),
        notices: this.notices,
        masked: maskedColumns(this.#maskReports),
      };
    } catch (error) {
      return this.#failure(error);
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }

  /** A text of any number of statements through the simple protocol (execute's multi-statement texts). */
  async text(sql: string, bounds: ResultBounds): Promise<Outcome> {
    try {
      const answer = (await this.#client.query({ text: sql, rowMode: 'array', types: TEXT_ONLY })) as
        | pg.QueryArrayResult
        | pg.QueryArrayResult[];
      const last = Array.isArray(answer) ? answer.at(-1)! : answer;
      const collector = new ResultCollector(
        last.fields.map((f) => f.name),
        bounds,
      );
      for (const row of last.rows) if (!collector.add(row as Cell[])) break;
      return { ok: true, result: collector.result(), command: last.command, notices: this.notices };
    } catch (error) {
      return this.#failure(error);
    }
  }

  /** A statement whose failure ends the tool call (BEGIN, ROLLBACK): its error is the answer. */
  async control(sql: string): Promise<Outcome | undefined> {
    try {
      await this.#client.query(sql);
      return undefined;
    } catch (error) {
      return this.#failure(error);
    }
  }

  /**
   * Keeps the session open after the tool call returns, until `pending` settles: closing a session
   * whose statement waits for approval would withdraw the request before anyone could approve it.
   */
  keepOpenUntil(pending: Promise<unknown>): void {
    this.#keep = pending;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const end = () => void this.#client.end().catch(() => undefined);
    if (this.#keep) void this.#keep.finally(end);
    else end();
  }

  #failure(error: unknown): Outcome {
    const e = error as { code?: string; message?: string };
    const sqlstate = sqlstateOf(e.code);
    return {
      ok: false,
      ...(sqlstate && { sqlstate }),
      message: e.message ?? String(error),
      policy: sqlstate === '42501',
      notices: this.notices,
    };
  }
}

function read(
  cursor: Cursor,
  count: number,
): Promise<{ rows: unknown[]; result: { fields?: { name: string }[]; command?: string } }> {
  return new Promise((resolve, reject) =>
    cursor.read(count, (error, rows, result) =>
      error ? reject(error) : resolve({ rows, result: result as never }),
    ),
  );
}

/** Output names in the proxy's masking report (`email <- public.customers.email (...): tokenize`). */
function maskedColumns(reports: readonly string[]): string[] {
  const names = new Set<string>();
  for (const report of reports)
    for (const entry of report.slice(MASKING_REPORT_PREFIX.length).split('; ')) {
      // An untraced result masks every column.
      names.add(entry.startsWith('* ') ? '*' : entry.split(' <- ')[0]!);
    }
  return [...names];
}
