import type { PGlite } from '@electric-sql/pglite';
import { type CopyStmt, loadModule, parseSync, type RawStmt } from 'libpg-query';

/**
 * COPY ... FROM STDIN for PGlite behind its socket server.
 *
 * PGlite runs one protocol message at a time and returns. A COPY FROM STDIN then asks for CopyData
 * that is not in its input: the backend reads end of file, fails with "protocol synchronization was
 * lost" and exits, and the database is gone for every session. It does run a COPY whose data arrives
 * in the same call (Query, CopyData..., CopyDone). So this wrapper answers the COPY's Query with a
 * CopyInResponse of its own, keeps the client's CopyData, and hands PGlite the whole exchange at
 * CopyDone (or CopyFail), passing back everything but PGlite's own CopyInResponse.
 *
 * It stands in for PGlite in PGLiteSocketServer, which uses only the members below. While a COPY is
 * being gathered it reports a transaction in progress: the server's queue then serves only the
 * client that started it, and on that client's disconnect calls exec('ROLLBACK'), which drops it.
 *
 * Refused, with an error from PGlite itself (so the transaction state stays true): a COPY FROM STDIN
 * in a Query with other statements, and one prepared over the extended protocol, whose data would
 * arrive after an Execute that PGlite cannot hold open.
 */

export type CopyInDatabase = Pick<
  PGlite,
  'waitReady' | 'isInTransaction' | 'runExclusive' | 'execProtocolRawStream' | 'exec'
>;

export interface CopyInOptions {
  /** Most bytes of CopyData held for one COPY; beyond it the COPY fails (64 MiB by default). */
  readonly maxCopyBytes?: number;
  /** PGlite threw: it is most likely dead, and every session waits for it. */
  readonly onFailure?: (error: unknown) => void;
}

type StreamOptions = Parameters<PGlite['execProtocolRawStream']>[1];

/** What the text of a Query or Parse message means for COPY. */
type CopyKind = 'none' | 'alone' | 'with-others';

type State =
  | { readonly mode: 'idle' }
  | { readonly mode: 'copy-in'; readonly query: Buffer; data: Buffer[]; bytes: number; tooLarge: boolean }
  /** After a refused Parse: the extended protocol discards messages until Sync. */
  | { readonly mode: 'skip-to-sync' };

const DEFAULT_MAX_COPY_BYTES = 64 * 1024 * 1024;

export class CopyInBufferingDatabase implements CopyInDatabase {
  readonly #db: PGlite;
  readonly #maxCopyBytes: number;
  readonly #onFailure: ((error: unknown) => void) | undefined;
  #state: State = { mode: 'idle' };

  constructor(db: PGlite, options: CopyInOptions = {}) {
    this.#db = db;
    this.#maxCopyBytes = options.maxCopyBytes ?? DEFAULT_MAX_COPY_BYTES;
    this.#onFailure = options.onFailure;
  }

  get waitReady(): Promise<void> {
    return this.#db.waitReady;
  }

  isInTransaction(): boolean {
    return this.#state.mode !== 'idle' || this.#db.isInTransaction();
  }

  runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#db.runExclusive(fn);
  }

  /** Called by the socket server only to roll back the transaction of a client that went away. */
  exec(sql: string): ReturnType<PGlite['exec']> {
    this.#state = { mode: 'idle' };
    if (!this.#db.isInTransaction()) return Promise.resolve([]);
    return this.#db.exec(sql);
  }

  async execProtocolRawStream(message: Uint8Array, options: StreamOptions): Promise<void> {
    try {
      await this.#handle(Buffer.from(message.buffer, message.byteOffset, message.byteLength), options);
    } catch (error) {
      // PGlite throws when its backend has exited; the socket server's queue would then stall for good.
      this.#onFailure?.(error);
      throw error;
    }
  }

  async #handle(bytes: Buffer, options: StreamOptions): Promise<void> {
    const type = String.fromCharCode(bytes[0] ?? 0);
    const state = this.#state;
    if (state.mode === 'copy-in') return this.#continueCopy(state, type, bytes, options);
    if (state.mode === 'skip-to-sync') {
      if (type !== 'S') return;
      this.#state = { mode: 'idle' };
      return this.#db.execProtocolRawStream(bytes, options);
    }
    if (type === 'Q' || type === 'P') {
      const kind = await copyFromStdin(queryText(bytes, type));
      if (kind === 'alone' && type === 'Q') {
        this.#state = { mode: 'copy-in', query: Buffer.from(bytes), data: [], bytes: 0, tooLarge: false };
        options.onRawData(copyInResponse(queryText(bytes, type)));
        return;
      }
      if (kind !== 'none') {
        const why =
          type === 'P'
            ? 'COPY FROM STDIN over the extended query protocol is not supported by the embedded database: send it as a simple query (psql \\copy does)'
            : 'COPY FROM STDIN must be the only statement of its query on the embedded database';
        const answer = await this.#raise(why);
        if (type === 'Q') {
          options.onRawData(answer);
        } else {
          options.onRawData(withoutMessages(answer, 'Z'));
          this.#state = { mode: 'skip-to-sync' };
        }
        return;
      }
    }
    return this.#db.execProtocolRawStream(bytes, options);
  }

  async #continueCopy(
    state: Extract<State, { mode: 'copy-in' }>,
    type: string,
    bytes: Buffer,
    options: StreamOptions,
  ): Promise<void> {
    switch (type) {
      case 'd':
        state.bytes += bytes.length;
        if (state.bytes > this.#maxCopyBytes) {
          state.tooLarge = true;
          state.data = [];
        } else if (!state.tooLarge) {
          state.data.push(Buffer.from(bytes));
        }
        return;
      case 'H':
      case 'S':
        // PostgreSQL ignores Flush and Sync during COPY FROM STDIN.
        return;
      case 'c':
      case 'f': {
        this.#state = { mode: 'idle' };
        const end = state.tooLarge
          ? message(
              'f',
              cString(
                `the embedded database takes at most ${this.#maxCopyBytes} bytes of COPY data; load larger files into a PostgreSQL server`,
              ),
            )
          : bytes;
        const answer = await this.#run(Buffer.concat([state.query, ...state.data, end]));
        options.onRawData(withoutMessages(answer, 'G'));
        return;
      }
      default: {
        // Any other message ends the COPY with an error, as PostgreSQL does; then it runs.
        this.#state = { mode: 'idle' };
        const fail = message('f', cString(`unexpected message type "${type}" during COPY from stdin`));
        options.onRawData(withoutMessages(await this.#run(Buffer.concat([state.query, fail])), 'G'));
        return this.#handle(bytes, options);
      }
    }
  }

  /** An error raised by PGlite itself, so that a transaction in progress is failed as PostgreSQL would. */
  #raise(why: string): Promise<Buffer> {
    const body = `DO $gatehouse$ BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = ${quoteLiteral(why)}; END $gatehouse$`;
    return this.#run(message('Q', cString(body)));
  }

  async #run(input: Buffer): Promise<Buffer> {
    const output: Buffer[] = [];
    await this.#db.execProtocolRawStream(new Uint8Array(input), {
      onRawData: (data) => output.push(Buffer.from(data)),
    });
    return Buffer.concat(output);
  }
}

/** The SQL of a Query (`Q` text) or Parse (`P` name, text, ...) message. */
function queryText(bytes: Buffer, type: string): string {
  let start = 5;
  if (type === 'P') start = bytes.indexOf(0, start) + 1;
  const end = bytes.indexOf(0, start);
  return bytes.toString('utf8', start, end < 0 ? bytes.length : end);
}

let parserLoaded: Promise<void> | undefined;

/** Whether the text holds a COPY FROM STDIN, alone or among other statements; by the real grammar. */
export async function copyFromStdin(sql: string): Promise<CopyKind> {
  if (!/copy/i.test(sql) || !/stdin/i.test(sql)) return 'none';
  parserLoaded ??= loadModule();
  await parserLoaded;
  let statements: readonly RawStmt[];
  try {
    statements = parseSync(sql).stmts ?? [];
  } catch {
    return 'none'; // PostgreSQL refuses it before any COPY starts.
  }
  const copies = statements.map(copyOf).filter((copy) => copy?.is_from && !copy.filename);
  if (copies.length === 0) return 'none';
  return statements.length === 1 ? 'alone' : 'with-others';
}

function copyOf(statement: RawStmt | undefined): CopyStmt | undefined {
  const node = statement?.stmt;
  return node && 'CopyStmt' in node ? node.CopyStmt : undefined;
}

/**
 * The CopyInResponse PostgreSQL would send: the overall format and one format per column. The
 * column count is that of the column list, or 0 without one (clients do not rely on it for text).
 */
function copyInResponse(sql: string): Buffer {
  const copy = copyOf(parseSync(sql).stmts?.[0]);
  const binary = (copy?.options ?? []).some((option) => {
    const def = 'DefElem' in option ? option.DefElem : undefined;
    const arg = def?.arg;
    return def?.defname === 'format' && arg && 'String' in arg && arg.String.sval?.toLowerCase() === 'binary';
  });
  const columns = copy?.attlist?.length ?? 0;
  const body = Buffer.alloc(3 + 2 * columns);
  body.writeInt8(binary ? 1 : 0, 0);
  body.writeInt16BE(columns, 1);
  for (let i = 0; i < columns; i++) body.writeInt16BE(binary ? 1 : 0, 3 + 2 * i);
  return message('G', body);
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The backend messages of `stream` without those of type `drop`. */
function withoutMessages(stream: Buffer, drop: string): Buffer {
  const kept: Buffer[] = [];
  for (let at = 0; at + 5 <= stream.length; ) {
    const end = at + 1 + stream.readInt32BE(at + 1);
    if (String.fromCharCode(stream[at]!) !== drop) kept.push(stream.subarray(at, end));
    at = end;
  }
  return Buffer.concat(kept);
}
