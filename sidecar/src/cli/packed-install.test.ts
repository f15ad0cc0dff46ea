import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfigFor } from '../../../operator/src/cli/testdata/kubeconfig.ts';
import { freePort } from '../../../test/harness/free-port.ts';

/**
 * What a user who installs the CLI gets: the project packed with `npm pack` and installed with
 * `npm install -g --prefix DIR TARBALL`, as docs/install.md says, then run from DIR/bin.
 */
const ROOT = resolve(import.meta.dirname, '../../..');
const NODE_24_BIN = dirname(process.execPath);
/** The machine's own node (20 here): what a cluster admin may well have. */
const SYSTEM_NODE = spawnSync('sh', ['-c', 'PATH=/usr/local/bin:/usr/bin:/bin command -v node'], {
  encoding: 'utf8',
}).stdout.trim();
const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';
const SYSTEM_NODE_VERSION = spawnSync(SYSTEM_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
const SYSTEM_NODE_IS_OLD = Number(SYSTEM_NODE_VERSION.replace(/^v/, '').split('.')[0]) < 24;
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const INSTALL_TIMEOUT_MS = 10 * 60_000;

let dir: string;
let prefix: string;

function run(
  file: string,
  args: string[],
  path: string,
  cwd = dir,
): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(file, args, {
    cwd,
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, PATH: path, npm_config_update_notifier: 'false' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-install-'));
  prefix = join(dir, 'prefix');
  const path = `${NODE_24_BIN}:${process.env['PATH']}`;
  const pack = run('npm', ['pack', '--pack-destination', dir], path, ROOT);
  expect(pack.code, pack.stderr).toBe(0);
  const tarball = join(dir, `gatehouse-${version}.tgz`);
  // The tarball by its path: npm never asks the registry for a package named `gatehouse`
  // (an unrelated public one has that name); it fetches only the dependencies.
  const install = run(
    'npm',
    ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'],
    path,
  );
  expect(install.code, install.stderr).toBe(0);
}, INSTALL_TIMEOUT_MS);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the installed CLI', () => {
  it('answers --version on Node 24', () => {
    expect(run(join(prefix, 'bin/gatehouse'), ['--version'], `${NODE_24_BIN}:${SYSTEM_PATH}`)).toEqual({
      code: 0,
      stdout: `gatehouse ${version}\n`,
      stderr: '',
    });
  });

  // Needs a machine whose own node is older than 24, as this project's CI machine (Node 20) is.
  it.runIf(SYSTEM_NODE_IS_OLD)('names the Node.js it needs, in one line, on an older node', () => {
    const system = SYSTEM_NODE_VERSION;
    for (const bin of ['gatehouse', 'kubectl-gatehouse']) {
      const result = run(join(prefix, 'bin', bin), ['status'], SYSTEM_PATH);
      expect(result, bin).toEqual({
        code: 2,
        stdout: '',
        stderr: `gatehouse: needs Node.js 24 or later, but ${SYSTEM_NODE} is Node.js ${system.slice(1)}; install Node.js 24 (https://nodejs.org) and put it first on PATH\n`,
      });
    }
  });

  it('runs kubectl-gatehouse status on Node 24 and names the server and the cause when it cannot reach it', async () => {
    const closedPort = await freePort();
    const kubeconfig = join(dir, 'kubeconfig.yaml');
    writeFileSync(kubeconfig, kubeconfigFor(`https://127.0.0.1:${closedPort}`));
    const result = run(
      join(prefix, 'bin/kubectl-gatehouse'),
      ['status', '--kubeconfig', kubeconfig],
      `${NODE_24_BIN}:${SYSTEM_PATH}`,
    );
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `gatehouse: cannot reach the Kubernetes API server https://127.0.0.1:${closedPort}: connection refused (ECONNREFUSED)\n`,
    });
  });
});
