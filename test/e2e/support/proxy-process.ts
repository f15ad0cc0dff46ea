import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const MAIN = join(REPO_ROOT, 'sidecar/src/main.ts');

export interface ProxyProcess {
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly dir: string;
  readonly auditFile: string | undefined;
  readonly child: ChildProcess;
  /** Every stdout/stderr line so far (pino JSON and audit records). */
  readonly lines: string[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resident and peak memory of the proxy process, from /proc. */
  memory(): { rssKb: number; peakKb: number };
  /** Parsed JSON log lines that carry an audit record. */
  auditRecords(): Record<string, unknown>[];
}

/**
 * Runs the real CLI (`gatehouse proxy`) as a child process on Node 24, with `config` written as its YAML
 * file; the proxy listens on a free port that it reports in its first log line.
 */
export async function startProxyProcess(
  config: Record<string, unknown>,
  options: { args?: string[]; env?: NodeJS.ProcessEnv; extraDocuments?: readonly unknown[] } = {},
): Promise<ProxyProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-'));
  const file = join(dir, 'gatehouse.yaml');
  const merged: Record<string, unknown> = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    ...config,
  };
  writeFileSync(file, [merged, ...(options.extraDocuments ?? [])].map((doc) => stringify(doc)).join('---\n'));
  const child = spawn(
    process.execPath,
    ['--liftoff-only', MAIN, 'proxy', '--config', file, ...(options.args ?? [])],
    {
      cwd: dir,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const listening = new Promise<{ port: number; adminPort: number | undefined }>((resolveListen, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (line.includes('gatehouse proxy listening')) {
          const entry = JSON.parse(line) as { listen: string; admin?: string };
          resolveListen({
            port: Number(entry.listen.split(':').pop()),
            adminPort: entry.admin ? Number(entry.admin.split(':').pop()) : undefined,
          });
        }
        newline = buffered.indexOf('\n');
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) =>
      reject(new Error(`proxy exited with ${code} before listening:\n${lines.join('\n')}`)),
    );
  });
  const { port, adminPort } = await listening;
  const auditPath = (merged['audit'] as { file?: string } | undefined)?.file;
  const auditFile = auditPath === undefined ? undefined : resolve(dir, auditPath);
  return {
    port,
    adminPort,
    dir,
    auditFile,
    child,
    lines,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
      return { rssKb: kb('VmRSS'), peakKb: kb('VmHWM') };
    },
    auditRecords() {
      return lines
        .filter((l) => l.startsWith('{') && l.includes('"audit"'))
        .map((l) => (JSON.parse(l) as { audit: Record<string, unknown> }).audit)
        .filter((r) => r !== undefined);
    },
  };
}
