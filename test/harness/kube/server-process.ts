import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';

/** A server program running in the background, its output in a log file. */
export type ServerProcess = {
  name: string;
  /** How it ended, e.g. 'exit code 1'; undefined while it runs. */
  exitStatus(): string | undefined;
  logTail(): Promise<string>;
  /** Kills it at once: every server here keeps its state in a directory that is thrown away. */
  stop(): Promise<void>;
};

const READY_POLL_MS = 250;
const LOG_TAIL_LINES = 30;

export async function spawnServer(
  name: string,
  binary: string,
  args: readonly string[],
  logFile: string,
): Promise<ServerProcess> {
  const log = await open(logFile, 'w');
  const child = spawn(binary, args, { stdio: ['ignore', log.fd, log.fd] });
  // The child holds its own copy of the descriptor.
  await log.close();
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('error', (error) => {
      status ??= `could not run: ${error.message}`;
      resolve();
    });
    child.on('exit', (code, signal) => {
      status ??= signal === null ? `exit code ${code}` : `signal ${signal}`;
      resolve();
    });
  });
  // A test process that exits without stopping its cluster must not leave the servers running.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  return {
    name,
    exitStatus: () => status,
    logTail: async () => {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      return text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
    },
    async stop() {
      process.off('exit', killOnExit);
      if (status === undefined) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls ready() until it says yes; fails early, with the log tail, when the server exits first. */
export async function waitUntilReady(
  server: ServerProcess,
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = server.exitStatus();
    if (status !== undefined) {
      throw new Error(
        `${server.name} stopped (${status}) before it was ready; log tail:\n${await server.logTail()}`,
      );
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${server.name} was not ready after ${timeoutMs} ms; log tail:\n${await server.logTail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
}
