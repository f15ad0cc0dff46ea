import { type ChildProcess, spawn } from 'node:child_process';
import { MAIN } from './proxy-process.ts';

/** A real `gatehouse collector` process, for the e2e tests of shipping and of the audit's questions. */
export interface CollectorProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `gatehouse collector --config FILE` on 127.0.0.1:PORT; resolves once it listens. */
export async function startCollectorProcess(
  config: string,
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CollectorProcess> {
  const child = spawn(
    process.execPath,
    ['--liftoff-only', MAIN, 'collector', '--config', config, '--listen', `127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const lines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        if (line.includes('gatehouse collector listening')) resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`collector exited before listening:\n${lines.join('\n')}`)));
  });
  return {
    child,
    lines,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
