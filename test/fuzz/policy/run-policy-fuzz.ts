import type { ClientMode, FuzzTarget, Outcome } from './fuzz-target.ts';
import { Generator, Random, SAMPLE_SCHEMA } from './generate-statements.ts';
import type { LeakOracle } from './leak-oracle.ts';
import { minimizeStatement } from './minimize-statement.ts';
import { render, type SqlNode } from './statement-tree.ts';

export interface Counterexample {
  readonly protocol: 'postgres' | 'mysql';
  readonly mode: ClientMode;
  readonly seed: number;
  readonly index: number;
  /** What broke, without the value: `customers.ssn as digits`, `changed 12 rows, limit 5`. */
  readonly what: string;
  readonly kind: 'leak' | 'row-limit' | 'proxy-exit';
  readonly statement: string;
  readonly minimal: string;
}

export interface FuzzSummary {
  readonly protocol: 'postgres' | 'mysql';
  readonly seed: number;
  readonly statements: number;
  readonly executions: number;
  readonly refused: number;
  readonly failed: number;
  readonly writes: number;
  /** Leaks whose minimal statement is in the known list: counted, not failed. */
  readonly known: number;
  /** PII-like text that did not come back when the masked values were changed: chance, not leaks. */
  readonly coincidences: number;
  readonly counterexamples: readonly Counterexample[];
  readonly rowLimitOracle: boolean;
  readonly seconds: number;
}

export interface FuzzOptions {
  readonly seed: number;
  /** Stop after this many statements... */
  readonly statements?: number;
  /** ...or at this time (Date.now() milliseconds), whichever comes first. */
  readonly until?: number;
  /** Exact minimal statement texts already reported: found again, they are counted but not failed. */
  readonly knownLeaks?: ReadonlySet<string>;
  readonly log?: (line: string) => void;
}

const MODES: readonly ClientMode[] = ['text', 'prepared'];

/** The seed of statement `index` of a run: each statement can be generated again on its own. */
export function statementSeed(seed: number, index: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
}

/**
 * Generates statements and sends each through the proxy in both client modes. After each execution
 * the oracle reads everything the client received for PII, and the database is compared with its
 * seed (rows changed against the guardrail's limit) and put back. A failure is shrunk to the smallest
 * statement that still fails, with the seed and index that generate it.
 */
export async function runPolicyFuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const counterexamples = new Map<string, Counterexample>();
  let statements = 0;
  let executions = 0;
  let refused = 0;
  let failed = 0;
  let writes = 0;
  let known = 0;
  let coincidences = 0;
  const limit = options.statements ?? Number.POSITIVE_INFINITY;
  const until = options.until ?? Number.POSITIVE_INFINITY;

  /**
   * Whether a leak follows the data: run again with every masked value changed. A six-digit piece of
   * a card number inside a 32-digit token is chance, and does not come back with other digits.
   */
  const leaksAgainWithOtherValues = async (sql: string, mode: ClientMode) => {
    try {
      const oracle = await target.perturbSecrets();
      const outcome = await target.run(sql, mode);
      return (await findLeak(target, oracle, outcome, await target.changedRows())) !== undefined;
    } finally {
      await target.restore();
    }
  };

  /** The first failure of one execution, if any; the database is back at its seed afterwards. */
  const check = async (sql: string, mode: ClientMode) => {
    const outcome = await target.run(sql, mode);
    const changed = await target.changedRows();
    const limited = changed > 0 ? await target.rowsUpdatedOrDeleted() : 0;
    const leak = await findLeak(target, target.oracle, outcome, changed);
    await target.restore();
    if (leak) {
      if (await leaksAgainWithOtherValues(sql, mode)) return { outcome, kind: 'leak' as const, what: leak };
      coincidences++;
    }
    if (target.rowLimit !== undefined && limited > target.rowLimit)
      return {
        outcome,
        kind: 'row-limit' as const,
        what: `updated or deleted ${limited} rows, limit ${target.rowLimit}`,
      };
    if (!target.alive()) return { outcome, kind: 'proxy-exit' as const, what: 'the proxy exited' };
    return { outcome };
  };

  for (let index = 0; statements < limit && Date.now() < until; index++) {
    const seed = statementSeed(options.seed, index);
    const generator = new Generator(target.dialect, target.functions, new Random(seed));
    const statement = generator.statement();
    statements++;
    if (statement.write) writes++;
    for (const mode of MODES) {
      executions++;
      const result = await check(statement.sql, mode);
      if (result.outcome.refused) refused++;
      else if (result.outcome.failed) failed++;
      if (!result.kind) continue;
      if (result.kind === 'proxy-exit') {
        counterexamples.set(statement.sql, {
          protocol: target.protocol,
          mode,
          seed: options.seed,
          index,
          what: result.what,
          kind: result.kind,
          statement: statement.sql,
          minimal: statement.sql,
        });
        return summary();
      }
      const kind = result.kind;
      const minimal = render(
        await minimizeStatement(statement.tree as SqlNode, async (candidate) => {
          const again = await check(candidate, mode);
          return again.kind === kind;
        }),
      );
      const confirmed = await check(minimal, mode);
      if (options.knownLeaks?.has(minimal) || options.knownLeaks?.has(statement.sql)) {
        known++;
        continue;
      }
      if (counterexamples.has(minimal)) continue;
      const example: Counterexample = {
        protocol: target.protocol,
        mode,
        seed: options.seed,
        index,
        what: confirmed.what ?? result.what,
        kind,
        statement: statement.sql,
        minimal,
      };
      counterexamples.set(minimal, example);
      log(formatCounterexample(example));
    }
    if (statements % 100 === 0)
      log(
        `${target.protocol}: ${statements} statements, ${refused} refused, ${failed} failed, ${counterexamples.size} counterexamples`,
      );
  }
  return summary();

  function summary(): FuzzSummary {
    return {
      protocol: target.protocol,
      seed: options.seed,
      statements,
      executions,
      refused,
      failed,
      writes,
      known,
      coincidences,
      counterexamples: [...counterexamples.values()],
      rowLimitOracle: target.rowLimit !== undefined,
      seconds: (Date.now() - started) / 1000,
    };
  }
}

/**
 * The PII a client got from one execution, if any, described without the value. After a write that
 * changed rows, every table is read back as the masked identity: a write may have copied masked
 * values where they are not masked. Call before the seed is put back.
 */
export async function findLeak(
  target: FuzzTarget,
  oracle: LeakOracle,
  outcome: Outcome,
  changed: number,
): Promise<string | undefined> {
  const leak = oracle.find(outcome.received);
  if (leak) return `${leak.column} as ${leak.form}`;
  if (changed === 0) return undefined;
  for (const table of SAMPLE_SCHEMA) {
    const found = oracle.find((await target.run(`SELECT * FROM ${table.name}`, 'text')).received);
    if (found) return `${found.column} as ${found.form}, read back with SELECT * FROM ${table.name}`;
  }
  return undefined;
}

export function formatCounterexample(example: Counterexample): string {
  return [
    `COUNTEREXAMPLE (${example.kind}) ${example.protocol}/${example.mode}, seed ${example.seed}, statement ${example.index}: ${example.what}`,
    `  minimal:   ${example.minimal}`,
    `  generated: ${example.statement}`,
  ].join('\n');
}

export function formatSummary(s: FuzzSummary): string {
  const rate = s.executions === 0 ? 0 : (100 * s.refused) / s.executions;
  return (
    `${s.protocol}: seed ${s.seed}, ${s.statements} statements (${s.writes} writes), ${s.executions} executions in ${s.seconds.toFixed(1)} s; ` +
    `refused ${s.refused} (${rate.toFixed(1)}%), failed ${s.failed}, known leaks ${s.known}, coincidences ${s.coincidences}, counterexamples ${s.counterexamples.length}; ` +
    `row-limit oracle ${s.rowLimitOracle ? 'on' : 'off'}`
  );
}
