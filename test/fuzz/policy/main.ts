// `npm run fuzz:policy -- --minutes N`: the policy fuzzer of the CI tests (test/e2e/*-policy-fuzz.test.ts)
// for longer, against throwaway servers started as the test harness starts them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startMariaDb } from '../../harness/mariadb.ts';
import { startPostgres } from '../../harness/postgres.ts';
import { generateTls } from '../../harness/tls.ts';
import { rowLimitSupported } from './fuzz-policy-documents.ts';
import type { FuzzTarget } from './fuzz-target.ts';
import { startMysqlTarget } from './mysql-target.ts';
import { startPostgresTarget } from './postgres-target.ts';
import { type FuzzSummary, formatCounterexample, formatSummary, runPolicyFuzz } from './run-policy-fuzz.ts';

const USAGE = `usage: npm run fuzz:policy -- [options]

  --minutes N          how long to run (default 5); with both protocols, both run side by side
  --seed S             seed of the generated statements (default: from the clock, printed first)
  --protocol NAME      postgres or mysql (default both)

Each counterexample is printed as its minimal statement, with the seed and statement index that
generate it; the exit code is 1 when there was any.`;

type Protocol = 'postgres' | 'mysql';

function parseOptions(argv: string[]): { minutes: number; seed: number; protocols: Protocol[] } {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '5' },
      seed: { type: 'string' },
      protocol: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const minutes = Number(values.minutes);
  if (!Number.isFinite(minutes) || minutes <= 0)
    throw new Error(`--minutes must be a positive number\n${USAGE}`);
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer\n${USAGE}`);
  if (values.protocol !== undefined && values.protocol !== 'postgres' && values.protocol !== 'mysql')
    throw new Error(`--protocol must be postgres or mysql\n${USAGE}`);
  const protocols: Protocol[] = values.protocol ? [values.protocol as Protocol] : ['postgres', 'mysql'];
  return { minutes, seed, protocols };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const rowLimit = rowLimitSupported();
  console.log(
    `policy fuzz: seed ${options.seed}, ${options.minutes} min, ${options.protocols.join(' and ')}`,
  );
  if (!rowLimit) console.log('row-limit oracle off: maxAffectedRows not supported yet');
  const tlsDir = await mkdtemp(join(tmpdir(), 'gatehouse-fuzz-tls-'));
  const tls = await generateTls(tlsDir);
  const stops: Array<() => Promise<void>> = [() => rm(tlsDir, { recursive: true, force: true })];
  try {
    const targets: FuzzTarget[] = [];
    for (const protocol of options.protocols) {
      let target: FuzzTarget;
      if (protocol === 'postgres') {
        const server = await startPostgres({ tls });
        stops.unshift(() => server.stop());
        target = await startPostgresTarget(server.info, { rowLimit });
      } else {
        const server = await startMariaDb({ tls });
        stops.unshift(() => server.stop());
        target = await startMysqlTarget(server.info, { rowLimit });
      }
      targets.push(target);
      stops.unshift(() => target.close());
    }
    const until = Date.now() + options.minutes * 60_000;
    const summaries: FuzzSummary[] = await Promise.all(
      targets.map((target) =>
        runPolicyFuzz(target, { seed: options.seed, until, log: (line) => console.log(line) }),
      ),
    );
    console.log('');
    for (const summary of summaries) {
      console.log(formatSummary(summary));
      for (const example of summary.counterexamples) console.log(formatCounterexample(example));
    }
    return summaries.some((s) => s.counterexamples.length > 0) ? 1 : 0;
  } finally {
    for (const stop of stops) await stop().catch((e: unknown) => console.error(e));
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  return 2;
});
