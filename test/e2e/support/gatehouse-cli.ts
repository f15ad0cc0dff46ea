import { type ChildProcess, spawn } from 'node:child_process';
import { MAIN } from './proxy-process.ts';

/** A running `gatehouse` command (the real CLI on Node 24), its output so far, and its exit. */
export interface GatehouseCli {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first match of `pattern` in stdout+stderr; rejects if the command exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  readonly exit: Promise<number>;
}

/** Starts `gatehouse ARGS` with exactly `env`; `onClose` sees everything it printed. */
export function gatehouseCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  onClose: (stdout: string, stderr: string) => void = () => undefined,
): GatehouseCli {
  const child = spawn(process.execPath, ['--liftoff-only', MAIN, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    wake();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    wake();
  });
  const exit = new Promise<number>((resolve) =>
    child.on('close', (code) => {
      onClose(out, err);
      wake();
      resolve(code ?? -1);
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit,
    async waitFor(pattern) {
      for (;;) {
        const match = (out + err).match(pattern);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`gatehouse ${args.join(' ')} exited ${child.exitCode}:\n${out}\n${err}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}
