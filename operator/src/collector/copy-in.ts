import type pg from 'pg';

/**
 * `COPY ... FROM STDIN` through node-postgres without another package: node-postgres runs any object
 * with a `submit(connection)` method as its active query and hands it the protocol messages that
 * follow, so this sends the COPY, answers CopyInResponse with the payload in chunks and CopyDone,
 * and settles on ReadyForQuery. The payload is COPY's text format (see copy-text.ts).
 */
export function copyIn(client: pg.ClientBase, sql: string, payload: string): Promise<number> {
  return new Promise((resolve, reject) => {
    client.query(new CopyInQuery(sql, payload, resolve, reject) as unknown as pg.QueryConfig);
  });
}

/** What node-postgres's connection offers a submitted query (not in its type declarations). */
interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

const CHUNK = 64 * 1024;

class CopyInQuery {
  #rows = 0;
  #error: Error | undefined;
  readonly #text: string;
  readonly #payload: string;
  readonly #resolve: (rows: number) => void;
  readonly #reject: (error: Error) => void;

  constructor(
    text: string,
    payload: string,
    resolve: (rows: number) => void,
    reject: (error: Error) => void,
  ) {
    this.#text = text;
    this.#payload = payload;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: Connection): void {
    connection.query(this.#text);
  }

  handleCopyInResponse(connection: Connection): void {
    const bytes = Buffer.from(this.#payload, 'utf8');
    for (let start = 0; start < bytes.length; start += CHUNK) {
      connection.sendCopyFromChunk(bytes.subarray(start, start + CHUNK));
    }
    connection.endCopyFrom();
  }

  handleCommandComplete(message: { text?: string }): void {
    this.#rows = Number(/COPY (\d+)/.exec(message.text ?? '')?.[1] ?? 0);
  }

  handleError(error: Error): void {
    this.#error = error;
  }

  handleReadyForQuery(): void {
    if (this.#error) this.#reject(this.#error);
    else this.#resolve(this.#rows);
  }

  // Messages a COPY FROM never receives; node-postgres may still call them on a confused server.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}
