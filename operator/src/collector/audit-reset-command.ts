import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { authorization } from './audit-query-command.ts';
import { DEFAULT_LISTEN } from './collector-config.ts';
import { COLLECTOR_CA_ENV, collectorCa, collectorRequest, reasonOf } from './collector-http.ts';

export const AUDIT_RESET_USAGE = `usage: gatehouse audit reset-source ID --reason TEXT [options]

Accepts the damage of a flagged source (a gap, a broken chain, a foreign key; \`gatehouse audit query
sources\` lists them with their ids): its status is ok again and its chain is checked from the next
record on. Who reset it, why, and what the flag said are kept by the collector and shown with the
source. Only the collector's admins (auth.admins) may.

options:
  --reason TEXT         why the damage is accepted (required)
  --server URL          the collector (default http://${DEFAULT_LISTEN})
  --ca FILE             the CA (PEM) that verifies an https collector (default $${COLLECTOR_CA_ENV})
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
        ca: { type: 'string' },
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
  const target = { server: values.server, ca: collectorCa(values.ca) };
  const { status, body } = await collectorRequest(target, url, {
    method: 'POST',
    authorization: authorization(values),
    json: { reason },
  });
  if (status < 200 || status >= 300)
    throw new UserError(`the collector answered ${status}: ${reasonOf(body)}`);
  const answer = body as Record<string, unknown> | undefined;
  console.log(
    `source ${id} reset by ${String(answer?.['by'])}: was ${String(answer?.['previousStatus'])} (${String(answer?.['previousReason'] ?? '')}); its chain is checked again after seq ${String(answer?.['atSeq'])}`,
  );
  return 0;
}
