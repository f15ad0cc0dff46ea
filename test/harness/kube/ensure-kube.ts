// Builds kube-apiserver (every tested version) and etcd into the cache when missing, so a test run
// does not spend its first minutes compiling. Run as a script: `node test/harness/kube/ensure-kube.ts`.
import { kubeBinaries } from './kube-binaries.ts';
import { KUBE_VERSIONS } from './versions.ts';

for (const version of KUBE_VERSIONS) await kubeBinaries(version);
