import type { PgLogin } from '../harness/postgres.ts';

export const TARGET_NAMES = [
  'direct',
  'haproxy',
  'pgbouncer',
  'node-relay',
  'gatehouse',
  'gatehouse-guarded',
  'gatehouse-approvals',
] as const;

/**
 * Measured only when named with --targets: gatehouse-approvals answers one question (what approval rules
 * cost the statements they do not hold), asked beside gatehouse-guarded, not in every run.
 */
export const OPTIONAL_TARGETS: readonly TargetName[] = ['gatehouse-approvals'];

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
