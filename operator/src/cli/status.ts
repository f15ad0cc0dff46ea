import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import { parseCliArgs } from '../../../sidecar/src/cli/parse-cli-args.ts';
import { UserError } from '../../../sidecar/src/errors.ts';
import {
  ANNOTATION_INJECTED,
  ANNOTATION_SPEC_HASH,
  bundleConfigMapName,
  INJECT_DISABLED,
  LABEL_INJECT,
} from '../sidecar-layout.ts';
import type { DatabaseAccess } from '../workload/database-access.ts';
import { injectionPlan, injectPod } from '../workload/inject-pod.ts';
import { matchesAccess } from '../workload/matches-access.ts';
import { parseServerVersion, type ServerVersion } from '../workload/server-version.ts';
import { sidecarContainerName } from '../workload/sidecar-container-name.ts';
import { describeApiFailure } from './api-failure.ts';

export const STATUS_USAGE = `usage: gatehouse status [-n NAMESPACE] [-o table|json] [--image IMAGE] [--kubeconfig FILE]

Shows each DatabaseAccess: its Ready condition, policy bundle, selected workloads, and which of
the pods it selects run its sidecar, which do not (and why), and conflicts found in them.

  -n, --namespace NS   only this namespace (default: all namespaces)
  -o, --output FORMAT  table (default) or json
  --image IMAGE        the operator's sidecar image, to tell pods with an older sidecar image;
                       without it, a pod's own sidecar image is taken as current
  --kubeconfig FILE    default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account`;

export type StatusOptions = {
  /** A kubeconfig file; when absent, the usual places (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string;
  /** Where the report goes (default: stdout). */
  write?: (text: string) => void;
};

export type AccessStatus = {
  namespace: string;
  name: string;
  ready: { status: string; reason?: string; message?: string };
  bundle: { configMap: string; present: boolean };
  /** The workloadSelector in words: `Deployment/web`, `app=orders`. */
  workloads: string;
  pods: {
    selected: number;
    injected: string[];
    missing: Array<{ pod: string; reason: string }>;
    optedOut: string[];
  };
  conflicts: Array<{ pod: string; message: string }>;
};

const GROUP = 'gatehouse.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'databaseaccesses';

/** `gatehouse status` (also `kubectl gatehouse status`): returns the exit code. */
export async function runStatusCommand(argv: string[], options: StatusOptions = {}): Promise<number> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const { values } = parseCliArgs(
    {
      args: argv,
      strict: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        output: { type: 'string', short: 'o', default: 'table' },
        image: { type: 'string' },
        kubeconfig: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    'status',
  );
  if (values.help) {
    write(`${STATUS_USAGE}\n`);
    return 0;
  }
  if (values.output !== 'table' && values.output !== 'json') {
    throw new UserError(`-o must be table or json, not "${values.output}"`);
  }
  const config = new KubeConfig();
  const file = values.kubeconfig ?? options.kubeconfig;
  try {
    if (file !== undefined) config.loadFromFile(file);
    else config.loadFromDefault();
  } catch (error) {
    throw new UserError(`cannot load the kubeconfig${file ? ` ${file}` : ''}: ${(error as Error).message}`);
  }
  // What the client falls back to when it finds no kubeconfig and no service account.
  const cluster = config.getCurrentCluster();
  if (file === undefined && cluster?.name === 'cluster' && cluster.server === 'http://localhost:8080')
    throw new UserError(
      'no kubeconfig found: set KUBECONFIG, create ~/.kube/config or pass --kubeconfig FILE',
    );
  let statuses: AccessStatus[];
  try {
    statuses = await collectStatus(config, { namespace: values.namespace, image: values.image });
  } catch (error) {
    throw new UserError(describeApiFailure(config.getCurrentCluster()?.server, error));
  }
  write(
    values.output === 'json' ? `${JSON.stringify({ items: statuses }, null, 2)}\n` : formatTable(statuses),
  );
  return 0;
}

/** The status of every DatabaseAccess (of one namespace, or all), read from the cluster. */
export async function collectStatus(
  config: KubeConfig,
  options: { namespace?: string | undefined; image?: string | undefined } = {},
): Promise<AccessStatus[]> {
  const custom = config.makeApiClient(CustomObjectsApi);
  const core = config.makeApiClient(CoreV1Api);
  const serverVersion = parseServerVersion(await config.makeApiClient(VersionApi).getCode());
  const list = (await (options.namespace === undefined
    ? custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })
    : custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: options.namespace,
        plural: PLURAL,
      }))) as { items: Array<DatabaseAccess & { status?: { conditions?: Condition[] } }> };
  const accesses = [...list.items].sort(
    (a, b) =>
      (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const podsByNamespace = new Map<string, V1Pod[]>();
  const statuses: AccessStatus[] = [];
  for (const access of accesses) {
    const namespace = access.metadata.namespace ?? 'default';
    let pods = podsByNamespace.get(namespace);
    if (pods === undefined) {
      pods = (await core.listNamespacedPod({ namespace })).items.filter(
        (pod) => pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed',
      );
      podsByNamespace.set(namespace, pods);
    }
    const bundle = bundleConfigMapName(access.metadata.name);
    statuses.push({
      namespace,
      name: access.metadata.name,
      ready: readyCondition(access.status?.conditions),
      bundle: { configMap: bundle, present: await configMapExists(core, namespace, bundle) },
      workloads: describeSelector(access),
      ...podStatus(access, pods, serverVersion, options.image),
    });
  }
  return statuses;
}

type Condition = { type: string; status: string; reason?: string; message?: string };

function readyCondition(conditions: Condition[] | undefined): AccessStatus['ready'] {
  const ready = conditions?.find((condition) => condition.type === 'Ready');
  if (ready === undefined) return { status: 'Unknown', reason: 'NotReconciled' };
  return {
    status: ready.status,
    ...(ready.reason !== undefined && { reason: ready.reason }),
    ...(ready.message !== undefined && { message: ready.message }),
  };
}

async function configMapExists(core: CoreV1Api, namespace: string, name: string): Promise<boolean> {
  try {
    await core.readNamespacedConfigMap({ namespace, name });
    return true;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return false;
    throw error;
  }
}

function describeSelector(access: DatabaseAccess): string {
  const selector = access.spec.workloadSelector;
  if (selector === undefined) return '(none: gateway only)';
  const parts: string[] = [];
  if (selector.name !== undefined || selector.kind !== undefined) {
    parts.push(`${selector.kind ?? 'Deployment'}/${selector.name ?? '*'}`);
  }
  if (selector.matchLabels !== undefined) {
    const labels = Object.entries(selector.matchLabels).map(([key, value]) => `${key}=${value}`);
    parts.push(labels.length > 0 ? labels.join(',') : '(all pods)');
  }
  return parts.join(' ');
}

/**
 * Sorts the pods an access selects into injected (its sidecar, current spec hash) and missing
 * (no sidecar, another access's sidecar, or a stale one), and collects conflicts the way the
 * webhook would find them for this pod today.
 */
function podStatus(
  access: DatabaseAccess,
  pods: V1Pod[],
  serverVersion: ServerVersion,
  image: string | undefined,
): Pick<AccessStatus, 'pods' | 'conflicts'> {
  const result: Pick<AccessStatus, 'pods' | 'conflicts'> = {
    pods: { selected: 0, injected: [], missing: [], optedOut: [] },
    conflicts: [],
  };
  const containerName = sidecarContainerName(access.metadata.name);
  for (const pod of pods) {
    if (!matchesAccess(pod, access)) continue;
    const name = pod.metadata?.name ?? '';
    result.pods.selected++;
    const labels = pod.metadata?.labels ?? {};
    const annotations = pod.metadata?.annotations ?? {};
    if (labels[LABEL_INJECT] === INJECT_DISABLED || annotations[LABEL_INJECT] === INJECT_DISABLED) {
      result.pods.optedOut.push(name);
      continue;
    }
    const sidecar = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (container) => container.name === containerName,
    );
    const currentImage = access.spec.sidecar?.image ?? image ?? sidecar?.image ?? '';
    const injection = injectPod({ pod, access, image: currentImage, serverVersion });
    for (const message of injection.conflicts) result.conflicts.push({ pod: name, message });
    const injectedBy = annotations[ANNOTATION_INJECTED];
    if (injectedBy !== undefined && injectedBy !== access.metadata.name) {
      result.pods.missing.push({
        pod: name,
        reason: `has the sidecar of DatabaseAccess ${injectedBy}, which also selects it (one sidecar per pod)`,
      });
    } else if (injectedBy === undefined || sidecar === undefined) {
      result.pods.missing.push({
        pod: name,
        reason:
          injection.skipped === 'conflict'
            ? 'no sidecar: it cannot run in this pod (see conflicts)'
            : 'no sidecar: the pod was created before the access selected it, or while the webhook was unavailable; restart the workload',
      });
    } else if (
      annotations[ANNOTATION_SPEC_HASH] !== injectionPlan(access, currentImage, serverVersion).hash
    ) {
      result.pods.missing.push({
        pod: name,
        reason:
          'stale sidecar: the access or the sidecar image changed since the pod was created; restart the workload',
      });
    } else {
      result.pods.injected.push(name);
    }
  }
  return result;
}

function formatTable(statuses: AccessStatus[]): string {
  if (statuses.length === 0) return 'No DatabaseAccesses found.\n';
  const header = ['NAMESPACE', 'NAME', 'READY', 'BUNDLE', 'WORKLOADS', 'INJECTED', 'MISSING', 'CONFLICTS'];
  const rows = statuses.map((status) => [
    status.namespace,
    status.name,
    status.ready.reason === undefined
      ? status.ready.status
      : `${status.ready.status} (${status.ready.reason})`,
    status.bundle.present ? status.bundle.configMap : `${status.bundle.configMap} (absent)`,
    status.workloads,
    `${status.pods.injected.length}/${status.pods.selected - status.pods.optedOut.length}`,
    String(status.pods.missing.length),
    String(status.conflicts.length),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('   ')
      .trimEnd();
  const details = statuses.flatMap((status) => {
    const where = `${status.namespace}/${status.name}`;
    return [
      ...status.pods.missing.map((missing) => `${where}: pod ${missing.pod}: ${missing.reason}`),
      ...status.conflicts.map((conflict) => `${where}: pod ${conflict.pod}: ${conflict.message}`),
      ...status.pods.optedOut.map(
        (pod) => `${where}: pod ${pod}: opted out (${LABEL_INJECT}=${INJECT_DISABLED})`,
      ),
    ];
  });
  return [line(header), ...rows.map(line), ...(details.length > 0 ? ['', ...details] : [])].join('\n') + '\n';
}
