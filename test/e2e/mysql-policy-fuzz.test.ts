import { inject } from 'vitest';
import { startMysqlTarget } from '../fuzz/policy/mysql-target.ts';
import { policyFuzzSuite } from '../fuzz/policy/policy-fuzz-suite.ts';

/**
 * Leaks the fuzzer found in the proxy, as their minimal statements (exact text): the fixed-seed run
 * counts them without failing, so that only a new leak fails it. Each entry says what leaks; whoever
 * fixes one deletes it (the suite says when an entry no longer leaks).
 */
const KNOWN_LEAKS: readonly string[] = [];

const server = inject('mariadb');

policyFuzzSuite({
  title: 'generated statements through the proxy (MariaDB)',
  start: (rowLimit) => startMysqlTarget(server, { rowLimit }),
  statements: 800,
  knownLeaks: KNOWN_LEAKS,
});
