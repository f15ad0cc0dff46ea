import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const MAIN = join(resolve(import.meta.dirname, '../../..'), 'sidecar/src/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mcp-cli-'));
const mysqlConfig = join(dir, 'mysql.yaml');
writeFileSync(
  mysqlConfig,
  'upstream: {url: "mysql://u:p@127.0.0.1:1/db"}\nidentity: {mode: local, local: {users: [{name: a, password: b}]}}\naudit: {stdout: true}\npolicy: {none: true}\n',
);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function mcp(...argv: string[]) {
  const result = spawnSync(process.execPath, [MAIN, 'mcp', ...argv], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, GATEHOUSE_TOKEN: '', GATEHOUSE_PASSWORD: '' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('gatehouse mcp', () => {
  it('answers --help with its usage', () => {
    const result = mcp('--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: gatehouse mcp/);
  });

  it.each([
    [[], /--config FILE .* or --proxy HOST:PORT/],
    [['--proxy', '127.0.0.1:1', '--config', 'x.yaml', '--user', 'a', '--password', 'b'], /one of them/],
    [['--proxy', '127.0.0.1:1'], /one identity/],
    [['--proxy', '127.0.0.1:1', '--user', 'a', '--token', 't'], /one identity/],
    [['--proxy', '127.0.0.1:1', '--user', 'a'], /--user needs --password/],
    [['--proxy', 'nowhere', '--token', 't'], /--proxy must be HOST:PORT/],
    [['--proxy', '127.0.0.1:1', '--token', 't', '--http', '127.0.0.1'], /--http must be HOST:PORT/],
    [['--proxy', '127.0.0.1:1', '--token', 't', '--max-rows', '0'], /--max-rows must be a positive/],
    [['--proxy', '127.0.0.1:1', '--token', 't', '--approval-wait', '2.5'], /--approval-wait must be/],
    [['--proxy', '127.0.0.1:1', '--token', 't', '--upstream', 'postgres://x@y/z'], /go with --config/],
    [['--config', mysqlConfig, '--token', 't', '--protocol', 'mysql'], /--protocol goes with --proxy/],
    [
      ['--proxy', '127.0.0.1:1', '--token', 't', '--protocol', 'oracle'],
      /--protocol must be postgres or mysql/,
    ],
    [['--proxy', '127.0.0.1:1', '--token', ''], /--token is empty/],
    [['--bogus'], /Unknown option '--bogus'.*gatehouse mcp --help/],
  ])('refuses %j in one line', (argv, message) => {
    const result = mcp(...argv);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^gatehouse: [^\n]+\n$/);
    expect(result.stderr).toMatch(message);
  });
});
