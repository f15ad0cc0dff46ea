import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Pod, V1ResourceRequirements, V1Volume } from '@kubernetes/client-node';
import {
  ADMIN_PORT,
  ANNOTATION_INJECTED,
  ANNOTATION_SPEC_HASH,
  AUDIT_MOUNT,
  AUDIT_SIGNING_KEY_MOUNT,
  AUDIT_SIGNING_KEY_SECRET,
  BUNDLE_MOUNT,
  bundleConfigMapName,
  CREDENTIALS_MOUNT,
  DEFAULT_LISTEN_PORT,
  INJECT_DISABLED,
  LABEL_INJECT,
  MASKING_KEY_MOUNT,
  MASKING_KEY_SECRET,
  SIDECAR_ARGS,
  TOKEN_MOUNT,
  tokenVolume,
  UPSTREAM_CA_FILE,
  UPSTREAM_CA_MOUNT,
  VOLUME_AUDIT,
  VOLUME_AUDIT_SIGNING_KEY,
  VOLUME_BUNDLE,
  VOLUME_CREDENTIALS,
  VOLUME_MASKING_KEY,
  VOLUME_TOKEN,
  VOLUME_UPSTREAM_CA,
} from '../sidecar-layout.ts';
import type { DatabaseAccess } from './database-access.ts';
import { type JsonPatchOperation, podPatch } from './json-patch.ts';
import { matchesAccess } from './matches-access.ts';
import { type ServerVersion, supportsNativeSidecars } from './server-version.ts';
import { sidecarContainerName } from './sidecar-container-name.ts';

/**
 * What one injection added and so may take away again: the sidecar container, the volumes and, per
 * app container, the variables that were not there before. Re-injection removes exactly these, so
 * an app's own `PGHOST` or volume is never touched. JSON, in this annotation of the pod.
 */
export const ANNOTATION_INJECTED_RESOURCES = 'gatehouse.dev/injected-resources';

export type InjectInput = {
  pod: V1Pod;
  access: DatabaseAccess;
  /** The operator's sidecar image; `spec.sidecar.image` overrides it. */
  image: string;
  serverVersion: ServerVersion;
};

/**
 * - `opted-out`: the pod says `gatehouse.dev/inject: disabled` (label or annotation).
 * - `not-selected`: the access does not select the pod.
 * - `up-to-date`: the pod already has this very injection (same spec hash).
 * - `conflict`: the sidecar cannot run in this pod (see `conflicts`).
 */
export type SkipReason = 'opted-out' | 'not-selected' | 'up-to-date' | 'conflict';

export type InjectResult = {
  pod: V1Pod;
  /** RFC 6902 operations from the input pod to `pod`; empty when nothing changed. */
  patch: JsonPatchOperation[];
  /** Sentences naming what was left out and why, for status conditions and admission warnings. */
  conflicts: string[];
  skipped?: SkipReason;
};

type InjectedResources = {
  container: string;
  volumes: string[];
  env: Record<string, string[]>;
  /** Set when injection named the default service account (see addSidecar). */
  serviceAccountName?: string;
};

/** Enough for a proxy that parses and relays; `spec.sidecar.resources` replaces both maps when set. */
const DEFAULT_RESOURCES: V1ResourceRequirements = {
  requests: { cpu: '50m', memory: '64Mi' },
  limits: { memory: '256Mi' },
};
/** A non-root user the sidecar image need not name: runAsNonRoot alone fails for images whose USER is a name. */
const SIDECAR_USER = 65532;
const LOOPBACK = '127.0.0.1';
const DEFAULT_SERVICE_ACCOUNT = 'default';

/**
 * Adds the Gatehouse sidecar for `access` to `pod`, a pure function of its input (pod in, pod out).
 * Never refuses a pod: what cannot be done is reported in `conflicts` and left out, the smallest
 * part possible (an app's own variable is kept; a sidecar that could not run is not added).
 */
export function injectPod(input: InjectInput): InjectResult {
  const { pod, access } = input;
  const unchanged = (skipped: SkipReason, conflicts: string[] = []): InjectResult => ({
    pod: structuredClone(pod),
    patch: [],
    conflicts,
    skipped,
  });
  if (optedOut(pod)) return unchanged('opted-out');
  if (!matchesAccess(pod, access)) return unchanged('not-selected');

  const plan = injectionPlan(access, input.image, input.serverVersion);
  const annotations = pod.metadata?.annotations ?? {};
  const result = removeInjection(pod);
  if (annotations[ANNOTATION_SPEC_HASH] === plan.hash && hasContainer(pod, plan.container.name)) {
    // Nothing changes, but the conflicts are still there to report: they are those of a fresh injection.
    return unchanged('up-to-date', addSidecar(result, access, plan).conflicts);
  }
  return addSidecar(result, access, plan, pod);
}

/** Adds the sidecar of `plan` to `result` (a pod without any injection, modified in place). */
function addSidecar(
  result: V1Pod,
  access: DatabaseAccess,
  plan: InjectionPlan,
  original = result,
): InjectResult {
  const spec = result.spec ?? { containers: [] };
  result.spec = spec;
  const blocking = blockingConflicts(result, plan);
  if (blocking.length > 0) {
    // A stale injection is still removed: its sidecar described an access that has changed.
    return { pod: result, patch: podPatch(original, result), conflicts: blocking, skipped: 'conflict' };
  }

  const conflicts: string[] = [];
  const ownedEnv: Record<string, string[]> = {};
  for (const app of appContainers(spec.initContainers ?? [], spec.containers, plan.native)) {
    const added: string[] = [];
    for (const variable of plan.env) {
      const existing = app.env?.find((candidate) => candidate.name === variable.name);
      if (existing === undefined) {
        app.env = [...(app.env ?? []), { ...variable }];
        added.push(variable.name);
      } else if (existing.value !== variable.value || existing.valueFrom !== undefined) {
        conflicts.push(
          `container ${app.name} already sets ${variable.name}; it keeps its own value and does not reach the database through the sidecar unless it uses ${variable.name}=${variable.value}`,
        );
      }
    }
    if (added.length > 0) ownedEnv[app.name] = added;
  }

  // A projected token needs a named service account. The ServiceAccount admission plugin names
  // `default` before webhooks run; where it is off (as in envtest-style clusters) injection does it.
  const namesServiceAccount = spec.serviceAccountName === undefined && spec.serviceAccount === undefined;
  if (namesServiceAccount) spec.serviceAccountName = DEFAULT_SERVICE_ACCOUNT;

  if (plan.native) spec.initContainers = [plan.container, ...(spec.initContainers ?? [])];
  else spec.containers = [plan.container, ...spec.containers];
  spec.volumes = [...(spec.volumes ?? []), ...plan.volumes];

  const owned: InjectedResources = {
    container: plan.container.name,
    volumes: plan.volumes.map((volume) => volume.name),
    env: ownedEnv,
    ...(namesServiceAccount && { serviceAccountName: DEFAULT_SERVICE_ACCOUNT }),
  };
  result.metadata = {
    ...result.metadata,
    annotations: {
      ...result.metadata?.annotations,
      [ANNOTATION_INJECTED]: access.metadata.name,
      [ANNOTATION_SPEC_HASH]: plan.hash,
      [ANNOTATION_INJECTED_RESOURCES]: JSON.stringify(owned),
    },
  };
  return { pod: result, patch: podPatch(original, result), conflicts };
}

export type InjectionPlan = {
  native: boolean;
  port: number;
  container: V1Container;
  volumes: V1Volume[];
  /** Set in every app container that does not set them already. */
  env: Array<{ name: string; value: string }>;
  /** Hash of all of the above: what an injection adds, so a pod with the same hash has nothing to change. */
  hash: string;
};

/** Everything injection adds for `access`, before it meets a pod. The status command uses it to find stale pods. */
export function injectionPlan(
  access: DatabaseAccess,
  image: string,
  serverVersion: ServerVersion,
): InjectionPlan {
  const native = supportsNativeSidecars(serverVersion);
  const protocol = access.spec.upstream?.protocol ?? 'postgres';
  const port = access.spec.sidecar?.port ?? DEFAULT_LISTEN_PORT[protocol];
  const volumes = sidecarVolumes(access);
  const container = sidecarContainer(access, access.spec.sidecar?.image ?? image, native, port, volumes);
  const env = appEnvironment(protocol, port, access.spec.upstream?.database);
  const hash = createHash('sha256')
    .update(JSON.stringify({ container, volumes, env }))
    .digest('hex')
    .slice(0, 16);
  return { native, port, container, volumes, env, hash };
}

function sidecarVolumes(access: DatabaseAccess): V1Volume[] {
  const volumes: V1Volume[] = [
    { name: VOLUME_BUNDLE, configMap: { name: bundleConfigMapName(access.metadata.name) } },
  ];
  const credentials = access.spec.upstream?.credentialsSecretRef;
  if (credentials !== undefined) {
    // Secret files belong to root and the sidecar runs as a non-root user without the pod's fsGroup,
    // so they must be world-readable; the volume is mounted into the sidecar container alone, where
    // no other process runs, so no app container can read them.
    volumes.push({ name: VOLUME_CREDENTIALS, secret: { secretName: credentials.name, defaultMode: 0o444 } });
  }
  volumes.push({ name: VOLUME_MASKING_KEY, secret: { secretName: MASKING_KEY_SECRET, defaultMode: 0o444 } });
  volumes.push({
    name: VOLUME_AUDIT_SIGNING_KEY,
    secret: { secretName: AUDIT_SIGNING_KEY_SECRET, defaultMode: 0o444 },
  });
  const ca = access.spec.upstream?.tls?.caSecretRef;
  if (ca !== undefined) {
    volumes.push({
      name: VOLUME_UPSTREAM_CA,
      secret: {
        secretName: ca.name,
        items: [{ key: ca.key ?? UPSTREAM_CA_FILE, path: UPSTREAM_CA_FILE }],
        defaultMode: 0o444,
      },
    });
  }
  volumes.push(tokenVolume(), { name: VOLUME_AUDIT, emptyDir: {} });
  return volumes;
}

const MOUNT_PATHS: Record<string, string> = {
  [VOLUME_BUNDLE]: BUNDLE_MOUNT,
  [VOLUME_CREDENTIALS]: CREDENTIALS_MOUNT,
  [VOLUME_MASKING_KEY]: MASKING_KEY_MOUNT,
  [VOLUME_AUDIT_SIGNING_KEY]: AUDIT_SIGNING_KEY_MOUNT,
  [VOLUME_UPSTREAM_CA]: UPSTREAM_CA_MOUNT,
  [VOLUME_TOKEN]: TOKEN_MOUNT,
  [VOLUME_AUDIT]: AUDIT_MOUNT,
};

function sidecarContainer(
  access: DatabaseAccess,
  image: string,
  native: boolean,
  port: number,
  volumes: V1Volume[],
): V1Container {
  const probe = (path: string) => ({ httpGet: { path, port: ADMIN_PORT } });
  return {
    name: sidecarContainerName(access.metadata.name),
    image,
    args: [...SIDECAR_ARGS],
    // Declared so that a second injection or a human sees the ports taken; the proxy port is bound to loopback.
    ports: [
      { name: 'gh-proxy', containerPort: port, protocol: 'TCP' },
      { name: 'gh-admin', containerPort: ADMIN_PORT, protocol: 'TCP' },
    ],
    // A native sidecar: started before the app containers and kept running beside them.
    ...(native && { restartPolicy: 'Always' }),
    resources: (access.spec.sidecar?.resources as V1ResourceRequirements | undefined) ?? DEFAULT_RESOURCES,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: SIDECAR_USER,
      runAsGroup: SIDECAR_USER,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // The token volume is mounted here only: app containers never hold the pod's Gatehouse identity.
    volumeMounts: volumes.map((volume) => ({
      name: volume.name,
      mountPath: MOUNT_PATHS[volume.name]!,
      ...(volume.name !== VOLUME_AUDIT && { readOnly: true }),
    })),
    // Native sidecars gate the app containers' start on this probe, so the app's first connection finds the proxy.
    startupProbe: { ...probe('/readyz'), periodSeconds: 1, failureThreshold: 120 },
    readinessProbe: { ...probe('/readyz'), periodSeconds: 5 },
    livenessProbe: { ...probe('/healthz'), periodSeconds: 10 },
  };
}

/**
 * Where the app finds its database: the sidecar on loopback. There are no credentials in these on
 * purpose: only processes in the pod reach 127.0.0.1, the sidecar proves the pod's identity with the
 * projected service-account token, and it logs in upstream with the Secret the app never sees.
 */
function appEnvironment(
  protocol: 'postgres' | 'mysql',
  port: number,
  database: string | undefined,
): Array<{ name: string; value: string }> {
  const url = `${protocol === 'postgres' ? 'postgres' : 'mysql'}://${LOOPBACK}:${port}${database === undefined ? '' : `/${encodeURIComponent(database)}`}`;
  if (protocol === 'postgres') {
    return [
      { name: 'PGHOST', value: LOOPBACK },
      { name: 'PGPORT', value: String(port) },
      { name: 'DATABASE_URL', value: url },
    ];
  }
  return [
    { name: 'MYSQL_HOST', value: LOOPBACK },
    { name: 'MYSQL_PORT', value: String(port) },
    // The mysql client reads MYSQL_TCP_PORT; frameworks read MYSQL_PORT.
    { name: 'MYSQL_TCP_PORT', value: String(port) },
    { name: 'DATABASE_URL', value: url },
  ];
}

/**
 * App containers: the regular ones and, with native sidecars, the init containers too (they run
 * after the sidecar has started, so a migration job can use it). Other native sidecars are left alone.
 */
function appContainers(
  initContainers: V1Container[],
  containers: V1Container[],
  native: boolean,
): V1Container[] {
  const init = native ? initContainers.filter((container) => container.restartPolicy !== 'Always') : [];
  return [...init, ...containers];
}

function blockingConflicts(pod: V1Pod, plan: InjectionPlan): string[] {
  const spec = pod.spec!;
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const conflicts: string[] = [];
  if (all.some((container) => container.name === plan.container.name)) {
    conflicts.push(
      `the pod already has a container named ${plan.container.name} that Gatehouse did not inject; no sidecar was added`,
    );
  }
  for (const port of [plan.port, ADMIN_PORT]) {
    const user = all.find((container) =>
      container.ports?.some((declared) => declared.containerPort === port),
    );
    if (user !== undefined) {
      conflicts.push(
        `container ${user.name} listens on port ${port}, which the sidecar needs; no sidecar was added (set spec.sidecar.port to a free port)`,
      );
    }
  }
  for (const volume of plan.volumes) {
    if (spec.volumes?.some((existing) => existing.name === volume.name)) {
      conflicts.push(
        `the pod already has a volume named ${volume.name} that Gatehouse did not inject; no sidecar was added`,
      );
    }
  }
  return conflicts;
}

/** The pod without what an earlier injection recorded in ANNOTATION_INJECTED_RESOURCES (a deep copy). */
function removeInjection(pod: V1Pod): V1Pod {
  const copy = structuredClone(pod);
  const annotations = copy.metadata?.annotations;
  const record = annotations?.[ANNOTATION_INJECTED_RESOURCES];
  if (annotations === undefined || record === undefined) return copy;
  const owned = parseInjectedResources(record);
  delete annotations[ANNOTATION_INJECTED];
  delete annotations[ANNOTATION_SPEC_HASH];
  delete annotations[ANNOTATION_INJECTED_RESOURCES];
  if (Object.keys(annotations).length === 0) delete copy.metadata!.annotations;
  const spec = copy.spec;
  if (owned === undefined || spec === undefined) return copy;
  if (owned.serviceAccountName !== undefined && spec.serviceAccountName === owned.serviceAccountName) {
    delete spec.serviceAccountName;
  }
  const notOurs = (container: V1Container) => container.name !== owned.container;
  spec.containers = spec.containers.filter(notOurs);
  if (spec.initContainers !== undefined) {
    spec.initContainers = spec.initContainers.filter(notOurs);
    if (spec.initContainers.length === 0) delete spec.initContainers;
  }
  if (spec.volumes !== undefined) {
    spec.volumes = spec.volumes.filter((volume) => !owned.volumes.includes(volume.name));
    if (spec.volumes.length === 0) delete spec.volumes;
  }
  for (const container of [...(spec.initContainers ?? []), ...spec.containers]) {
    const names = owned.env[container.name];
    if (names === undefined || container.env === undefined) continue;
    container.env = container.env.filter((variable: V1EnvVar) => !names.includes(variable.name));
    if (container.env.length === 0) delete container.env;
  }
  return copy;
}

/** A record someone has edited into nonsense owns nothing: better to keep a stray volume than remove the app's. */
function parseInjectedResources(text: string): InjectedResources | undefined {
  try {
    const value = JSON.parse(text) as Partial<InjectedResources>;
    if (typeof value.container !== 'string' || !Array.isArray(value.volumes)) return undefined;
    return {
      container: value.container,
      volumes: value.volumes,
      env: value.env ?? {},
      ...(typeof value.serviceAccountName === 'string' && { serviceAccountName: value.serviceAccountName }),
    };
  } catch {
    return undefined;
  }
}

function optedOut(pod: V1Pod): boolean {
  return (
    pod.metadata?.labels?.[LABEL_INJECT] === INJECT_DISABLED ||
    pod.metadata?.annotations?.[LABEL_INJECT] === INJECT_DISABLED
  );
}

function hasContainer(pod: V1Pod, name: string): boolean {
  const spec = pod.spec;
  return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].some(
    (container) => container.name === name,
  );
}
