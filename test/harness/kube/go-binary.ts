import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { exec } from '../exec.ts';
import { withFileLock } from './file-lock.ts';

export type GoBinaryRecipe = {
  /** The finished binary; once it exists, the build is never run again. */
  binary: string;
  /** The module that holds the main package, and the exact version to build. */
  module: string;
  version: string;
  mainPackage: string;
  /**
   * Replace lines for the throwaway module, worked out from the dependency's own go.mod (whose
   * replace lines do not apply to a module that requires it).
   */
  replace?: (dependencyGoMod: string) => Array<[string, string]>;
  ldflags: string[];
  /** Measured on two cores with empty Go caches; only for the log line that explains the wait. */
  expectedMinutes: number;
};

const GO_CANDIDATES = ['/usr/local/go/bin/go', '/usr/lib/go/bin/go'];
const BUILD_TIMEOUT_MS = 45 * 60_000;
const GO_MOD_TIMEOUT_MS = 10 * 60_000;
const HEARTBEAT_MS = 30_000;

/**
 * Builds a Go program once from the Go module proxy: a throwaway module requires the given
 * version, `go build` writes the binary into a temporary directory beside the final path, and a
 * rename publishes it, so a reader never sees half a binary. A lock file keeps two processes
 * from building the same binary at once. Only the preparation step (test/harness/prepare.ts)
 * calls this: a build takes minutes, far longer than any test hook may wait.
 */
export async function buildGoBinary(recipe: GoBinaryRecipe): Promise<string> {
  if (existsSync(recipe.binary)) return recipe.binary;
  const label = `${basename(recipe.binary)} ${recipe.version}`;
  await mkdir(dirname(recipe.binary), { recursive: true });
  const lockOptions = {
    waitMs: BUILD_TIMEOUT_MS,
    onWait: () => log(`waiting for another process that is building ${label}`),
  };
  await withFileLock(`${recipe.binary}.lock`, lockOptions, async () => {
    if (!existsSync(recipe.binary)) await build(recipe, label);
  });
  return recipe.binary;
}

/**
 * The path of a binary that the preparation step built. Tests call this: a missing binary is
 * an error that says how to build it, never a build inside a hook with a timeout.
 */
export function requireGoBinary(recipe: GoBinaryRecipe): string {
  if (existsSync(recipe.binary)) return recipe.binary;
  throw new Error(
    `${basename(recipe.binary)} ${recipe.version} is not built (expected at ${recipe.binary}): ` +
      'run `node test/harness/prepare.ts` first (`npm test` does)',
  );
}

async function build(recipe: GoBinaryRecipe, label: string): Promise<void> {
  const started = performance.now();
  log(
    `building ${label} from the Go module proxy (first run only, about ${recipe.expectedMinutes} min on two cores) into ${recipe.binary}`,
  );
  const workDir = await mkdtemp(join(dirname(recipe.binary), '.build-'));
  // Go prints nothing while it compiles; a line every half minute shows the build is alive.
  const heartbeat = setInterval(() => {
    const elapsed = Math.round((performance.now() - started) / 1000);
    log(`still building ${label} (${Math.floor(elapsed / 60)} min ${elapsed % 60} s so far)`);
  }, HEARTBEAT_MS);
  try {
    const go = goCommand();
    const dependency = await runGo(
      go,
      ['mod', 'download', '-json', `${recipe.module}@${recipe.version}`],
      workDir,
      {
        timeoutMs: GO_MOD_TIMEOUT_MS,
      },
    );
    const dependencyGoMod = await readFile((JSON.parse(dependency) as { GoMod: string }).GoMod, 'utf8');
    await writeFile(join(workDir, 'go.mod'), goMod(recipe, dependencyGoMod));
    // An import under a build tag that is never set keeps `go mod tidy` from dropping the requirement.
    await writeFile(
      join(workDir, 'tools.go'),
      `//go:build tools\n\npackage tools\n\nimport _ "${recipe.mainPackage}"\n`,
    );
    await runGo(go, ['mod', 'tidy'], workDir, { timeoutMs: GO_MOD_TIMEOUT_MS });
    const output = join(workDir, basename(recipe.binary));
    const ldflags = recipe.ldflags.join(' ');
    await runGo(
      go,
      ['build', '-trimpath', `-ldflags=${ldflags}`, '-o', output, recipe.mainPackage],
      workDir,
      {
        timeoutMs: BUILD_TIMEOUT_MS,
      },
    );
    await rename(output, recipe.binary);
  } finally {
    clearInterval(heartbeat);
    await rm(workDir, { recursive: true, force: true });
  }
  const seconds = Math.round((performance.now() - started) / 1000);
  const mebibytes = Math.round((await stat(recipe.binary)).size / 2 ** 20);
  log(`built ${label} in ${seconds} s (${mebibytes} MiB)`);
}

function goMod(recipe: GoBinaryRecipe, dependencyGoMod: string): string {
  // The dependency's go line, so language semantics and GODEBUG defaults are the ones it was released with.
  const goVersion = /^go\s+(\S+)/m.exec(dependencyGoMod)?.[1];
  if (goVersion === undefined)
    throw new Error(`${recipe.module}@${recipe.version}: its go.mod has no go line`);
  const replace = recipe.replace?.(dependencyGoMod) ?? [];
  const lines = [
    'module gatehouse.test/build',
    '',
    `go ${goVersion}`,
    '',
    `require ${recipe.module} ${recipe.version}`,
    ...(replace.length === 0
      ? []
      : ['', 'replace (', ...replace.map(([from, to]) => `\t${from} => ${to}`), ')']),
  ];
  return `${lines.join('\n')}\n`;
}

async function runGo(
  go: string,
  args: string[],
  cwd: string,
  options: { timeoutMs: number },
): Promise<string> {
  const env = {
    ...process.env,
    CGO_ENABLED: '0',
    // Never fetch another Go toolchain, and never let a go.work above the cache join the build.
    GOTOOLCHAIN: 'local',
    GOWORK: 'off',
    GOFLAGS: '-buildvcs=false',
  };
  // The lowest priority lets tests that run meanwhile keep their speed; the build takes the idle cores.
  try {
    const result = await exec('/usr/bin/nice', ['-n', '19', go, ...args], {
      cwd,
      env,
      timeoutMs: options.timeoutMs,
    });
    return result.stdout;
  } catch (error) {
    throw new Error(`go ${args.join(' ')} (in ${cwd}): ${(error as Error).message}`);
  }
}

function goCommand(): string {
  const go = GO_CANDIDATES.find((candidate) => existsSync(candidate));
  if (go === undefined)
    throw new Error(`no Go toolchain at ${GO_CANDIDATES.join(' or ')}; install Go 1.26 or newer`);
  return go;
}

function log(message: string): void {
  process.stderr.write(`prepare: ${message}\n`);
}
