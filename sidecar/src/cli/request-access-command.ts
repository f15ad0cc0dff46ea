import type { ApprovalView } from '../approvals/approval-view.ts';
import { UserError } from '../errors.ts';
import {
  authorizationOf,
  DEFAULT_SERVER,
  durationSeconds,
  type Output,
  refused,
  request,
} from './approvals-command.ts';
import { parseCliArgs } from './parse-cli-args.ts';

export const REQUEST_ACCESS_USAGE = `usage: gatehouse request-access --database DB --columns TABLE.COLUMN[,...] --for DURATION
                                --reason TEXT [--json]

Asks, as you, to see masked columns in clear for a while. An approver of every MaskingPolicy that
applies to you on the database decides it with \`gatehouse approvals approve|deny ID\`; approved, your
sessions on that database see those columns in clear from their next statement until it ends, where
a statement passes a column through unchanged (anything computed from it stays masked).

  --database DB      the database, as your DatabaseAccess grants name it (required)
  --columns LIST     table.column or schema.table.column, comma-separated, exact names (required)
  --for DURATION     how long, once approved: 90s, 30m, 12h (at most the policy's maxDurationSeconds)
  --reason TEXT      why you need the values; kept in the request and the audit log (required)
  --server URL       the proxy's admin endpoint (default: $GATEHOUSE_SERVER, else ${DEFAULT_SERVER})
  --token JWT        authenticate with a token (default: $GATEHOUSE_TOKEN)
  --user NAME        authenticate as a local user, with --password or $GATEHOUSE_PASSWORD
  --password P       the local user's password (prefer $GATEHOUSE_PASSWORD: arguments show in ps)
  --json             print the request as JSON
  -h, --help         show this text

Prints the request's ID. Exits 0 when the request is open, 1 when the proxy refused it (no
MaskingPolicy of yours takes access requests, longer than allowed...), 2 for a usage error.`;

/** `gatehouse request-access`: opens a request for clear access on a standalone proxy's admin endpoint. */
export async function runRequestAccessCommand(
  argv: string[],
  io: { readonly stdout: Output; readonly stderr: Output; readonly env: NodeJS.ProcessEnv } = process,
): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        server: { type: 'string' },
        token: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        database: { type: 'string' },
        columns: { type: 'string', multiple: true },
        for: { type: 'string' },
        reason: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'request-access',
  );
  if (values.help) {
    io.stdout.write(`${REQUEST_ACCESS_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0)
    throw new UserError(`unexpected argument "${positionals[0]}" (see gatehouse request-access --help)`);
  if (values.database === undefined) throw new UserError('request-access needs --database DB');
  const columns = (values.columns ?? []).flatMap((list) => list.split(',')).map((c) => c.trim());
  if (columns.length === 0 || columns.some((c) => c === ''))
    throw new UserError('request-access needs --columns table.column[,...]');
  if (values.for === undefined) throw new UserError('request-access needs --for DURATION, such as 30m');
  if (values.reason === undefined || values.reason.trim() === '')
    throw new UserError('request-access needs --reason TEXT: say why you need the values');
  const forSeconds = durationSeconds(values.for);
  const server = (values.server ?? io.env['GATEHOUSE_SERVER'] ?? DEFAULT_SERVER).replace(/\/+$/, '');
  const answer = await request(server, '/approvals/access-requests', authorizationOf(values, io.env), {
    database: values.database,
    columns,
    forSeconds,
    reason: values.reason,
  });
  if (!answer.ok) return refused(answer, io);
  const opened = answer.body as ApprovalView;
  io.stdout.write(
    values.json
      ? `${JSON.stringify(opened, null, 2)}\n`
      : `${opened.id} pending: clear access to ${columns.join(', ')} on ${values.database} for ${values.for}, once an approver runs gatehouse approvals approve ${opened.id}\n`,
  );
  return 0;
}
