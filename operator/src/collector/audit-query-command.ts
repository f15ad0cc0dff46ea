import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { collectorClient, followRecords } from './audit-follow.ts';
import { KINDS, type Kind, table } from './audit-query-format.ts';
import { readerAuthorization } from './collector-client.ts';
import { DEFAULT_LISTEN } from './collector-config.ts';
import { COLLECTOR_CA_ENV, collectorCa } from './collector-http.ts';
import { parseSince } from './time-range.ts';

export const AUDIT_QUERY_USAGE = `usage: gatehouse audit query [statements|sessions|sources|touched|approvals] [options]

Asks the collector (docs/collector.md) what was run, by whom, what data it touched (touched: per
identity and column, clear or masked), which approvals were asked for, and whether each source's chain
holds.

options:
  --server URL          the collector (default http://${DEFAULT_LISTEN}, the quickstart's)
  --ca FILE             the CA (PEM) that verifies an https collector instead of the system's
                        (default $${COLLECTOR_CA_ENV}); e.g. its Secret's ca.crt through a
                        kubectl port-forward (docs/collector.md)
  --token JWT           a bearer token; or
  --user NAME           a local user, with --password P or $GATEHOUSE_PASSWORD
  --subject S           only this identity
  --database D          only this database
  --outcome O           only statements that ended ok, error or refused
  --text S              only statements whose text contains S (ignoring case)
  --session ID          only this session's statements
  --table T             only statements that read or wrote table T (customers or public.customers)
  --column T.C          only statements whose output came from column T.C (who touched it, masked or clear)
  --seen clear|masked   with --column: only where it was seen in clear, or only masked
  --purpose P           only sessions that declared this purpose (gatehouse.purpose)
  --run-id R            only sessions that declared this run id (gatehouse.run_id)
  --phase P             approvals: only Pending, Approved, Denied, Expired, Executed or Withdrawn
  --since T             a duration back from now (15m, 2h, 7d) or an ISO 8601 time; also --from
  --to T                up to this time
  --limit N             at most N rows (default 100; follow \`next\` with --cursor); with --follow,
                        how many earlier ones it prints first (default 20)
  --cursor C            the next page, as the previous answer named it
  --format table|json   (default table)
  -f, --follow          keep printing statements (or sessions) as they arrive, oldest first, until
                        interrupted; --format json prints one JSON object a line
  -h, --help            show this text`;

export async function runAuditQuery(argv: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      allowPositionals: true,
      options: {
        server: { type: 'string', default: `http://${DEFAULT_LISTEN}` },
        ca: { type: 'string' },
        token: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        subject: { type: 'string' },
        database: { type: 'string' },
        outcome: { type: 'string' },
        text: { type: 'string' },
        session: { type: 'string' },
        table: { type: 'string' },
        column: { type: 'string' },
        seen: { type: 'string' },
        purpose: { type: 'string' },
        'run-id': { type: 'string' },
        phase: { type: 'string' },
        since: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
        format: { type: 'string', default: 'table' },
        follow: { type: 'boolean', short: 'f' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'audit query',
  );
  if (values.help) {
    console.log(AUDIT_QUERY_USAGE);
    return 0;
  }
  const kind = positionals[0] ?? 'statements';
  if (!(KINDS as readonly string[]).includes(kind) || positionals.length > 1)
    throw new UserError(`audit query asks for one of ${KINDS.join(', ')}, not "${positionals.join(' ')}"`);
  if (values.format !== 'table' && values.format !== 'json')
    throw new UserError(`--format must be table or json, not "${values.format}"`);
  const query = new URLSearchParams();
  for (const name of [
    'subject',
    'database',
    'outcome',
    'text',
    'session',
    'table',
    'column',
    'seen',
    'purpose',
    'phase',
    'limit',
    'cursor',
  ] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  if (values['run-id'] !== undefined) query.set('run_id', values['run-id']);
  const since = values.since ?? values.from;
  for (const [name, value] of [
    ['since', since],
    ['until', values.to],
  ] as const) {
    if (value === undefined) continue;
    const time = parseSince(value);
    if (!time)
      throw new UserError(
        `--${name === 'until' ? 'to' : 'since'}: "${value}" is neither a duration (15m, 2h, 7d) nor an ISO 8601 time`,
      );
    query.set(name, time.toISOString());
  }
  const url = `${values.server.replace(/\/$/, '')}/v1/${kind}`;
  const target = { server: values.server, ca: collectorCa(values.ca) };
  const ask = collectorClient(url, target, readerAuthorization(values));
  if (values.follow) {
    if (kind === 'sources') throw new UserError('--follow follows statements or sessions, not sources');
    if (values.cursor !== undefined)
      throw new UserError('--follow starts from the newest records; it takes no --cursor');
    return followRecords({ kind: kind as Kind, query, format: values.format, ask });
  }
  const body = await ask(kind === 'sources' ? new URLSearchParams() : query);
  if (values.format === 'json') {
    // `follow` is the API's way in for --follow, which asks for it itself.
    const { follow: _, ...answer } = body;
    console.log(JSON.stringify(answer, null, 2));
    return 0;
  }
  if (kind === 'touched') {
    const summary = body as unknown as {
      columns: Record<string, unknown>[];
      tables: Record<string, unknown>[];
    };
    console.log(`${table('touched', summary.columns)}\n\n${table('tables', summary.tables)}`);
    return 0;
  }
  console.log(table(kind as Kind, body.items ?? []));
  if (body.next) console.log(`\nmore: --cursor ${body.next}`);
  return 0;
}

export { readerAuthorization as authorization };
