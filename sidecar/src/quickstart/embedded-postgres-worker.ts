import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { UserError } from '../errors.ts';
import { acquireExclusiveLock } from '../exclusive-lock.ts';
import { CopyInBufferingDatabase } from './copy-in.ts';
import type { EmbeddedPostgres, EmbeddedPostgresOptions, WorkerReport } from './embedded-postgres.ts';

/**
 * The embedded database's thread (see embedded-postgres.ts). PGlite runs each statement synchronously,
 * so whatever shares its thread stops until the statement ends; here that is only its socket server.
 */

type ServedDatabase = Omit<EmbeddedPostgres, 'failure'>;

/**
 * PGlite is a single session. The socket server multiplexes clients onto it one message at a time;
 * while one client is inside a transaction the others wait. Without a limit above 1 the server takes
 * one client and drops the rest, so the proxy could not hold two sessions.
 */
const MAX_CLIENT_CONNECTIONS = 100;

async function serveDatabase(options: EmbeddedPostgresOptions): Promise<ServedDatabase> {
  const dataDir = resolve(options.dataDir);
  const host = options.host ?? '127.0.0.1';
  const seedSql = readSeed(options.seedFile);
  // PGlite does not lock its data directory: a second process opening it would corrupt it.
  mkdirSync(dirname(dataDir), { recursive: true });
  const lock = acquireExclusiveLock(dataDir, `the database ${dataDir}`);
  const releaseLock = () => lock.release();
  let db: PGlite | undefined;
  let seeded = false;
  let seedFailed = false;
  try {
    if (options.fresh) removeDatabase(dataDir);
    seeded = !isDatabase(dataDir);
    db = await openDatabase(dataDir, seeded);
    if (seeded) {
      seedFailed = true;
      await runSeed(db, seedSql, options.seedFile);
      seedFailed = false;
    }
    const served = new CopyInBufferingDatabase(db, {
      onFailure: (error) =>
        // Uncaught on purpose: the thread ends, and the quickstart stops saying why.
        setImmediate(() => {
          throw new Error(`PGlite failed: ${messageOf(error)}`);
        }),
    });
    const server = new PGLiteSocketServer({
      // The server uses only the members CopyInBufferingDatabase has (see copy-in.ts).
      db: served as unknown as PGlite,
      host,
      port: options.port ?? 0,
      maxConnections: MAX_CLIENT_CONNECTIONS,
    });
    await listen(server, host, options.port ?? 0);
    const port = Number(server.getServerConn().split(':').pop());
    const database = db;
    return {
      host,
      port,
      dataDir,
      seeded,
      async close() {
        try {
          // Stop the server first: detaching its clients rolls back their open transactions.
          await server.stop();
          await database.close();
        } finally {
          releaseLock();
        }
      },
    };
  } catch (error) {
    await db?.close().catch(() => {});
    // A half-seeded database would be reused as if it were complete on the next start.
    if (seedFailed) rmSync(dataDir, { recursive: true, force: true });
    releaseLock();
    throw error;
  }
}

function readSeed(seedFile: string): string {
  try {
    return readFileSync(seedFile, 'utf8');
  } catch (error) {
    throw new UserError(
      `cannot read the seed file ${seedFile} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

function isDatabase(dataDir: string): boolean {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return true;
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw new UserError(`${dataDir} exists but is not a database directory; choose another data directory`);
  }
  return false;
}

/** Deletes only what is recognisably a database directory, so a mistyped path cannot wipe other files. */
function removeDatabase(dataDir: string): void {
  if (isDatabase(dataDir)) rmSync(dataDir, { recursive: true, force: true });
}

async function openDatabase(dataDir: string, isNew: boolean): Promise<PGlite> {
  mkdirSync(dataDir, { recursive: true });
  try {
    return await PGlite.create(dataDir);
  } catch (error) {
    if (isNew) rmSync(dataDir, { recursive: true, force: true });
    const hint = isNew ? '' : '; start with --fresh to recreate it';
    throw new UserError(`cannot open the database in ${dataDir}: ${messageOf(error)}${hint}`);
  }
}

async function runSeed(db: PGlite, sql: string, seedFile: string): Promise<void> {
  try {
    await db.exec(sql);
  } catch (error) {
    throw new UserError(`the seed file ${seedFile} failed: ${messageOf(error)}`);
  }
}

async function listen(server: PGLiteSocketServer, host: string, port: number): Promise<void> {
  try {
    await server.start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem = code === 'EADDRINUSE' ? 'the address is in use' : (code ?? messageOf(error));
    throw new UserError(`the embedded database cannot listen on ${host}:${port}: ${problem}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function report(message: WorkerReport): void {
  parentPort!.postMessage(message);
}

try {
  const served = await serveDatabase(workerData as EmbeddedPostgresOptions);
  parentPort!.once('message', async () => {
    await served.close();
    parentPort!.close();
  });
  report({
    type: 'ready',
    host: served.host,
    port: served.port,
    dataDir: served.dataDir,
    seeded: served.seeded,
  });
} catch (error) {
  report({ type: 'failed', message: messageOf(error), userError: error instanceof UserError });
}
