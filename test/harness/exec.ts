import { spawn } from 'node:child_process';
import { runningAsRoot } from './os-user.ts';

export type ExecOptions = {
  /** Run as this OS user through runuser; only honoured when we are root (otherwise we already are ourselves). */
  user?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to standard input, which is closed afterwards; without it the child reads /dev/null. */
  input?: string;
  timeoutMs?: number;
  /** Resolve with the exit code instead of rejecting when the command fails. */
  allowFailure?: boolean;
};

export type ExecResult = { code: number; stdout: string; stderr: string };

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Runs a program and collects its output. Errors name the program and carry its stderr,
 * never its arguments or input, which may hold passwords.
 */
export function exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const asOtherUser = options.user !== undefined && runningAsRoot();
  const command = asOtherUser ? '/sbin/runuser' : file;
  const commandArgs = asOtherUser ? ['-u', options.user!, '--', file, ...args] : [...args];
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${file}: could not run: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const exitCode = code ?? 128;
      if (timedOut) {
        reject(new Error(`${file}: no answer after ${timeoutMs} ms; stderr: ${tail(stderr)}`));
      } else if (exitCode !== 0 && !options.allowFailure) {
        const how = signal === null ? `exit code ${exitCode}` : `signal ${signal}`;
        reject(new Error(`${file} failed with ${how}: ${tail(stderr) || tail(stdout)}`));
      } else {
        resolve({ code: exitCode, stdout, stderr });
      }
    });
    if (options.input !== undefined) {
      // A child that exits before reading all input must not crash us with EPIPE.
      child.stdin?.on('error', () => {});
      child.stdin?.end(options.input);
    }
  });
}

function tail(text: string): string {
  return text.trim().split('\n').slice(-20).join('\n');
}
