import type { ApprovalView } from '../approvals/approval-view.ts';
import { UserError } from '../errors.ts';
import { approveShapes, listLearned } from './learned-shapes-command.ts';
import { parseCliArgs } from './parse-cli-args.ts';

export const APPROVALS_USAGE = `usage: gatehouse approvals list [--phase PHASE] [--json]
       gatehouse approvals show ID [--json]
       gatehouse approvals approve ID --reason TEXT [--for DURATION]
       gatehouse approvals deny ID --reason TEXT
       gatehouse approvals learned --identity SUBJECT [--database DB] [--json]
       gatehouse approvals approve-shapes --identity SUBJECT --for DURATION --reason TEXT
                                          [--database DB] [--fingerprint F]...

  --server URL       the proxy's admin endpoint (default: $GATEHOUSE_SERVER, else the quickstart's
                     http://127.0.0.1:9090)
  --token JWT        authenticate with a token, as the proxy's token mode checks it (default:
                     $GATEHOUSE_TOKEN)
  --user NAME        authenticate as a local user, with --password or $GATEHOUSE_PASSWORD
  --password P       the local user's password (prefer $GATEHOUSE_PASSWORD: arguments show in ps)
  --reason TEXT      why you decide so; kept in the request and the audit log (required)
  --for DURATION     approve the statement's shape (its text with literals as placeholders) for the
                     requester for this long, not only this statement: 90s, 30m, 12h, 7d (at most 30d)
  --phase PHASE      list only Pending, Approved, Denied, Expired, Executed or Withdrawn requests
  --json             list, show and learned print JSON: an array of requests, one request, or the
                     learned shapes
  --identity SUBJECT learned, approve-shapes: whose shapes (local:NAME, or a token's subject)
  --database DB      learned, approve-shapes: only this database's shapes
  --fingerprint F    approve-shapes: only this shape (repeat it); without it, every learned shape
  -h, --help         show this text

Lists only the requests you may decide or that you made. Exits 0 on success, 1 when the proxy
refused the call (not an approver, your own request, already decided...), 2 for a usage error or
an endpoint that cannot be reached.`;

export const DEFAULT_SERVER = 'http://127.0.0.1:9090';

export interface Output {
  write(text: string): unknown;
}

/** `gatehouse approvals`: a client of the approvals API on a standalone proxy's admin endpoint. */
export async function runApprovalsCommand(
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
        reason: { type: 'string' },
        for: { type: 'string' },
        phase: { type: 'string' },
        json: { type: 'boolean' },
        identity: { type: 'string' },
        database: { type: 'string' },
        fingerprint: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'approvals',
  );
  if (values.help) {
    io.stdout.write(`${APPROVALS_USAGE}\n`);
    return 0;
  }
  const [action, id, ...extra] = positionals;
  if (extra.length > 0)
    throw new UserError(`unexpected argument "${extra[0]}" (see gatehouse approvals --help)`);
  const server = (values.server ?? io.env['GATEHOUSE_SERVER'] ?? DEFAULT_SERVER).replace(/\/+$/, '');
  // Credentials are read at the first call, after the subcommand and its arguments were checked.
  const call = (path: string, body?: unknown) => request(server, path, authorizationOf(values, io.env), body);

  switch (action) {
    case 'list': {
      if (id !== undefined) throw new UserError('list takes no ID (see gatehouse approvals --help)');
      const query = values.phase === undefined ? '' : `?phase=${encodeURIComponent(values.phase)}`;
      const answer = await call(`/approvals${query}`);
      if (!answer.ok) return refused(answer, io);
      const list = answer.body as ApprovalView[];
      io.stdout.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : table(list));
      return 0;
    }
    case 'show': {
      const answer = await call(`/approvals/${encodeURIComponent(needId(id, 'show'))}`);
      if (!answer.ok) return refused(answer, io);
      const one = answer.body as ApprovalView;
      io.stdout.write(values.json ? `${JSON.stringify(one, null, 2)}\n` : details(one));
      return 0;
    }
    case 'approve':
    case 'deny': {
      const target = needId(id, action);
      if (values.reason === undefined || values.reason.trim() === '')
        throw new UserError(`${action} needs --reason TEXT: say why, for the audit log`);
      if (values.for !== undefined && action === 'deny')
        throw new UserError('--for approves a shape for a while; it has no meaning for deny');
      const shapeForSeconds = values.for === undefined ? undefined : durationSeconds(values.for);
      const answer = await call(`/approvals/${encodeURIComponent(target)}/${action}`, {
        reason: values.reason,
        ...(shapeForSeconds !== undefined && { shapeForSeconds }),
      });
      if (!answer.ok) return refused(answer, io);
      const decided = answer.body as ApprovalView;
      const shape = decided.decision?.shapeUntil
        ? `; its shape is approved until ${decided.decision.shapeUntil}`
        : '';
      io.stdout.write(
        `${decided.id} ${decided.phase.toLowerCase()} by ${decided.decision?.by ?? '?'}${shape}\n`,
      );
      return 0;
    }
    case 'learned':
    case 'approve-shapes': {
      if (id !== undefined) throw new UserError(`${action} takes no ID (see gatehouse approvals --help)`);
      const answer =
        action === 'learned'
          ? await listLearned(values, call, io)
          : await approveShapes(
              values,
              values.for === undefined ? undefined : durationSeconds(values.for),
              call,
              io,
            );
      return answer.ok ? 0 : refused(answer, io);
    }
    case undefined:
      throw new UserError(
        'approvals needs a subcommand: list, show, approve, deny, learned or approve-shapes (see gatehouse approvals --help)',
      );
    default:
      throw new UserError(`unknown approvals subcommand "${action}" (see gatehouse approvals --help)`);
  }
}

export function authorizationOf(
  values: { token?: string; user?: string; password?: string },
  env: NodeJS.ProcessEnv,
): string {
  const token = values.token ?? env['GATEHOUSE_TOKEN'];
  if (values.user !== undefined) {
    if (values.token !== undefined) throw new UserError('give --token or --user, not both');
    const password = values.password ?? env['GATEHOUSE_PASSWORD'];
    if (password === undefined) throw new UserError('--user needs --password or $GATEHOUSE_PASSWORD');
    return `Basic ${Buffer.from(`${values.user}:${password}`).toString('base64')}`;
  }
  if (token !== undefined && token.trim() !== '') return `Bearer ${token.trim()}`;
  throw new UserError('say who you are: --token JWT (or $GATEHOUSE_TOKEN), or --user NAME with a password');
}

function needId(id: string | undefined, action: string): string {
  if (id === undefined)
    throw new UserError(`${action} needs the request ID (gatehouse approvals list shows them)`);
  return id;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `90s`, `30m`, `12h`, `7d` in seconds. */
export function durationSeconds(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match)
    throw new UserError(`--for ${JSON.stringify(text)}: give a number and a unit, such as 30m, 12h or 7d`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

export async function request(
  server: string,
  path: string,
  authorization: string,
  body: unknown,
): Promise<{ ok: boolean; status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(`${server}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    // fetch wraps the socket's error; an AggregateError holds one per address tried.
    type Cause = { code?: string; message?: string; errors?: Cause[] };
    const wrapped = (error as { cause?: Cause }).cause;
    const cause = wrapped?.code ?? wrapped?.errors?.[0]?.code ?? wrapped?.message ?? (error as Error).message;
    throw new UserError(
      `cannot reach the approvals API at ${server}: ${cause} (is the proxy running with admin.listen, and is --server right?)`,
    );
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UserError(`${server} did not answer like a Gatehouse admin endpoint (HTTP ${response.status})`);
  }
  return { ok: response.ok, status: response.status, body: parsed };
}

export function refused(answer: { status: number; body: unknown }, io: { stderr: Output }): number {
  const { message } = answer.body as { message?: string };
  io.stderr.write(`gatehouse: ${message ?? `the proxy answered HTTP ${answer.status}`}\n`);
  return 1;
}

function table(list: readonly ApprovalView[]): string {
  if (list.length === 0) return 'no approval requests\n';
  const rows = list.map((r) => [
    r.id,
    r.phase,
    r.requester.subject,
    r.database,
    r.rules.map((rule) => rule.name).join(','),
    oneLine(r.statement, 60),
  ]);
  const header = ['ID', 'PHASE', 'REQUESTER', 'DATABASE', 'RULE', 'STATEMENT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return `${[header, ...rows].map((row) => row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n')}\n`;
}

function details(r: ApprovalView): string {
  const lines: [string, string | undefined][] = [
    ['id', r.id],
    ['phase', r.phase],
    [
      'requester',
      `${r.requester.subject}${r.requester.groups.length ? ` (groups: ${r.requester.groups.join(', ')})` : ''}`,
    ],
    ['database', r.database],
    [
      'rules',
      r.rules.map((rule) => `${rule.name} of ${rule.kind ?? 'Guardrail'} ${rule.guardrail}`).join('; '),
    ],
    ['statement', r.statement],
    [
      'clear access to',
      r.access && `${r.access.columns.join(', ')} for ${r.access.forSeconds} s once approved`,
    ],
    ['reason', r.reason],
    ['affected rows', r.impact.affectedRows?.toString()],
    ['not measured', r.impact.notMeasured],
    ['estimated rows', r.impact.estimatedRows?.toString()],
    ['tables', r.impact.tables?.join(', ')],
    ['dependents', r.impact.dependents?.join(', ')],
    ['sensitive columns', r.impact.sensitiveColumns?.join(', ')],
    ['requested', r.requestedAt],
    ['expires', r.expiresAt],
    ['decided by', r.decision && `${r.decision.by} at ${r.decision.at}: ${r.decision.reason}`],
    ['shape approved until', r.decision?.shapeUntil],
    ['executed', r.executedAt],
  ];
  return `${lines
    .filter((line): line is [string, string] => line[1] !== undefined)
    .map(([k, v]) => `${`${k}:`.padEnd(22)}${v}`)
    .join('\n')}\n`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
