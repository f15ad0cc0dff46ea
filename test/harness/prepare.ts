// Everything slow that the tests need, done before vitest starts, with a line for every step:
// the Debian packages, then kube-apiserver, etcd and helm built from the Go module proxy. Tests
// only look these up (a missing one is an error naming this script), so no test hook ever waits
// on a build. A machine that has them passes through here in well under a second.
// Run as a script: `node test/harness/prepare.ts` (`npm test` runs it first).
import { spawnSync } from 'node:child_process';
import { buildHelm } from './helm.ts';
import { buildKubeBinaries } from './kube/kube-binaries.ts';
import { KUBE_VERSIONS } from './kube/versions.ts';

const started = performance.now();

// The package step is a script of its own so that the benchmark can run it alone.
const packages = spawnSync(process.execPath, [`${import.meta.dirname}/ensure-packages.ts`], {
  stdio: 'inherit',
});
if (packages.status !== 0) process.exit(packages.status ?? 1);

try {
  for (const version of KUBE_VERSIONS) await buildKubeBinaries(version);
  await buildHelm();
} catch (error) {
  process.stderr.write(`prepare: ${(error as Error).message}\n`);
  process.exit(1);
}

const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stderr.write(`prepare: Debian packages, kube-apiserver, etcd and helm ready (${seconds} s)\n`);
