import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { psql } from './support/clients.ts';
import { REPO_ROOT } from './support/proxy-process.ts';

const pgInfo = inject('postgres');
const QUICKSTART_CONFIG = join(REPO_ROOT, 'examples/quickstart/gatehouse.yaml');

/** The quickstart config with free ports and the audit log in `dir`, so tests never collide. */
function quickstartConfigIn(dir: string): string {
  const config = parseAllDocuments(readFileSync(QUICKSTART_CONFIG, 'utf8'))[0]!.toJS() as Record<
    string,
    unknown
  >;
  config['listen'] = '127.0.0.1:0';
  config['admin'] = { listen: '127.0.0.1:0' };
  config['audit'] = { ...(config['audit'] as object), file: join(dir, 'audit.jsonl') };
  config['log'] = { level: 'info' };
  const file = join(dir, 'gatehouse.yaml');
  const policy = readFileSync(QUICKSTART_CONFIG, 'utf8').split(/^---$/m).slice(1);
  writeFileSync(file, [stringify(config), ...policy].join('---'));
  return file;
}

let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
});

/** Starts a command and resolves with the port the proxy reports in its "listening" log line. */
function startAndWaitForPort(args: string[], cwd: string): Promise<{ port: number; output: () => string }> {
  child = spawn(process.execPath, ['--liftoff-only', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"listen":"127\.0\.0\.1:(\d+)"/.exec(output);
      if (match) resolve({ port: Number(match[1]), output: () => output });
    };
    child!.stdout!.on('data', onData);
    child!.stderr!.on('data', onData);
    child!.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
}

describe('quickstart', () => {
  it('npm start serves the sample data through Gatehouse to demo and admin, and audits it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
    const { port, output } = await startAndWaitForPort(
      [
        join(REPO_ROOT, 'sidecar/src/quickstart/main.ts'),
        '--data-dir',
        join(dir, 'db'),
        '--config',
        quickstartConfigIn(dir),
      ],
      dir,
    );
    const demo = await psql(`postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT count(*) FROM customers',
    ]);
    expect(demo.stderr).toBe('');
    expect(demo.stdout.trim()).toBe('200');
    // The quickstart serves TLS with a CA of its own (clientTls: auto), and the banner names its file.
    const caFile = join(dir, '.gatehouse/tls/ca.crt');
    const verified = await psql(
      `postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=verify-full&sslrootcert=${caFile}`,
      ['-At', '-c', 'SELECT count(*) FROM products'],
    );
    expect(verified.stderr).toBe('');
    expect(verified.stdout.trim()).toBe('12');
    expect(output()).toContain(`TLS CA     ${caFile}`);
    const admin = await psql(`postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT count(*) FROM orders',
    ]);
    expect(admin.stdout.trim()).toBe('1000');
    // demo sees personal data masked (emails tokenized, cards partial, the rest redacted); admin in clear.
    const demoRow = await psql(`postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT name, email, ssn, card_number FROM customers WHERE id = 1',
    ]);
    const adminRow = await psql(`postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT name, email, ssn, card_number FROM customers WHERE id = 1',
    ]);
    const [name, email, ssn, card] = adminRow.stdout.trim().split('|');
    expect(ssn).toMatch(/^9\d\d-\d\d-\d{4}$/);
    const [maskedName, maskedEmail, maskedSsn, maskedCard] = demoRow.stdout.trim().split('|');
    expect([maskedName, maskedSsn]).toEqual(['****', '****']);
    expect(maskedEmail).toMatch(/^[^@]+@[^@]+\.[a-z]+$/);
    expect(maskedEmail).not.toBe(email);
    expect(maskedCard).toBe(`************${card!.slice(-4)}`);
    expect(demoRow.stdout).not.toContain(name!);
    const dropped = await psql(`postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-c',
      'DELETE FROM orders',
    ]);
    expect(dropped.code).not.toBe(0);
    expect(dropped.stderr).toContain('Gatehouse guardrail "defaults"');
    const truncate = await psql(`postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-c',
      'TRUNCATE orders',
    ]);
    expect(truncate.stderr).toMatch(/approval/);
    const still = await psql(`postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT count(*) FROM orders',
    ]);
    expect(still.stdout.trim()).toBe('1000');
    const wrong = await psql(`postgres://demo:nope@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-c',
      'SELECT 1',
    ]);
    expect(wrong.code).not.toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
    expect(audit).toContain('"subject":"local:demo"');
    expect(audit).toContain('"statement":"SELECT count(*) FROM customers"');
    expect(output()).toContain('psql "postgres://demo:demo@');
  }, 180_000);

  it('runs the same policy in front of a real PostgreSQL with --upstream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
    const upstream = `postgres://${pgInfo.admin.user}:${encodeURIComponent(pgInfo.admin.password)}@${pgInfo.host}:${pgInfo.port}/${pgInfo.database}`;
    const { port } = await startAndWaitForPort(
      [
        join(REPO_ROOT, 'sidecar/src/main.ts'),
        'proxy',
        '--config',
        quickstartConfigIn(dir),
        '--upstream',
        upstream,
      ],
      dir,
    );
    const result = await psql(`postgres://demo:demo@127.0.0.1:${port}/app?sslmode=disable`, [
      '-At',
      '-c',
      'SELECT current_database(), version()',
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^app\|PostgreSQL 15/);
  });
});
