import { homedir } from 'node:os';
import { join } from 'node:path';
import { buildGoBinary, type GoBinaryRecipe, requireGoBinary } from './go-binary.ts';
import { ETCD_VERSION, type KubeVersion } from './versions.ts';

export type KubeBinaries = { kubeApiserver: string; etcd: string };

/**
 * kube-apiserver and etcd for one Kubernetes version, as the preparation step built them from the
 * Go module proxy into $XDG_CACHE_HOME/gatehouse/kube (~/.cache/gatehouse/kube by default).
 */
export function kubeBinaries(version: KubeVersion): KubeBinaries {
  return {
    kubeApiserver: requireGoBinary(kubeApiserverRecipe(version)),
    etcd: requireGoBinary(etcdRecipe()),
  };
}

/** Builds what kubeBinaries needs when it is missing; one at a time, since each build alone keeps both cores busy. */
export async function buildKubeBinaries(version: KubeVersion): Promise<void> {
  await buildGoBinary(etcdRecipe());
  await buildGoBinary(kubeApiserverRecipe(version));
}

export function kubeCacheDir(): string {
  const cacheHome = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(cacheHome, 'gatehouse', 'kube');
}

function kubeApiserverRecipe(version: KubeVersion): GoBinaryRecipe {
  const [, minor, patch] = /^v1\.(\d+)\.(\d+)$/.exec(version)!;
  const versionPackage = 'k8s.io/component-base/version';
  return {
    binary: join(kubeCacheDir(), version, 'kube-apiserver'),
    module: 'k8s.io/kubernetes',
    version,
    mainPackage: 'k8s.io/kubernetes/cmd/kube-apiserver',
    replace: (goMod) => stagingReplacements(goMod, `v0.${minor}.${patch}`),
    ldflags: [
      '-s',
      '-w',
      // What `make` stamps in; without it /version says v0.0.0-master and clients cannot tell the release.
      `-X ${versionPackage}.gitVersion=${version}`,
      `-X ${versionPackage}.gitMajor=1`,
      `-X ${versionPackage}.gitMinor=${minor}`,
      `-X ${versionPackage}.gitTreeState=clean`,
    ],
    expectedMinutes: 5,
  };
}

function etcdRecipe(): GoBinaryRecipe {
  return {
    binary: join(kubeCacheDir(), `etcd-${ETCD_VERSION}`, 'etcd'),
    module: 'go.etcd.io/etcd/server/v3',
    version: ETCD_VERSION,
    // The server module's root package is etcd's main.
    mainPackage: 'go.etcd.io/etcd/server/v3',
    ldflags: ['-s', '-w'],
    expectedMinutes: 2,
  };
}

/**
 * k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and
 * replaces them with ./staging directories; every one is published as its own module at v0.MINOR.PATCH.
 */
function stagingReplacements(goMod: string, stagingVersion: string): Array<[string, string]> {
  const staged = [...goMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm)].map(
    (match) => match[1]!,
  );
  if (staged.length === 0) throw new Error('k8s.io/kubernetes go.mod lists no staging modules');
  return staged.map((module) => [module, `${module} ${stagingVersion}`]);
}
