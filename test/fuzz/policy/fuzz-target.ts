import type { CatalogFunction, Dialect } from './generate-statements.ts';
import type { LeakOracle } from './leak-oracle.ts';

/** `text`: the simple query protocol / COM_QUERY; `prepared`: the extended protocol / COM_STMT_EXECUTE, literals as parameters. */
export type ClientMode = 'text' | 'prepared';

export interface Outcome {
  /** Refused by the proxy's policy (PostgreSQL 42501, MySQL 1142/1227). */
  readonly refused: boolean;
  /** Failed otherwise (a database error, withheld or not). */
  readonly failed: boolean;
  /** Every string the client received: cells, error fields, notices, notifications, counts. */
  readonly received: readonly string[];
}

/** One database behind a running proxy, seeded with the sample shop, with its PII known to the oracle. */
export interface FuzzTarget {
  readonly protocol: 'postgres' | 'mysql';
  readonly dialect: Dialect;
  readonly functions: readonly CatalogFunction[];
  readonly oracle: LeakOracle;
  /** `table.column` of every column the proxy masks in a plain SELECT. */
  readonly maskedColumns: readonly string[];
  /** The guardrail's row limit, or undefined when the policy cannot express one. */
  readonly rowLimit: number | undefined;
  /** Sends a statement through the proxy as the masked identity. */
  run(sql: string, mode: ClientMode): Promise<Outcome>;
  /**
   * Runs a statement straight on the database as its administrator, in a transaction rolled back
   * after: what the client would receive without the proxy, to show that the oracle sees PII there.
   */
  direct(sql: string): Promise<readonly string[]>;
  /**
   * Changes every masked value directly in the database, keeping its shape, and returns the oracle for
   * the new values; restore() undoes it. A leak seen again with these values is no coincidence.
   */
  perturbSecrets(): Promise<LeakOracle>;
  /** Rows changed since the seed, counted by key (inserted, updated or deleted) over a direct connection. */
  changedRows(): Promise<number>;
  /**
   * Rows of the seed updated or deleted since, by key: what a row limit bounds (inserted rows are not
   * counted by maxAffectedRows).
   */
  rowsUpdatedOrDeleted(): Promise<number>;
  /** Puts the seed back, if anything changed. */
  restore(): Promise<void>;
  /** Whether the proxy process is still running. */
  alive(): boolean;
  close(): Promise<void>;
}
