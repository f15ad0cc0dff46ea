import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SIDECAR_ARGS } from '../../operator/src/sidecar-layout.ts';

/**
 * There is no container engine on the build machines, so the images are not built here. What can
 * be checked without one is checked: the instructions of each Dockerfile against the invariants the
 * chart and the injector rely on.
 */

const root = resolve(import.meta.dirname, '../..');

type Instruction = { keyword: string; args: string };
type Stage = { from: string; instructions: Instruction[] };

/** Instructions grouped by stage, with continuation lines joined and comments dropped. */
function stages(dockerfile: string): Stage[] {
  const logical = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const result: Stage[] = [];
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') result.push({ from: args, instructions: [] });
    else result.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
  }
  return result;
}

const args = (stage: Stage, keyword: string) =>
  stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.args);

async function nodeMajor(): Promise<string> {
  const engines = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')).engines.node as string;
  return /^>=(\d+)/.exec(engines)![1]!;
}

describe.each([
  ['Dockerfile.operator', ['operator']],
  ['Dockerfile.sidecar', [...SIDECAR_ARGS]],
])('%s', (file, defaultArgs) => {
  const load = async () => stages(await readFile(resolve(root, file), 'utf8'));

  it('builds and runs on the Node major that package.json requires, bookworm-slim', async () => {
    const major = await nodeMajor();
    for (const stage of await load())
      expect(stage.from).toMatch(new RegExp(`^node:${major}-bookworm-slim( AS \\w+)?$`));
  });

  it('builds in a separate stage: npm ci, npm run build, then production dependencies only', async () => {
    const [build, runtime, ...rest] = await load();
    expect(rest).toEqual([]);
    expect(build!.from).toMatch(/ AS build$/);
    const commands = args(build!, 'RUN').join(' && ');
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((step) => commands.indexOf(step));
    expect(order.every((position) => position >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Everything tsconfig.build.json compiles must be in the build context the stage copies.
    const include = JSON.parse(await readFile(resolve(root, 'tsconfig.build.json'), 'utf8'))
      .include as string[];
    const copied = args(build!, 'COPY').map((copy) => copy.split(/\s+/)[0]);
    for (const source of include) expect(copied).toContain(source.split('/')[0]);
    expect(args(runtime!, 'RUN')).toEqual([]);
    expect(args(runtime!, 'COPY')).toEqual(
      expect.arrayContaining([
        '--from=build /src/node_modules ./node_modules',
        '--from=build /src/dist ./dist',
      ]),
    );
  });

  it('runs as a non-root numeric user, which runAsNonRoot can verify', async () => {
    const runtime = (await load()).at(-1)!;
    const [user] = args(runtime, 'USER');
    expect(user).toMatch(/^\d+:\d+$/);
    expect(user).toBe('65532:65532');
  });

  it('starts the gatehouse CLI with --liftoff-only and a bounded young generation, and the right subcommand by default', async () => {
    const runtime = (await load()).at(-1)!;
    const entrypoint = JSON.parse(args(runtime, 'ENTRYPOINT')[0]!) as string[];
    expect(entrypoint).toEqual([
      'node',
      '--liftoff-only',
      '--max-semi-space-size=8',
      '/app/dist/sidecar/src/main.js',
    ]);
    const bin = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8')).bin.gatehouse as string;
    expect(entrypoint.at(-1)).toBe(`/app/${bin}`);
    expect(existsSync(resolve(root, bin.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
    expect(JSON.parse(args(runtime, 'CMD')[0]!)).toEqual(defaultArgs);
  });
});

describe('the Dockerfile parser', () => {
  it('joins continuation lines and skips comments', () => {
    const parsed = stages('FROM a AS build\n# note\nRUN one \\\n  two\nFROM b\nUSER 1:1\n');
    expect(parsed).toEqual([
      { from: 'a AS build', instructions: [{ keyword: 'RUN', args: 'one    two' }] },
      { from: 'b', instructions: [{ keyword: 'USER', args: '1:1' }] },
    ]);
  });
});
