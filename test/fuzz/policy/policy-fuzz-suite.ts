import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowLimitSupported } from './fuzz-policy-documents.ts';
import type { FuzzTarget } from './fuzz-target.ts';
import { Generator, Random } from './generate-statements.ts';
import {
  findLeak,
  formatCounterexample,
  formatSummary,
  runPolicyFuzz,
  statementSeed,
} from './run-policy-fuzz.ts';

/** The fixed seed of the CI run; `npm run fuzz:policy -- --seed S` tries others. */
export const CI_SEED = 20261207;

/**
 * The CI form of the policy fuzzer, the same for both protocols: a fixed seed and a bounded number of
 * statements; fails with the minimal statement of any leak not in `knownLeaks`.
 */
export function policyFuzzSuite(options: {
  readonly title: string;
  readonly start: (rowLimit: boolean) => Promise<FuzzTarget>;
  readonly statements: number;
  /** Minimal statements of leaks already reported, matched by exact text. */
  readonly knownLeaks: readonly string[];
  /** Minimal statements of leaks the fuzzer found and that were fixed: each must stay closed. */
  readonly formerLeaks?: readonly string[];
}): void {
  let target: FuzzTarget;
  const rowLimit = rowLimitSupported();

  beforeAll(async () => {
    if (!rowLimit) console.warn('row-limit oracle off: maxAffectedRows not supported yet');
    target = await options.start(rowLimit);
  });
  afterAll(async () => {
    await target?.close();
  });

  describe(options.title, () => {
    it('the oracle finds PII in what the database itself returns for the same statements', async () => {
      // Without this, an oracle that finds nothing and a proxy that leaks nothing look the same.
      expect(target.maskedColumns).toEqual(
        expect.arrayContaining([
          'customers.email',
          'customers.ssn',
          'customers.card_number',
          'customers.phone',
        ]),
      );
      expect(target.oracle.find(await target.direct('SELECT * FROM customers'))).toBeDefined();
      // A leak follows the data: with every masked value changed, the new values show instead.
      try {
        const perturbed = await target.perturbSecrets();
        const after = await target.direct('SELECT ssn, card_number, address FROM customers');
        expect(perturbed.find(after)).toBeDefined();
        expect(target.oracle.find(after)).toBeUndefined();
      } finally {
        await target.restore();
      }
      expect(await target.changedRows()).toBe(0);
      let revealing = 0;
      const sample = 200;
      for (let index = 0; index < sample; index++) {
        const generator = new Generator(
          target.dialect,
          target.functions,
          new Random(statementSeed(CI_SEED, index)),
        );
        if (target.oracle.find(await target.direct(generator.statement().sql))) revealing++;
      }
      console.log(
        `${target.protocol}: ${revealing} of ${sample} generated statements reveal PII without the proxy`,
      );
      expect(revealing).toBeGreaterThan(sample / 10);
    });

    it('generated statements reveal no PII through the proxy and change no more rows than allowed', async () => {
      const summary = await runPolicyFuzz(target, {
        seed: CI_SEED,
        statements: options.statements,
        knownLeaks: new Set(options.knownLeaks),
        log: (line) => console.log(line),
      });
      console.log(formatSummary(summary));
      expect(summary.counterexamples.map(formatCounterexample)).toEqual([]);
    });

    it.runIf((options.formerLeaks ?? []).length > 0)('leaks found and fixed stay closed', async () => {
      const open: string[] = [];
      for (const sql of options.formerLeaks ?? []) {
        for (const mode of ['text', 'prepared'] as const) {
          const outcome = await target.run(sql, mode);
          const leak = await findLeak(target, target.oracle, outcome, await target.changedRows());
          await target.restore();
          if (leak !== undefined) open.push(`${mode}: ${sql}`);
        }
      }
      expect(open).toEqual([]);
    });

    it.runIf(options.knownLeaks.length > 0)(
      'known leaks are still leaks (else delete them from KNOWN_LEAKS)',
      async () => {
        const fixed: string[] = [];
        for (const sql of options.knownLeaks) {
          let leaks = false;
          for (const mode of ['text', 'prepared'] as const) {
            const outcome = await target.run(sql, mode);
            leaks ||=
              (await findLeak(target, target.oracle, outcome, await target.changedRows())) !== undefined;
            await target.restore();
          }
          if (!leaks) fixed.push(sql);
        }
        // Fixes land in parallel: say which entries can go, without failing the run that fixed them.
        for (const sql of fixed) console.warn(`KNOWN_LEAKS entry no longer leaks; delete it: ${sql}`);
        const still = options.knownLeaks.length - fixed.length;
        console.log(`${target.protocol}: ${still} of ${options.knownLeaks.length} known leaks still leak`);
      },
    );
  });
}
