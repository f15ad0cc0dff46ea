import { type ChildProcess, spawn } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { KubeApi } from '../../../operator/src/runtime/kube-api.ts';
import { MAIN } from './proxy-process.ts';

/**
 * What kubelet would do for an injected pod, done by the test because no kubelet runs beside the
 * test API server: each volume of the sidecar becomes a temporary directory (ConfigMap and Secret keys
 * written as kubelet's atomic writer does, the projected token from the TokenRequest API bound to the
 * pod, emptyDir empty), and the sidecar container runs as a local process. A real kubelet mounts the
 * volumes at the container's mount paths; a test cannot write to /etc, so the paths in the container's
 * args and in the mounted config are rewritten to the directories instead (`localPath`).
 */
export interface KubeletPlay {
  /** mountPath → local directory. */
  readonly mounts: ReadonlyMap<string, string>;
  /** The pod's name: the host name kubelet gives its containers (unless the pod spec sets one). */
  readonly podName: string;
  /** Rewrites every mount path in `text` to its local directory. */
  localPath(text: string): string;
  /** Re-reads the ConfigMap behind `volume` and projects its keys again, as kubelet's sync does. */
  resyncConfigMap(volume: string): Promise<void>;
}

export async function materializeVolumes(
  api: KubeApi,
  pod: V1Pod,
  container: V1Container,
): Promise<KubeletPlay> {
  const namespace = pod.metadata!.namespace!;
  const root = await mkdtemp(join(tmpdir(), 'gatehouse-kubelet-'));
  const mounts = new Map<string, string>();
  const configMapVolumes = new Map<string, { name: string; dir: string }>();
  const localPath = (text: string) => {
    let out = text;
    // Longest first, so a mount nested in another is rewritten by its own entry.
    for (const [mountPath, dir] of [...mounts].sort((a, b) => b[0].length - a[0].length))
      out = out.replaceAll(mountPath, dir);
    return out;
  };
  const project = (dir: string, data: Record<string, string>) =>
    projectFiles(
      dir,
      Object.fromEntries(Object.entries(data).map(([key, value]) => [key, localPath(value)])),
    );
  const volumes = pod.spec?.volumes ?? [];
  for (const mount of container.volumeMounts ?? []) {
    const dir = join(root, mount.name);
    await mkdir(dir);
    mounts.set(mount.mountPath, dir);
  }
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.find((v) => v.name === mount.name);
    const dir = mounts.get(mount.mountPath)!;
    if (!volume) throw new Error(`volume ${mount.name} is mounted but not defined`);
    if (volume.configMap) {
      configMapVolumes.set(volume.name, { name: volume.configMap.name!, dir });
      const configMap = await api.get<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${namespace}/configmaps/${volume.configMap.name}`,
      );
      await project(dir, configMap.data ?? {});
    } else if (volume.secret) {
      const secret = await api.get<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${namespace}/secrets/${volume.secret.secretName}`,
      );
      // `items` picks keys and names their files, as the kubelet does; without it every key is a file.
      const items = volume.secret.items ?? Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }));
      await projectFiles(
        dir,
        Object.fromEntries(
          items.map(({ key, path }) => [
            path,
            Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8'),
          ]),
        ),
      );
    } else if (volume.projected) {
      for (const source of volume.projected.sources ?? []) {
        const request = source.serviceAccountToken;
        if (!request) throw new Error(`projected volume ${volume.name} has a source this test cannot play`);
        const answer = await api.create<{ status: { token: string } }>(
          `/api/v1/namespaces/${namespace}/serviceaccounts/${pod.spec!.serviceAccountName ?? 'default'}/token`,
          {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              audiences: [request.audience],
              expirationSeconds: request.expirationSeconds,
              boundObjectRef: {
                apiVersion: 'v1',
                kind: 'Pod',
                name: pod.metadata!.name,
                uid: pod.metadata!.uid,
              },
            },
          },
        );
        await projectFiles(dir, { [request.path]: answer.status.token });
      }
    } else if (!volume.emptyDir) {
      throw new Error(`volume ${volume.name} is of a kind this test cannot play`);
    }
  }
  return {
    mounts,
    podName: pod.spec?.hostname ?? pod.metadata!.name!,
    localPath,
    async resyncConfigMap(volumeName) {
      const volume = configMapVolumes.get(volumeName);
      if (!volume) throw new Error(`no ConfigMap volume ${volumeName}`);
      const configMap = await api.get<{ data?: Record<string, string> }>(
        `/api/v1/namespaces/${namespace}/configmaps/${volume.name}`,
      );
      await project(volume.dir, configMap.data ?? {});
    },
  };
}

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly lines: string[];
  stop(): Promise<void>;
}

/**
 * Runs the container's command line (the image's entrypoint is `gatehouse`) with its environment,
 * on free loopback ports instead of the pod's fixed ones (`extraArgs`), and resolves once it listens.
 */
export async function runContainer(
  container: V1Container,
  kubelet: KubeletPlay,
  extraArgs: string[],
): Promise<SidecarProcess> {
  const args = [...(container.command?.slice(1) ?? []), ...(container.args ?? [])].map(kubelet.localPath);
  // A local process has the machine's host name; the proxy takes POD_NAME before it (audit.ship.pod).
  const env: NodeJS.ProcessEnv = { ...process.env, POD_NAME: kubelet.podName };
  for (const variable of container.env ?? [])
    if (variable.value !== undefined) env[variable.name] = variable.value;
  const child = spawn(process.execPath, ['--liftoff-only', MAIN, ...args, ...extraArgs], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (line.includes('gatehouse proxy listening'))
          resolve(Number((JSON.parse(line) as { listen: string }).listen.split(':').pop()));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`sidecar exited before listening:\n${lines.join('\n')}`)));
  });
  return {
    child,
    port,
    lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * Every key of a volume at once, the way kubelet's atomic writer does it (test/support/kubelet-volume.ts
 * does one file): a new timestamped directory, `..data` swapped to it by a rename, `KEY → ..data/KEY`
 * links, the previous directory removed. A reader sees the old set of files or the new one, never a mix.
 */
async function projectFiles(directory: string, files: Record<string, string>): Promise<void> {
  const stamp = `..${new Date().toISOString().replace(/[-:.]/g, '_')}.${process.hrtime.bigint()}`;
  await mkdir(join(directory, stamp));
  for (const [name, content] of Object.entries(files))
    await writeFile(join(directory, stamp, name), content, { mode: 0o600 });
  const previous = await readlink(join(directory, '..data')).catch(() => undefined);
  await symlink(stamp, join(directory, '..data_tmp'));
  await rename(join(directory, '..data_tmp'), join(directory, '..data'));
  for (const name of Object.keys(files)) {
    const exists = await lstat(join(directory, name)).then(
      () => true,
      () => false,
    );
    if (!exists) await symlink(`..data/${name}`, join(directory, name));
  }
  if (previous !== undefined) await rm(join(directory, previous), { recursive: true });
}
