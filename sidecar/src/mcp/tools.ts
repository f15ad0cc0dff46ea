import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { UserError } from '../errors.ts';
import { MASKING_REPORT_PREFIX } from '../protocol/postgres/masking-report.ts';
import { type BoundedResult, formatResult, type ResultBounds } from './bound-results.ts';
import { type Outcome, type ProxyClient, ProxyLoginError, type ProxySession } from './proxy-client.ts';
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
const SQL = z.string().min(1).describe('One PostgreSQL statement');

const LIST_TABLES = `SELECT table_schema, table_name, table_type FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`;
// Without a schema, the table search_path finds, as the probe below (and any query) would.
const DESCRIBE_TABLE = `SELECT table_schema, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_name = $1 AND table_schema = coalesce($2::text,
  (SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident($1))))
ORDER BY ordinal_position`;

/** The five tools, each a thin call through the proxy: the proxy, not this file, decides what runs. */
export function registerTools(server: McpServer, proxy: ProxyClient, settings: ToolSettings): void {
  const { bounds } = settings;
  server.registerTool(
    'list_tables',
    {
      description: 'List the tables and views this identity can see (schema, name, type).',
      annotations: { readOnlyHint: true },
    },
    () => call(() => proxy.withSession('list_tables', (s) => readOnly(s, LIST_TABLES, [], settings))),
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
        const name = tableName(table);
        return proxy.withSession('describe_table', (s) =>
          describeTable(s, name.name, name.schema ?? null, settings),
        );
      }),
  );
  server.registerTool(
    'query',
    {
      description:
        'Run one read-only SQL statement (SELECT, SHOW) in a READ ONLY transaction. Results are bounded and masked by policy; other statements are refused.',
      inputSchema: { sql: SQL },
      annotations: { readOnlyHint: true },
    },
    ({ sql }) =>
      call(() => {
        const text = readOnlySql(sql);
        return proxy.withSession('query', (s) => readOnly(s, text, [], settings));
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
        const text = executableSql(sql);
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
      description: "Show PostgreSQL's plan for one statement (EXPLAIN, never ANALYZE: nothing runs).",
      inputSchema: { sql: SQL },
      annotations: { readOnlyHint: true },
    },
    ({ sql }) =>
      call(() => {
        const text = explainSql(sql);
        return proxy.withSession('explain', (s) => readOnly(s, text, [], settings));
      }),
  );
}

/** A statement in a READ ONLY transaction that is rolled back: a read cannot leave anything behind. */
async function readOnly(
  session: ProxySession,
  sql: string,
  values: readonly unknown[],
  settings: ToolSettings,
): Promise<ToolAnswer> {
  const begun = await session.control('BEGIN TRANSACTION READ ONLY');
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
  table: string,
  schema: string | null,
  settings: ToolSettings,
): Promise<ToolAnswer> {
  const begun = await session.control('BEGIN TRANSACTION READ ONLY');
  if (begun) return answer(begun, settings.bounds);
  const columns = await session.statement(DESCRIBE_TABLE, [table, schema], settings.bounds);
  if (!columns.ok || columns.result.rows.length === 0) {
    await session.control('ROLLBACK');
    return columns.ok
      ? text(`REFUSED: no table ${schema ? `${schema}.` : ''}${table} that this identity can see`, true)
      : answer(columns, settings.bounds);
  }
  const found = columns.result.rows[0]![0]!;
  const seen = session.notices.length;
  const probe = await session.statement(
    `SELECT * FROM ${quoted(found)}.${quoted(table)} LIMIT 0`,
    [],
    settings.bounds,
  );
  const reported = session.notices.splice(seen).filter((n) => n.startsWith(MASKING_REPORT_PREFIX));
  await session.control('ROLLBACK');
  const masked = maskedColumns(reported);
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

/** Output names in the proxy's masking report (`email <- public.customers.email (...): tokenize`). */
function maskedColumns(reports: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const report of reports)
    for (const entry of report.slice(MASKING_REPORT_PREFIX.length).split('; ')) {
      // An untraced result masks every column.
      names.add(entry.startsWith('* ') ? '*' : entry.split(' <- ')[0]!);
    }
  return names;
}

function quoted(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
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
  const notices = outcome.notices.filter((n) => !HELD.test(n) && !n.startsWith(MASKING_REPORT_PREFIX));
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
        `REFUSED or failed${outcome.sqlstate ? ` (SQLSTATE ${outcome.sqlstate})` : ''}: ${outcome.message}`,
        ...(outcome.sqlstate === '42501'
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

/** Argument errors are tool errors too: the agent reads why, and nothing reached the proxy. */
async function call(run: () => Promise<ToolAnswer>): Promise<ToolAnswer> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ToolArgumentError) return text(`REFUSED before sending: ${error.message}`, true);
    // A token file that cannot be read: the agent's identity is missing, so nothing was sent.
    if (error instanceof UserError) return text(`REFUSED before sending: ${error.message}`, true);
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
