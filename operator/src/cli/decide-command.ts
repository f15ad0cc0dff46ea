import { KubeConfig } from '@kubernetes/client-node';
import { durationSeconds } from '../../../sidecar/src/cli/approvals-command.ts';
import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { type ApprovalRequestObject, approvalRequestPath } from '../approvals/approval-request-object.ts';
import { KubeApi, KubeApiError } from '../runtime/kube-api.ts';

export const DECIDE_USAGE = `usage: gatehouse approve NAME --reason TEXT [--for DURATION] [-n NAMESPACE] [--kubeconfig FILE]
       gatehouse deny NAME --reason TEXT [-n NAMESPACE] [--kubeconfig FILE]
       (also kubectl gatehouse approve|deny ...)

Decides an ApprovalRequest in Kubernetes: writes status.decision {verdict, reason} as you, the
kubeconfig's user. The operator's webhook records who you are from the API server and refuses you
unless the rule that held the statement names you (and it is not your own request).

  --reason TEXT        why, for the audit log (required)
  --for DURATION       approve the statement's shape for the requester for this long (30m, 12h, 7d; at most 30d)
  -n, --namespace NS   the request's namespace (default: the kubeconfig context's, else default)
  --kubeconfig FILE    default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account

Exit codes: 0 decided, 1 refused (not an approver, your own request, already decided, expired), 2 usage or API errors.`;

/** `gatehouse approve|deny NAME` against the Kubernetes API; returns the exit code. */
export async function runDecideCommand(
  verdict: 'approve' | 'deny',
  argv: string[],
  io: { stdout: (text: string) => void; stderr: (text: string) => void } = {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  },
): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        reason: { type: 'string' },
        for: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    verdict,
  );
  if (values.help) {
    io.stdout(`${DECIDE_USAGE}\n`);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined)
    throw new UserError(`${verdict} needs the ApprovalRequest's name (kubectl get approvalrequests)`);
  if (extra.length > 0) throw new UserError(`${verdict} takes one name; got also ${extra.join(' ')}`);
  if (values.reason === undefined || values.reason.trim() === '')
    throw new UserError(`${verdict} needs --reason TEXT: say why, for the audit log`);
  if (values.for !== undefined && verdict === 'deny')
    throw new UserError('--for approves a shape for a while; it has no meaning for deny');
  const shapeForSeconds = values.for === undefined ? undefined : durationSeconds(values.for);

  const config = new KubeConfig();
  try {
    if (values.kubeconfig !== undefined) config.loadFromFile(values.kubeconfig);
    else config.loadFromDefault();
  } catch (error) {
    throw new UserError(`cannot load the kubeconfig: ${(error as Error).message}`);
  }
  const namespace =
    values.namespace ?? config.getContextObject(config.getCurrentContext())?.namespace ?? 'default';
  const api = new KubeApi(config);
  let decided: ApprovalRequestObject;
  try {
    decided = await api.patch<ApprovalRequestObject>(
      approvalRequestPath(namespace, name, true),
      {
        status: {
          decision: {
            verdict,
            reason: values.reason,
            ...(shapeForSeconds !== undefined && { shapeForSeconds }),
          },
        },
      },
      'merge',
    );
  } catch (error) {
    if (
      error instanceof KubeApiError &&
      (error.status === 403 || error.status === 422 || error.status === 404)
    ) {
      io.stderr(`gatehouse: ${verdict} ${namespace}/${name} refused: ${refusalText(error)}\n`);
      return 1;
    }
    throw new UserError(`the Kubernetes API server failed: ${String((error as Error).message ?? error)}`);
  }
  io.stdout(
    `${namespace}/${name} ${(decided.status?.phase ?? '?').toLowerCase()} by ${decided.status?.decision?.by ?? '?'}\n`,
  );
  return 0;
}

/** The webhook's own words, without the API server's wrapping around them. */
function refusalText(error: KubeApiError): string {
  const match = /gatehouse: (.*)$/s.exec(error.message);
  return match ? match[1]! : error.message;
}
