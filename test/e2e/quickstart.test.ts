import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { psql } from './support/clients.ts';
import { MAIN, REPO_ROOT } from './support/proxy-process.ts';

const pgInfo = inject('postgres');
const QUICKSTART_CONFIG = join(REPO_ROOT, 'examples/quickstart/gatehouse.yaml');

/** The quickstart config with free ports and the audit log in `dir`, so tests never collide. */
function quickstartConfigIn(dir: string, logLevel = 'info'): string {
  const config = parseAllDocuments(readFileSync(QUICKSTART_CONFIG, 'utf8'))[0]!.toJS() as Record<
    string,
    unknown
  >;
  config['listen'] = '127.0.0.1:0';
  config['admin'] = { listen: '127.0.0.1:0' };
  config['audit'] = { ...(config['audit'] as object), file: join(dir, 'audit.jsonl') };
  config['log'] = { level: logLevel };
  const file = join(dir, 'gatehouse.yaml');
  const policy = readFileSync(QUICKSTART_CONFIG, 'utf8').split(/^---$/m).slice(1);
  writeFileSync(file, [stringify(config), ...policy].join('---'));
  return file;
}

/** Seeding takes seconds: the quickstart tests share one sample database, started one at a time. */
const sharedDataDir = join(mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-db-')), 'db');

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

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs a command to its end. */
function runToExit(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spawn(process.execPath, ['--liftoff-only', ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  run.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  run.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => run.once('close', (code) => resolve({ code, stdout, stderr })));
}

async function waitForOutput(
  output: () => string,
  pattern: RegExp,
  from: number,
  timeoutMs = 10_000,
): Promise<string> {
  for (let waited = 0; waited < timeoutMs; waited += 100) {
    const found = pattern.exec(output().slice(from));
    if (found) return found[0];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${pattern} in the output:\n${output().slice(from)}`);
}

describe('quickstart', () => {
  it('npm start serves the sample data through Gatehouse to demo and admin, and audits it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
    const { port, output } = await startAndWaitForPort(
      [
        join(REPO_ROOT, 'sidecar/src/quickstart/main.ts'),
        '--data-dir',
        sharedDataDir,
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
    // PGlite reports standard_conforming_strings and client_encoding as PostgreSQL does, so a
    // backslash in a '...' string and non-ASCII text are read, not refused (server-reading.ts).
    const reading = await psql(`postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-At',
      '-c',
      "SELECT 'a\\b' || 'é'",
    ]);
    expect(reading.stderr).toBe('');
    expect(reading.stdout.trim()).toBe('a\\bé');
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
    // admin's TRUNCATE waits for approval; admin may not approve its own, lead denies it (the CLI as a
    // user would run it, against the quickstart's admin endpoint).
    const truncating = psql(`postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`, [
      '-c',
      'TRUNCATE orders',
    ]);
    const adminPort = /"admin":"127\.0\.0\.1:(\d+)"/.exec(output())?.[1];
    expect(adminPort).toBeDefined();
    const approvals = (user: string, ...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [MAIN, 'approvals', ...args, '--server', `http://127.0.0.1:${adminPort}`, '--user', user],
          { env: { ...process.env, GATEHOUSE_PASSWORD: user } },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    let held: { id: string; statement: string } | undefined;
    for (let i = 0; i < 100 && !held; i++) {
      const listed = await approvals('lead', 'list', '--json', '--phase', 'Pending');
      held = (JSON.parse(listed.stdout || '[]') as { id: string; statement: string }[])[0];
      if (!held) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(held?.statement).toBe('TRUNCATE orders');
    const own = await approvals('admin', 'approve', held!.id, '--reason', 'mine');
    expect(own.code).toBe(1);
    expect(own.stderr).toContain('may not decide it');
    const denied = await approvals('lead', 'deny', held!.id, '--reason', 'keep the sample data');
    expect(denied.stdout).toBe(`${held!.id} denied by local:lead\n`);
    const truncate = await truncating;
    expect(truncate.stderr).toContain('statement held for approval');
    expect(truncate.stderr).toContain(`request ${held!.id} was denied by local:lead: keep the sample data`);
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
    // The proxy ships its records to the collector beside it: lead (an approver) reads them there
    // with `gatehouse audit query`; demo, who is not, may not.
    expect(output()).toContain('Collector  http://127.0.0.1:7450');
    const auditQuery = (user: string, ...args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [MAIN, 'audit', 'query', ...args, '--user', user, '--password', user, '--format', 'json'],
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    let shipped: { statement?: string; subject?: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const answer = await auditQuery('lead', '--subject', 'local:demo', '--limit', '1000');
      expect(answer.stderr).toBe('');
      shipped = JSON.parse(answer.stdout).items ?? JSON.parse(answer.stdout);
      if (shipped.some((row) => row.statement === 'SELECT count(*) FROM customers')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(shipped.map((row) => row.statement)).toContain('SELECT count(*) FROM customers');
    expect(shipped.every((row) => row.subject === 'local:demo')).toBe(true);
    const notAReader = await auditQuery('demo');
    expect(notAReader.code).not.toBe(0);
    // The banner names the console, where lead signs in and finds the decision among the approvals.
    expect(output()).toContain('Console    http://127.0.0.1:7450/console (sign in as lead)');
    const signIn = await fetch('http://127.0.0.1:7450/console/sign-in', {
      method: 'POST',
      body: new URLSearchParams({ method: 'local', user: 'lead', password: 'lead' }),
      redirect: 'manual',
    });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    let approvalsPage = '';
    for (let i = 0; i < 100 && !approvalsPage.includes('keep the sample data'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      approvalsPage = await (
        await fetch('http://127.0.0.1:7450/console/approvals?phase=', { headers: { cookie } })
      ).text();
    }
    expect(approvalsPage).toContain(held!.id);
    expect(approvalsPage).toContain('local:lead: keep the sample data');
  }, 180_000);

  it('signs its audit log with a key kept in its data directory, so the log verifies across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
    const config = quickstartConfigIn(dir);
    const keyFile = join(dir, 'audit-signing-key.pem');
    for (const run of [1, 2]) {
      const { port, output } = await startAndWaitForPort(
        [
          join(REPO_ROOT, 'sidecar/src/quickstart/main.ts'),
          '--data-dir',
          join(dir, 'db'),
          '--config',
          config,
        ],
        dir,
      );
      const result = await psql(`postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`, [
        '-At',
        '-c',
        `SELECT ${run}`,
      ]);
      expect(result.stdout.trim()).toBe(String(run));
      expect(output()).toContain(`--public-key ${keyFile}.pub`);
      const exited = new Promise((r) => child!.once('exit', r));
      child!.kill('SIGTERM');
      await exited;
    }
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const verified = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [MAIN, 'audit', 'verify', join(dir, 'audit.jsonl'), '--public-key', `${keyFile}.pub`],
        (error, stdout) => (error ? reject(new Error(`${error.message}\n${stdout}`)) : resolve(stdout)),
      ),
    );
    expect(verified).toMatch(
      /^ok: .* sealed, head anchor matched, keys pinned\n {2}key \w+ from seq 1: pinned/,
    );
    // One key across both runs: no second key line.
    expect(verified.trim().split('\n')).toHaveLength(2);
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

  it("moves its ports by flag, and a second start refuses before touching the first one's files", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-quickstart-'));
    const [port, adminPort, dbPort] = [await freePort(), await freePort(), await freePort()];
    // The quickstart's own log level (warn): what it shows is what a user sees.
    const config = quickstartConfigIn(dir, 'warn');
    const quickstart = join(REPO_ROOT, 'sidecar/src/quickstart/main.ts');
    const dataDir = sharedDataDir;
    const first = { args: ['--data-dir', dataDir, '--config', config] };
    child = spawn(
      process.execPath,
      [
        '--liftoff-only',
        quickstart,
        ...first.args,
        '--port',
        `${port}`,
        '--admin-port',
        `${adminPort}`,
        '--db-port',
        `${dbPort}`,
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const output = () => text;
    // The first start initialises the database: slow on a busy machine.
    await waitForOutput(output, new RegExp(`Gatehouse is listening on 127\\.0\\.0\\.1:${port}`), 0, 150_000);
    expect(output()).toContain(`Metrics    http://127.0.0.1:${adminPort}/metrics`);
    const firstPid = child.pid!;
    const auditFile = join(dir, 'audit.jsonl');
    const demo = `postgres://demo:demo@127.0.0.1:${port}/postgres?sslmode=disable`;
    const admin = `postgres://admin:admin@127.0.0.1:${port}/postgres?sslmode=disable`;
    expect((await psql(demo, ['-At', '-c', 'SELECT 1'])).stdout.trim()).toBe('1');
    /** Who opened the audit log: a second writer would add a log.open of its own. */
    const opens = () =>
      readFileSync(auditFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes('"type":"log.open"'))
        .map((line) => JSON.parse(line).pid);

    // The same ports: refused on the first port, before any file is touched.
    const samePorts = await runToExit(
      [
        quickstart,
        '--data-dir',
        join(dir, 'other'),
        '--config',
        config,
        '--port',
        `${port}`,
        '--admin-port',
        `${adminPort}`,
      ],
      dir,
    );
    expect(samePorts.code).toBe(2);
    expect(samePorts.stderr).toBe(
      `gatehouse quickstart: port ${port} on 127.0.0.1 (the proxy) is in use (another Gatehouse?); choose another with --port\n`,
    );
    const sameDbPort = await runToExit(
      [
        quickstart,
        '--data-dir',
        join(dir, 'other'),
        '--config',
        config,
        '--port',
        '0',
        '--admin-port',
        '0',
        '--db-port',
        `${dbPort}`,
      ],
      dir,
    );
    expect(sameDbPort.stderr).toBe(
      `gatehouse quickstart: port ${dbPort} on 127.0.0.1 (the embedded database) is in use (another Gatehouse?); choose another with --db-port\n`,
    );
    expect(existsSync(join(dir, 'other'))).toBe(false);
    // Free ports, the same database: refused, naming the first process.
    // Free ports but the collector's (the default, 7450, which the first one holds): refused on it.
    const sameCollectorPort = await runToExit(
      [quickstart, '--data-dir', join(dir, 'other'), '--config', config, '--port', '0', '--admin-port', '0'],
      dir,
    );
    expect(sameCollectorPort.stderr).toBe(
      'gatehouse quickstart: port 7450 on 127.0.0.1 (the audit collector) is in use (another Gatehouse?); choose another with --collector-port\n',
    );
    expect(existsSync(join(dir, 'other'))).toBe(false);
    const sameData = await runToExit(
      [quickstart, ...first.args, '--port', '0', '--admin-port', '0', '--collector-port', '0'],
      dir,
    );
    expect(sameData.code).toBe(2);
    expect(sameData.stderr).toMatch(
      new RegExp(
        `^gatehouse quickstart: the database ${dataDir} is in use by process ${firstPid} \\(another Gatehouse\\?\\)`,
      ),
    );
    // Free ports, the same audit log: refused, naming the first process.
    const sameAudit = await runToExit(
      [
        join(REPO_ROOT, 'sidecar/src/main.ts'),
        'proxy',
        '--config',
        config,
        '--listen',
        '127.0.0.1:0',
        '--admin-listen',
        '127.0.0.1:0',
        '--upstream',
        `postgres://${pgInfo.admin.user}:${encodeURIComponent(pgInfo.admin.password)}@${pgInfo.host}:${pgInfo.port}/${pgInfo.database}`,
      ],
      dir,
    );
    expect(sameAudit.code).toBe(2);
    expect(sameAudit.stderr).toMatch(
      new RegExp(
        `^gatehouse: the audit log \\S*audit\\.jsonl is in use by process ${firstPid} \\(another Gatehouse\\?\\)`,
      ),
    );
    expect(opens()).toEqual([firstPid]);

    // COPY FROM a file through Gatehouse into the embedded database, then other sessions go on.
    const csv = join(dir, 'orders.csv');
    writeFileSync(
      csv,
      '1,10.50,paid,1 Main St,2025-01-01 10:00:00+00\n2,20.00,pending,2 Main St,2025-01-02 10:00:00+00\n',
    );
    const orders = async () => (await psql(demo, ['-At', '-c', 'SELECT count(*) FROM orders'])).stdout.trim();
    const before = Number(await orders());
    const copied = await psql(admin, [
      '-c',
      `\\copy orders (customer_id, amount, status, shipped_to, created_at) FROM '${csv}' CSV`,
    ]);
    expect(copied.stderr).toBe('');
    expect(copied.stdout.trim()).toBe('COPY 2');
    expect(Number(await orders())).toBe(before + 2);

    // Saving the file with its policy deleted is refused, loudly, and masking stays.
    const policyFile = readFileSync(config, 'utf8');
    const settingsOnly = policyFile.split(/^---$/m)[0]!;
    let from = output().length;
    writeFileSync(config, settingsOnly);
    expect(await waitForOutput(output, /.*policy reload refused.*/, from)).toContain(
      'now holds no policy documents (it held Guardrail defaults, Guardrail admin-approvals, MaskingPolicy pii, DatabaseAccess demo, DatabaseAccess admin)',
    );
    const ssn = () => psql(demo, ['-At', '-c', 'SELECT ssn FROM customers WHERE id = 1']);
    expect((await ssn()).stdout.trim()).toBe('****');

    // A change is shown at the quickstart's log level, with what changed.
    from = output().length;
    writeFileSync(
      config,
      policyFile.replace('    - columns: ["customers.card_number"]\n      method: partial\n', ''),
    );
    expect(await waitForOutput(output, /.*policy reloaded.*/, from)).toContain('changed MaskingPolicy pii');
    // Saying so, a file may hold no policy.
    from = output().length;
    writeFileSync(config, `${settingsOnly}policy:\n  none: true\n`);
    expect(await waitForOutput(output, /.*policy reloaded.*/, from)).toContain(
      'removed Guardrail defaults, Guardrail admin-approvals, MaskingPolicy pii, DatabaseAccess demo, DatabaseAccess admin',
    );
    expect((await ssn()).stdout.trim()).toMatch(/^9\d\d-\d\d-\d{4}$/);

    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    const verify = await runToExit(
      [join(REPO_ROOT, 'sidecar/src/main.ts'), 'audit', 'verify', auditFile],
      dir,
    );
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);
  }, 240_000);
});
