import type { PgLogin } from '../harness/postgres.ts';

export const TARGET_NAMES = [
  'direct',
  'haproxy',
  'pgbouncer',
  'node-relay',
  'gatehouse',
  'gatehouse-guarded',
] as const;

export type TargetName = (typeof TARGET_NAMES)[number];

/** Where pgbench connects for one column of the comparison. */
export type Target = {
  name: TargetName;
  host: string;
  port: number;
  login: PgLogin;
  /** The proxy process whose CPU time and memory are measured; absent for direct. */
  pid?: number;
  stop(): Promise<void>;
};
