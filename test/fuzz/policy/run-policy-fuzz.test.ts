import { describe, expect, it } from 'vitest';
import type { ClientMode, FuzzTarget, Outcome } from './fuzz-target.ts';
import { type CatalogFunction, POSTGRES_DIALECT } from './generate-statements.ts';
import { LeakOracle } from './leak-oracle.ts';
import { runPolicyFuzz } from './run-policy-fuzz.ts';

const SSN = '912-34-5678';
const OTHER_SSN = '023-45-6789';
const FUNCTIONS: CatalogFunction[] = [{ name: 'upper', args: ['text'], returns: 'text' }];

/**
 * A scripted stand-in for proxy and database, to test the loop's decisions alone: statements naming
 * `.ssn` leak the stored SSN (and follow it when the values change); statements naming `.card_number`
 * return a fixed text that looks like the SSN (a coincidence: it does not follow the data); UPDATEs
 * change nine rows.
 */
function scriptedTarget(rowLimit: number | undefined): FuzzTarget & { runs: number } {
  let perturbed = false;
  let lastChanged = 0;
  const target = {
    runs: 0,
    protocol: 'postgres' as const,
    dialect: POSTGRES_DIALECT,
    functions: FUNCTIONS,
    oracle: new LeakOracle([{ column: 'customers.ssn', value: SSN }], []),
    maskedColumns: ['customers.ssn'],
    rowLimit,
    async run(sql: string, _mode: ClientMode): Promise<Outcome> {
      target.runs++;
      lastChanged = sql.startsWith('UPDATE') ? 9 : 0;
      const received: string[] = [];
      if (sql.includes('.ssn')) received.push(perturbed ? OTHER_SSN : SSN);
      if (sql.includes('.card_number')) received.push(SSN);
      return { refused: false, failed: false, received };
    },
    async direct() {
      return [];
    },
    async perturbSecrets() {
      perturbed = true;
      return new LeakOracle([{ column: 'customers.ssn', value: OTHER_SSN }], []);
    },
    async changedRows() {
      return lastChanged;
    },
    async rowsUpdatedOrDeleted() {
      return lastChanged;
    },
    async restore() {
      perturbed = false;
      lastChanged = 0;
    },
    alive: () => true,
    async close() {},
  };
  return target;
}

describe('runPolicyFuzz', () => {
  it('reports leaks that follow the data, shrunk, and not coincidences', async () => {
    const summary = await runPolicyFuzz(scriptedTarget(undefined), { seed: 3, statements: 60 });
    const leaks = summary.counterexamples.filter((c) => c.kind === 'leak');
    expect(leaks.length).toBeGreaterThan(0);
    for (const leak of leaks) {
      expect(leak.minimal).toContain('.ssn');
      expect(leak.minimal.length).toBeLessThanOrEqual(leak.statement.length);
      expect(leak.what).toMatch(/^customers\.ssn as /);
    }
    expect(summary.coincidences).toBeGreaterThan(0);
    expect(summary.counterexamples.every((c) => c.minimal.includes('.ssn'))).toBe(true);
    expect(summary.rowLimitOracle).toBe(false);
  });

  it('fails writes that change more rows than the limit, only when there is a limit', async () => {
    const limited = await runPolicyFuzz(scriptedTarget(5), { seed: 3, statements: 60 });
    const overLimit = limited.counterexamples.filter((c) => c.kind === 'row-limit');
    expect(overLimit.length).toBeGreaterThan(0);
    for (const example of overLimit) {
      expect(example.minimal).toMatch(/^UPDATE/);
      expect(example.what).toBe('updated or deleted 9 rows, limit 5');
    }
    const unlimited = await runPolicyFuzz(scriptedTarget(undefined), { seed: 3, statements: 60 });
    expect(unlimited.counterexamples.filter((c) => c.kind === 'row-limit')).toEqual([]);
  });

  it('counts known leaks, by the exact text of their minimal statement, without failing', async () => {
    const first = await runPolicyFuzz(scriptedTarget(undefined), { seed: 3, statements: 60 });
    const known = new Set(first.counterexamples.map((c) => c.minimal));
    const again = await runPolicyFuzz(scriptedTarget(undefined), {
      seed: 3,
      statements: 60,
      knownLeaks: known,
    });
    expect(again.counterexamples).toEqual([]);
    expect(again.known).toBeGreaterThanOrEqual(known.size);
  });

  it('stops at its deadline', async () => {
    const target = scriptedTarget(undefined);
    const summary = await runPolicyFuzz(target, { seed: 3, until: Date.now() - 1 });
    expect(summary.statements).toBe(0);
    expect(target.runs).toBe(0);
  });
});
