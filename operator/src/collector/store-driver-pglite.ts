import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { SqlClient, SqlDriver } from './store-driver.ts';

/**
 * PGlite as the store, for the quickstart: the same SQL, with COPY reading its rows from a Blob
 * (PGlite's `/dev/blob`) since an embedded database has no client stream. `where` is `memory` or a
 * directory.
 */
export async function openPgliteDriver(where: string): Promise<SqlDriver> {
  const db = await PGlite.create(where === 'memory' || where === '' ? undefined : where);
  const over = (tx: PGlite | Transaction): SqlClient => ({
    async query<R>(sql: string, params: readonly unknown[] = []) {
      // Several statements in one text (the migrations) need exec; it takes no parameters.
      if (params.length === 0 && sql.includes(';')) {
        const results = await tx.exec(sql);
        return (results.at(-1)?.rows ?? []) as R[];
      }
      return (await tx.query<R>(sql, params as unknown[])).rows;
    },
    async copyIn(sql, payload) {
      await tx.query(sql.replace(/FROM STDIN$/, "FROM '/dev/blob'"), [], { blob: new Blob([payload]) });
    },
  });
  return {
    ...over(db),
    transaction: (body) => db.transaction((tx) => body(over(tx))),
    close: () => db.close(),
  };
}
