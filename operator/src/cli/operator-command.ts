import { readFile } from 'node:fs/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { untilSignal } from '../../../sidecar/src/cli/until-signal.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import { startOperator } from '../operator.ts';

export const OPERATOR_USAGE = `usage: gatehouse operator --sidecar-image IMAGE [options]

  --namespace NS              the operator's namespace (Lease, webhook Secret); default: the pod's, or gatehouse-system
  --sidecar-image IMAGE       image of the injected sidecar (required)
  --webhook-port PORT         HTTPS port of the pod-injection webhook (default 9443; 0 disables the webhook)
  --webhook-config-name NAME  MutatingWebhookConfiguration whose caBundle is kept current (default gatehouse)
  --webhook-service-name NAME Service in front of the webhook, named in its certificate (default gatehouse-webhook)
  --webhook-secret-name NAME  Secret with the webhook's certificate (default gatehouse-webhook-tls)
  --cert-mode self|cert-manager  who issues the webhook certificate (default self)
  --approvals-url URL         where sidecars ask for approvals (default https://WEBHOOK-SERVICE.NAMESPACE.svc)
  --collector-url URL         the audit collector injected sidecars ship their audit logs to, https://HOST[:PORT]
                              (default: none); the bundles carry the CA that verifies it
  --collector-service-name NAME  with --collector-url: the collector's Service, named in its certificate
                              (default gatehouse-collector)
  --collector-secret-name NAME   with --collector-url: the Secret with the collector's certificate and ca.crt,
                              issued by the operator or cert-manager as --cert-mode says (default gatehouse-collector-tls)
  --cluster-name NAME         with --collector-url: the cluster name recorded with every record (default default)
  --metrics-port PORT         Prometheus /metrics (default 8080)
  --health-port PORT          /healthz and /readyz (default 8081)
  --leader-elect true|false   run controllers only while holding the Lease (default true)
  --log-level LEVEL           fatal, error, warn, info, debug or trace (default info)
  --bind-address HOST         address the servers listen on (default 0.0.0.0)
  --kubeconfig FILE           outside a cluster; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** `gatehouse operator`: runs until SIGTERM or SIGINT, then shuts down gracefully (lease released). */
export async function runOperatorCommand(argv: string[]): Promise<number> {
  const { values } = parseCliArgs(
    {
      args: argv,
      strict: true,
      options: {
        namespace: { type: 'string' },
        'sidecar-image': { type: 'string' },
        'webhook-port': { type: 'string', default: '9443' },
        'webhook-config-name': { type: 'string', default: 'gatehouse' },
        'webhook-service-name': { type: 'string', default: 'gatehouse-webhook' },
        'webhook-secret-name': { type: 'string', default: 'gatehouse-webhook-tls' },
        'cert-mode': { type: 'string', default: 'self' },
        'approvals-url': { type: 'string' },
        'collector-url': { type: 'string' },
        'collector-service-name': { type: 'string', default: 'gatehouse-collector' },
        'collector-secret-name': { type: 'string', default: 'gatehouse-collector-tls' },
        'cluster-name': { type: 'string', default: 'default' },
        'metrics-port': { type: 'string', default: '8080' },
        'health-port': { type: 'string', default: '8081' },
        'leader-elect': { type: 'string', default: 'true' },
        'log-level': { type: 'string', default: 'info' },
        'bind-address': { type: 'string', default: '0.0.0.0' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'operator',
  );
  if (values.help) {
    console.log(OPERATOR_USAGE);
    return 0;
  }
  const image = values['sidecar-image'];
  if (!image) throw new UserError('--sidecar-image IMAGE is required');
  const certMode = values['cert-mode'];
  if (certMode !== 'self' && certMode !== 'cert-manager')
    throw new UserError(`--cert-mode is "${certMode}"; use self or cert-manager`);
  const logLevel = values['log-level'] as (typeof LOG_LEVELS)[number];
  if (!LOG_LEVELS.includes(logLevel))
    throw new UserError(`--log-level is "${logLevel}"; use ${LOG_LEVELS.join(', ')}`);
  const leaderElect = values['leader-elect'];
  if (leaderElect !== 'true' && leaderElect !== 'false')
    throw new UserError(`--leader-elect is "${leaderElect}"; use true or false`);
  const collectorUrl = values['collector-url'];
  // Pod tokens and audit records cross the cluster network: never in clear.
  if (collectorUrl !== undefined && !/^https:\/\/[^/]+\/?$/.test(collectorUrl))
    throw new UserError(
      `--collector-url is "${collectorUrl}"; use https://HOST[:PORT] (sidecars send their pod's token and audit records there)`,
    );
  const clusterName = values['cluster-name'];
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(clusterName))
    throw new UserError(`--cluster-name is "${clusterName}"; use lower-case letters, digits, '.' and '-'`);
  const webhookPort = port(values['webhook-port'], 'webhook-port');
  const metricsPort = port(values['metrics-port'], 'metrics-port');
  const healthPort = port(values['health-port'], 'health-port');

  const kubeConfig = new KubeConfig();
  if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
  else kubeConfig.loadFromDefault();
  const namespace = values.namespace ?? (await inClusterNamespace()) ?? 'gatehouse-system';
  const logger = pino({
    level: logLevel,
    base: { service: 'gatehouse-operator' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });

  let exitCode = 0;
  const operator = await startOperator({
    kubeConfig,
    logger,
    namespace,
    sidecarImage: image,
    metricsPort,
    healthPort,
    leaderElect: leaderElect === 'true',
    bindHost: values['bind-address'],
    ...(collectorUrl !== undefined && {
      collector: {
        url: collectorUrl.replace(/\/$/, ''),
        cluster: clusterName,
        serviceName: values['collector-service-name'],
        secretName: values['collector-secret-name'],
        certMode,
      },
    }),
    ...(webhookPort !== 0 && {
      webhook: {
        port: webhookPort,
        configurationName: values['webhook-config-name'],
        serviceName: values['webhook-service-name'],
        secretName: values['webhook-secret-name'],
        certMode,
        ...(values['approvals-url'] !== undefined && { approvalsUrl: approvalsUrl(values['approvals-url']) }),
      },
    }),
    onLeadershipLost: () => {
      // Another replica may lead by now; this one's caches and queues cannot be trusted to stand down cleanly.
      logger.fatal('leadership lost: exiting so the replica restarts as a follower');
      exitCode = 1;
      process.kill(process.pid, 'SIGTERM');
    },
  });
  if (!(await untilSignal(logger, () => operator.stop()))) exitCode = 1;
  return exitCode;
}

function approvalsUrl(value: string): string {
  if (!/^https:\/\/[^/]+\/?$/.test(value))
    throw new UserError(`--approvals-url is "${value}"; use https://HOST[:PORT]`);
  return value;
}

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UserError(`--${flag} is "${value}"; use a port number`);
  return n;
}

async function inClusterNamespace(): Promise<string | undefined> {
  return readFile(IN_CLUSTER_NAMESPACE, 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
}
