import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../../..');
const MAIN = join(ROOT, 'sidecar/src/main.ts');
const QUICKSTART = join(ROOT, 'examples/quickstart/gatehouse.yaml');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The real CLI on the project's Node (the one running the tests). */
function gatehouse(...argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...argv], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A one-line error: exit 2, one prefix, nothing on stdout. */
function expectOneLineError(result: ReturnType<typeof gatehouse>, pattern: RegExp): void {
  expect(result, JSON.stringify(result)).toMatchObject({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
  expect(result.stderr).not.toMatch(/gatehouse: gatehouse/);
  expect(result.stderr).toMatch(pattern);
}

describe('gatehouse --version', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  it.each([['--version'], ['version']])('%s prints the package version', (flag) => {
    expect(gatehouse(flag)).toEqual({ code: 0, stdout: `gatehouse ${version}\n`, stderr: '' });
  });
});

describe('--help', () => {
  it.each([
    [['--help'], 'usage: gatehouse <command>'],
    [['help'], 'usage: gatehouse <command>'],
    [['proxy', '--help'], 'usage: gatehouse proxy --config FILE'],
    [['operator', '--help'], 'usage: gatehouse operator'],
    [['status', '--help'], 'usage: gatehouse status'],
    [['audit', '--help'], 'usage: gatehouse audit verify FILE'],
    [['audit', 'verify', '--help'], 'usage: gatehouse audit verify FILE'],
    [['approvals', '--help'], 'usage: gatehouse approvals list'],
    [['collector', '--help'], 'usage: gatehouse collector'],
    [['audit', 'query', '--help'], 'usage: gatehouse audit query'],
    [['approve', '--help'], 'usage: gatehouse approve NAME'],
    [['deny', '--help'], 'usage: gatehouse approve NAME'],
    [['mcp', '--help'], 'usage: gatehouse mcp'],
  ])('gatehouse %j prints its usage on stdout and exits 0', (argv, usage) => {
    const result = gatehouse(...argv);
    expect(result, JSON.stringify(result)).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.startsWith(usage)).toBe(true);
  });

  it('lists every option of audit verify, --allow-unsealed among them', () => {
    for (const argv of [
      ['audit', '--help'],
      ['audit', 'verify', '--help'],
    ]) {
      const { stdout } = gatehouse(...argv);
      for (const option of ['--allow-unsealed', '--public-key PEMFILE', '--head HEADFILE', '--help'])
        expect(stdout, argv.join(' ')).toContain(option);
    }
  });

  it('documents --log-level and --log-format for proxy', () => {
    const { stdout } = gatehouse('proxy', '--help');
    expect(stdout).toMatch(/--log-level LEVEL +fatal, error, warn, info \(default\), debug or trace/);
    expect(stdout).toMatch(/--log-format FORMAT/);
  });
});

describe('bad input: one line, one prefix, exit 2', () => {
  it.each([
    [['proxy', '--bogus'], /Unknown option '--bogus' \(see gatehouse proxy --help\)/],
    [['operator', '--bogus'], /Unknown option '--bogus' \(see gatehouse operator --help\)/],
    [['status', '--bogus'], /Unknown option '--bogus' \(see gatehouse status --help\)/],
    [['status', '-o', 'yaml'], /-o must be table or json/],
    [
      ['audit', 'verify', '--bogus', 'x.jsonl'],
      /Unknown option '--bogus' \(see gatehouse audit verify --help\)/,
    ],
    [['audit', 'verify'], /give exactly one log FILE/],
    [['audit'], /gatehouse audit verify FILE/],
    [['audit', 'check'], /unknown audit subcommand "check"/],
    [['nonsense'], /unknown command "nonsense"/],
    [['collector', '--bogus'], /Unknown option '--bogus' \(see gatehouse collector --help\)/],
    [['collector'], /store.url \(or --store URL\) is required/],
    [['collector', '--store', 'mysql://x'], /the store URL must start with postgres/],
    [
      ['collector', '--store', 'pglite:memory', '--retention-days', '0'],
      /retentionDays: must be a whole number/,
    ],
    [['audit', 'query', '--bogus'], /Unknown option '--bogus' \(see gatehouse audit query --help\)/],
    [['audit', 'query', 'tables'], /asks for one of statements, sessions, sources/],
    [
      ['audit', 'query', '--since', 'lately', '--user', 'u', '--password', 'p'],
      /--since: "lately" is neither/,
    ],
    [['audit', 'query'], /say who you are/],
    [
      ['collector', '--store', 'postgres://nobody:secret-password@127.0.0.1:1/none'],
      /^gatehouse: cannot open the collector's store: connect ECONNREFUSED 127.0.0.1:1$/m,
    ],
    [['proxy'], /^gatehouse: --config FILE is required \(see gatehouse proxy --help\)$/m],
    [['operator'], /^gatehouse: --sidecar-image IMAGE is required$/m],
  ])('gatehouse %j', (argv, pattern) => {
    expectOneLineError(gatehouse(...argv), pattern);
  });

  it('blames a bad --upstream on the flag, not on the config file, and never echoes the URL', () => {
    const notUrl = gatehouse('proxy', '--config', QUICKSTART, '--upstream', 'db.internal 5432');
    expectOneLineError(notUrl, /^gatehouse: --upstream is not a URL \(expected postgres:\/\/ or mysql:\/\//);
    expect(notUrl.stderr).not.toContain('gatehouse.yaml');
    const withPassword = gatehouse(
      'proxy',
      '--config',
      QUICKSTART,
      '--upstream',
      'postgres://app:hunter2@/shop',
    );
    expectOneLineError(withPassword, /^gatehouse: --upstream is not a URL/);
    expect(withPassword.stderr).not.toContain('hunter2');
    const noUser = gatehouse('proxy', '--config', QUICKSTART, '--upstream', 'postgres:///shop');
    expectOneLineError(noUser, /^gatehouse: --upstream names no user/);
    const scheme = gatehouse('proxy', '--config', QUICKSTART, '--upstream', 'redis://app@db:6379/0');
    expectOneLineError(scheme, /^gatehouse: --upstream has scheme "redis"/);
  });

  it('blames --listen, --admin-listen and --log-level on the flag', () => {
    expectOneLineError(
      gatehouse('proxy', '--config', QUICKSTART, '--listen', 'nowhere'),
      /^gatehouse: --listen .*HOST:PORT/,
    );
    expectOneLineError(
      gatehouse('proxy', '--config', QUICKSTART, '--admin-listen', '127.0.0.1:99999'),
      /^gatehouse: --admin-listen "127.0.0.1:99999" is not HOST:PORT/,
    );
    expectOneLineError(
      gatehouse('proxy', '--config', QUICKSTART, '--log-level', 'loud'),
      /^gatehouse: --log-level must be one of fatal, error, warn, info, debug, trace/,
    );
    expectOneLineError(
      gatehouse('proxy', '--config', QUICKSTART, '--log-format', 'xml'),
      /^gatehouse: --log-format must be one of auto, json, pretty/,
    );
  });

  it('reports a policy typo in one line that counts documents as an editor does', () => {
    const text = readFileSync(QUICKSTART, 'utf8');
    // The first Guardrail is the file's second document (after the proxy settings).
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, text.replace('kinds: [drop,', 'kinds: [dropp,'));
    const result = gatehouse('proxy', '--config', typo);
    expectOneLineError(
      result,
      /^gatehouse: \S+typo\.yaml: Guardrail "defaults" \(document 2\): spec\.rules\[0\]\.kinds\[0\]: must be one of drop,/,
    );
    const documents = text.split(/^---$/m);
    expect(documents[1]).toMatch(/kind: Guardrail\nmetadata:\n {2}name: defaults\n/);
  });
});
