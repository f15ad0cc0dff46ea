import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { authorization } from './audit-query-command.ts';
import { DEFAULT_LISTEN } from './collector-config.ts';

export const AUDIT_RESET_USAGE = `usage: gatehouse audit reset-source ID --reason TEXT [options]

Accepts the damage of a flagged source (a gap, a broken chain, a foreign key; \`gatehouse audit query
sources\` lists them with their ids): its status is ok again and its chain is checked from the next
record on. Who reset it, why, and what the flag said are kept by the collector and shown with the
source. Only the collector's admins (auth.admins) may.

options:
  --reason TEXT         why the damage is accepted (required)
  --server URL          the collector (default http://${DEFAULT_LISTEN})
  --token JWT           a bearer token; or
  --user NAME           a local user, with --password P or $GATEHOUSE_PASSWORD
  -h, --help            show this text`;

export async function runAuditReset(argv: string[]): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      allowPositionals: true,
      options: {
        reason: { type: 'string' },
        server: { type: 'string', default: `http://${DEFAULT_LISTEN}` },
        token: { type: 'string' },
        user: { type: 'string' },
        password: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'audit reset-source',
  );
  if (values.help) {
    console.log(AUDIT_RESET_USAGE);
    return 0;
  }
  const [id, ...extra] = positionals;
  if (id === undefined || !/^[1-9]\d{0,15}$/.test(id) || extra.length > 0)
    throw new UserError('audit reset-source takes one source id (see gatehouse audit query sources)');
  const reason = values.reason?.trim();
  if (!reason) throw new UserError('--reason TEXT is required: say why the damage is accepted');
  const url = `${values.server.replace(/\/$/, '')}/v1/sources/${id}/reset`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: authorization(values), 'content-type': 'application/json' },
      body: JSON.stringify({ reason }),
    });
  } catch (error) {
    throw new UserError(
      `cannot reach the collector at ${values.server}: ${(error as Error).cause ?? (error as Error).message}`,
    );
  }
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!response.ok)
    throw new UserError(
      `the collector answered ${response.status}: ${String(body?.['message'] ?? 'no reason given')}`,
    );
  console.log(
    `source ${id} reset by ${String(body?.['by'])}: was ${String(body?.['previousStatus'])} (${String(body?.['previousReason'] ?? '')}); its chain is checked again after seq ${String(body?.['atSeq'])}`,
  );
  return 0;
}
