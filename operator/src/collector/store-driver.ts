import pg from 'pg';
import { UserError } from '../../../sidecar/src/errors.ts';
import { copyIn } from './copy-in.ts';

/** What the store needs of a database: queries, COPY in, transactions. */
export interface SqlClient {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** `sql` is `COPY ... FROM STDIN`; `payload` its rows in COPY's text format. */
  copyIn(sql: string, payload: string): Promise<void>;
}

export interface SqlDriver extends SqlClient {
  transaction<T>(body: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The store at `url`: `postgres://` or `postgresql://` for a PostgreSQL server (a pool of
 * `poolSize`), `pglite:memory` or `pglite:DIR` for the embedded PGlite of the quickstart.
 */
export async function openDriver(url: string, poolSize = 4): Promise<SqlDriver> {
  if (url.startsWith('pglite:')) {
    const { openPgliteDriver } = await import('./store-driver-pglite.ts');
    return openPgliteDriver(url.slice('pglite:'.length));
  }
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new UserError('the store URL must start with postgres://, postgresql:// or pglite:');
  return pgDriver(new pg.Pool({ connectionString: url, max: poolSize }));
}

function pgDriver(pool: pg.Pool): SqlDriver {
  // A pool's idle clients may lose their connection (a restarted server); that must not end the process.
  pool.on('error', () => {});
  const over = (client: pg.ClientBase): SqlClient => ({
    async query<R>(sql: string, params: readonly unknown[] = []) {
      return (await client.query(sql, params as unknown[])).rows as R[];
    },
    async copyIn(sql, payload) {
      await copyIn(client, sql, payload);
    },
  });
  return {
    async query<R>(sql: string, params: readonly unknown[] = []) {
      return (await pool.query(sql, params as unknown[])).rows as R[];
    },
    async copyIn(sql, payload) {
      const client = await pool.connect();
      try {
        await copyIn(client, sql, payload);
      } finally {
        client.release();
      }
    },
    async transaction(body) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await body(over(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollback: Error) => {
          broken = rollback;
        });
        throw error;
      } finally {
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
