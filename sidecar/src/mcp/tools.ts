import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { UserError } from '../errors.ts';
import { type BoundedResult, formatResult, type ResultBounds } from './bound-results.ts';
import { quoteIdentifier } from './dialects.ts';
import { type Outcome, type ProxyClient, ProxyLoginError, type ProxySession } from './proxy-session.ts';
import { executableSql, explainSql, readOnlySql, ToolArgumentError, tableName } from './tool-arguments.ts';

export interface ToolSettings {
  readonly bounds: ResultBounds;
  /** How long a tool call waits for a held statement's decision before answering that it waits. */
  readonly approvalWaitMs: number;
}

interface ToolAnswer {
  [key: string]: unknown;
  content: { type: 'text'; text: string }[];
  isError?: boolean;
}

// The proxy's notice (approvals/hold.ts heldNotice). A database notice could imitate it; that would
// only change what this server says, never what the proxy lets run.
const HELD = /^statement held for approval: request (ar-[0-9a-f]+) /;
/** The five tools, each a thin call through the proxy: the proxy, not this file, decides what runs. */
export function registerTools(server: McpServer, proxy: ProxyClient, settings: ToolSettings): void {
  const { bounds } = settings;
  const { dialect } = proxy;
  const SQL = z.string().min(1).describe(`One ${dialect.name} statement`);
  server.registerTool(
    'list_tables',
    {
      description: 'List the tables and views this identity can see (schema, name, type).',
      annotations: { readOnlyHint: true },
    },
    () =>
      call(() =>
        proxy.withSession('list_tables', (s) => readOnly(proxy, s, dialect.listTables, [], settings)),
      ),
  );
  server.registerTool(
    'describe_table',
    {
      description:
        'Columns of a table (name, type, nullable, default). `masked` says which columns this identity sees masked.',
      inputSchema: { table: z.string().min(1).describe('table or schema.table') },
      annotations: { readOnlyHint: true },
    },
    ({ table }) =>
      call(() => {
        const name = tableName(table, dialect);
        return proxy.withSession('describe_table', (s) =>
          describeTable(s, proxy, name.name, name.schema ?? null, settings),
        );
      }),
  );
  server.registerTool(
    'query',
    {
      description: `Run one read-only ${dialect.name} statement (SELECT, SHOW) in a READ ONLY transaction. Results are bounded and masked by policy; other statements are refused.`,
      inputSchema: { sql: SQL },
      annotations: { readOnlyHint: true },
    },
    ({ sql }) =>
      call(() => {
        const text = readOnlySql(sql, dialect);
        return proxy.withSession('query', (s) => readOnly(proxy, s, text, [], settings));
      }),
  );
  server.registerTool(
    'execute',
    {
      description:
        'Run SQL that changes data or schema, under the guardrails and approvals of this identity. A statement held for approval answers with the request id and how to approve it.',
      inputSchema: { sql: z.string().min(1).describe('SQL to run (one statement, or several)') },
      annotations: { destructiveHint: true },
    },
    ({ sql }) =>
      call(() => {
        const text = executableSql(sql, dialect);
        return proxy.withSession('execute', async (s) => {
          // One statement goes through the extended protocol, its rows read only up to the bounds.
          const running = text.single ? s.statement(text.sql, [], bounds) : s.text(text.sql, bounds);
          return answer(await heldOrDone(s, running, settings), bounds);
        });
      }),
  );
  server.registerTool(
    'explain',
    {
      description: `Show ${dialect.name}'s plan for one statement (EXPLAIN, never ANALYZE: nothing runs).`,
      inputSchema: { sql: SQL },
      annotations: { readOnlyHint: true },
    },
    ({ sql }) =>
      call(() => {
        const plan = explainSql(sql, dialect);
        return proxy.withSession('explain', async (s) =>
          plan.read || dialect.explainWritesReadOnly
            ? readOnly(proxy, s, plan.sql, [], settings)
            : answer(await s.statement(plan.sql, [], bounds), bounds),
        );
      }),
  );
}

/** A statement in a READ ONLY transaction that is rolled back: a read cannot leave anything behind. */
async function readOnly(
  proxy: ProxyClient,
  session: ProxySession,
  sql: string,
  values: readonly unknown[],
  settings: ToolSettings,
): Promise<ToolAnswer> {
  const begun = await session.control(proxy.dialect.beginReadOnly);
  if (begun) return answer(begun, settings.bounds);
  const outcome = await heldOrDone(session, session.statement(sql, values, settings.bounds), settings);
  if (!('held' in outcome)) await session.control('ROLLBACK');
  return answer(outcome, settings.bounds);
}

/**
 * The table's columns, each marked as masked or not for this identity. The proxy says which: a
 * `SELECT * ... LIMIT 0` of the table is planned like any read, and the proxy reports the columns
 * its plan masks (masking-report.ts), so the marks are the masking the agent's queries get.
 */
async function describeTable(
  session: ProxySession,
  proxy: ProxyClient,
  table: string,
  schema: string | null,
  settings: ToolSettings,
): Promise<ToolAnswer> {
  const { dialect } = proxy;
  const begun = await session.control(dialect.beginReadOnly);
  if (begun) return answer(begun, settings.bounds);
  const columns = await session.statement(dialect.describeColumns, [table, schema], settings.bounds);
  if (!columns.ok || columns.result.rows.length === 0) {
    await session.control('ROLLBACK');
    return columns.ok
      ? text(`REFUSED: no table ${schema ? `${schema}.` : ''}${table} that this identity can see`, true)
      : answer(columns, settings.bounds);
  }
  const found = columns.result.rows[0]![0]!;
  const probe = await session.statement(
    `SELECT * FROM ${quoteIdentifier(dialect, found)}.${quoteIdentifier(dialect, table)} LIMIT 0`,
    [],
    settings.bounds,
  );
  await session.control('ROLLBACK');
  const masked = new Set(probe.ok ? probe.masked : []);
  const mark = (column: string): string =>
    !probe.ok ? 'unknown' : masked.has('*') || masked.has(column) ? 'masked' : 'clear';
  const result: BoundedResult = {
    ...columns.result,
    columns: [...columns.result.columns, 'masked'],
    rows: columns.result.rows.map((row) => [...row, mark(row[1] ?? '')]),
  };
  const note = probe.ok
    ? 'masked: the values this identity gets from that column are masked by policy.'
    : `masked: unknown, the proxy refused reading the table (${probe.message}).`;
  return text(`${formatResult(result, settings.bounds)}\n${note}`, false);
}

type Held = { readonly held: string };

/**
 * The outcome of a statement, or, when the proxy holds it for approval and no decision comes within
 * the wait, the request it waits on. The session then stays open until the proxy's own wait ends
 * (closing it would withdraw the request), so an approval in that time still runs the statement.
 */
async function heldOrDone(
  session: ProxySession,
  running: Promise<Outcome>,
  settings: ToolSettings,
): Promise<Outcome | Held> {
  const first = await Promise.race([running, session.noticeMatching((n) => HELD.test(n))]);
  if (typeof first !== 'string') return first;
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), settings.approvalWaitMs);
  });
  const decided = await Promise.race([running, waited]);
  clearTimeout(timer);
  if (decided !== 'timeout') return decided;
  session.keepOpenUntil(running);
  return { held: first };
}

function answer(outcome: Outcome | Held, bounds: ResultBounds): ToolAnswer {
  if ('held' in outcome) {
    const id = HELD.exec(outcome.held)?.[1] ?? '(unknown)';
    return text(
      `HELD FOR APPROVAL: request ${id}. Gatehouse holds this statement until a person decides; it has not run. ` +
        `The proxy said: ${outcome.held}\n` +
        `Ask an approver to run: gatehouse approvals approve ${id} --reason "..." (or deny it). ` +
        'If it is approved while the proxy still waits, it runs then; after that, sending the identical statement again runs it once.',
      false,
    );
  }
  const notices = outcome.notices.filter((n) => !HELD.test(n));
  const approved = outcome.notices.find((n) => HELD.test(n));
  const tail = [
    ...(approved
      ? [`This statement was held for approval (${HELD.exec(approved)?.[1]}) and then decided.`]
      : []),
    ...(notices.length > 0 ? [`Notices from Gatehouse or the database: ${JSON.stringify(notices)}`] : []),
  ];
  if (!outcome.ok)
    return text(
      [
        `REFUSED or failed${errorCode(outcome)}: ${outcome.message}`,
        ...(outcome.policy
          ? ['This is a policy decision: sending it again, or in another spelling, gets the same answer.']
          : []),
        ...tail,
      ].join('\n'),
      true,
    );
  return text(
    [formatResult(outcome.result as BoundedResult, bounds, outcome.command), ...tail].join('\n'),
    false,
  );
}

function errorCode(outcome: { sqlstate?: string; errno?: number }): string {
  const parts = [
    ...(outcome.errno !== undefined ? [`error ${outcome.errno}`] : []),
    ...(outcome.sqlstate ? [`SQLSTATE ${outcome.sqlstate}`] : []),
  ];
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** Argument errors are tool errors too: the agent reads why, and nothing reached the proxy. */
async function call(run: () => Promise<ToolAnswer>): Promise<ToolAnswer> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ToolArgumentError) return text(`REFUSED before sending: ${error.message}`, true);
    // A token file that cannot be read: the agent's identity is missing, so nothing was sent.
    if (error instanceof UserError) return text(`REFUSED before sending: ${error.message}`, true);
    // A tool no DatabaseAccess grants this identity: the proxy knows the tool (in process) and says so.
    if (error instanceof ProxyLoginError && error.policy)
      return text(
        `REFUSED (SQLSTATE ${error.sqlstate ?? '42501'}): ${error.message}\nThis is a policy decision: calling it again, or the same SQL through another tool, gets no more than the grants allow.`,
        true,
      );
    if (error instanceof ProxyLoginError)
      return text(
        `REFUSED: the proxy refused the agent's login${error.sqlstate ? ` (SQLSTATE ${error.sqlstate})` : ''}: ${error.message}`,
        true,
      );
    throw error;
  }
}

function text(body: string, isError: boolean): ToolAnswer {
  return { content: [{ type: 'text', text: body }], ...(isError && { isError: true }) };
}
