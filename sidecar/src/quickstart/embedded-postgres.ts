import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';

export interface EmbeddedPostgresOptions {
  /** Where the database files live; created and seeded when missing, reused otherwise. */
  readonly dataDir: string;
  /** SQL run once, when the database is created. */
  readonly seedFile: string;
  /** Delete an existing database first, so it is seeded again. */
  readonly fresh?: boolean;
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
}

/** PGlite served on a TCP socket: any user name, password and database name are accepted. */
export interface EmbeddedPostgres {
  readonly host: string;
  readonly port: number;
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  /** True when this start created the database and ran the seed. */
  readonly seeded: boolean;
  /** Settles only if the database stops without being asked to, with the reason. */
  readonly failure: Promise<Error>;
  /** Waits for running statements to end, then closes the clients, the server and the database. */
  close(): Promise<void>;
}

/** What the worker tells the thread that started it, once. */
export type WorkerReport =
  | {
      readonly type: 'ready';
      readonly host: string;
      readonly port: number;
      readonly dataDir: string;
      readonly seeded: boolean;
    }
  | { readonly type: 'failed'; readonly message: string; readonly userError: boolean };

/**
 * Starts PGlite and its socket server on a thread of their own. PGlite runs a statement synchronously
 * on its thread, so on the caller's a long query would freeze everything else there (the proxy,
 * metrics, Ctrl-C) until it ended.
 */
export function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const worker = new Worker(new URL('./embedded-postgres-worker.ts', import.meta.url), {
    workerData: options,
  });
  let lastError: Error | undefined;
  let closeRequested = false;
  worker.on('error', (error) => {
    lastError = error;
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const failure = exited.then(
    (code) =>
      new Error(
        `the embedded database stopped: ${lastError?.message ?? `its thread exited with code ${code}`}`,
      ),
  );

  return new Promise((resolve, reject) => {
    worker.once('message', (message: WorkerReport) => {
      if (message.type === 'failed') {
        reject(message.userError ? new UserError(message.message) : new Error(message.message));
        return;
      }
      let closing: Promise<void> | undefined;
      resolve({
        host: message.host,
        port: message.port,
        dataDir: message.dataDir,
        seeded: message.seeded,
        failure: failure.then((error) => (closeRequested ? new Promise<Error>(() => {}) : error)),
        close() {
          closeRequested = true;
          closing ??= (async () => {
            worker.postMessage('close');
            const code = await exited;
            if (code !== 0)
              throw new Error(
                `closing the embedded database failed: ${lastError?.message ?? `code ${code}`}`,
              );
          })();
          return closing;
        },
      });
    });
    failure.then(reject);
  });
}
