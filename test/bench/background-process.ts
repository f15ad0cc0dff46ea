import { spawn } from 'node:child_process';
import { connect } from 'node:net';

export type BackgroundProcess = {
  readonly name: string;
  readonly pid: number;
  /** Resolves with how it ended ("exit code 1", "signal SIGTERM") once it has. */
  readonly exited: Promise<string>;
  /** Its last lines of output, for error messages. */
  recentOutput(): string;
  /** The line of its recent output that most likely says what went wrong. */
  likelyCause(): string;
  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  stop(): Promise<void>;
};

export type BackgroundOptions = {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with every line the process writes to stdout or stderr. */
  onLine?: (line: string) => void;
};

const KEPT_LINES = 40;
const STOP_GRACE_MS = 5_000;

/**
 * Starts a long-running server. It gets its own process group so that a Ctrl-C in the terminal reaches
 * only the benchmark, which then stops the servers in order instead of having them die under a live run.
 * Its output is always drained: a full pipe would stall the server and skew the measurement.
 */
export function startBackground(
  name: string,
  file: string,
  args: readonly string[],
  options: BackgroundOptions = {},
): BackgroundProcess {
  const child = spawn(file, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      partial += chunk;
      let newline = partial.indexOf('\n');
      while (newline >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        lines.push(line);
        if (lines.length > KEPT_LINES) lines.shift();
        options.onLine?.(line);
        newline = partial.indexOf('\n');
      }
    });
  };
  collect(child.stdout!);
  collect(child.stderr!);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`could not run ${file}: ${error.message}`));
    child.once('exit', (code, signal) => resolve(signal === null ? `exit code ${code}` : `signal ${signal}`));
  });
  let stopping: Promise<void> | undefined;
  return {
    name,
    pid: child.pid ?? -1,
    exited,
    recentOutput: () => lines.join('\n'),
    likelyCause: () => likelyCause(lines),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** Waits until something accepts TCP connections on 127.0.0.1:port, or fails early if the process exits. */
export async function waitForPort(
  server: BackgroundProcess,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  let exitedHow: string | undefined;
  void server.exited.then((how) => {
    exitedHow = how;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitedHow !== undefined) {
      throw new Error(
        `${server.name} exited (${exitedHow}) before listening: ${server.likelyCause()}\n${server.recentOutput()}`,
      );
    }
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `${server.name} did not listen on port ${port} within ${timeoutMs} ms:\n${server.recentOutput()}`,
  );
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Servers log JSON (pino: the message of the first error or fatal entry) or text (Node's crash report:
 * its first line naming an error); failing both, the last line is the best guess.
 */
function likelyCause(lines: readonly string[]): string {
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
      if ((entry.level ?? 0) >= 50 && entry.msg !== undefined) return entry.msg;
    } catch {
      // Not JSON after all: the text rules below apply.
    }
  }
  return (
    lines.find((line) => /\b(error|fatal)\b/i.test(line))?.trim() ??
    lines.findLast((line) => line.trim() !== '')?.trim() ??
    '(no output)'
  );
}
