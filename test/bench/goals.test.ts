import { describe, expect, it } from 'vitest';
import { checkGoals, formatGoals } from './goals.ts';
import type { ResultRow } from './summarize.ts';
import type { TargetName } from './target.ts';

function row(target: TargetName, workload: string, fields: Partial<ResultRow>): ResultRow {
  return {
    target,
    workload,
    protocol: 'simple',
    clients: Number(workload.split('/').pop()),
    rounds: 1,
    tps: 1000,
    rowsPerSecond: 1000,
    ratioVsDirect: 1,
    ratioVsHaproxy: 1,
    ratioVsNodeRelay: 1,
    ratioVsPgbouncer: 1,
    p50Us: 100,
    p99Us: 200,
    p50OverDirectUs: 0,
    cpuUsPerTx: 10,
    peakRssMb: 70,
    errors: [],
    ...fields,
  };
}

const verdicts = (rows: ResultRow[], memory = {}) =>
  Object.fromEntries(checkGoals(rows, memory).map((c) => [`${c.goal} @ ${c.workload}`, c.met]));

describe('checkGoals', () => {
  it('checks each target against its own floor, from same-round ratios', () => {
    const v = verdicts([
      row('gatehouse', 'select-only/prepared/8', { ratioVsNodeRelay: 0.96 }),
      row('gatehouse-guarded', 'select-only/prepared/8', { ratioVsNodeRelay: 0.84, ratioVsPgbouncer: 1.02 }),
    ]);
    expect(v['gatehouse TPS >= 95% of node-relay @ select-only/prepared/8']).toBe(true);
    expect(v['gatehouse-guarded TPS >= 85% of node-relay @ select-only/prepared/8']).toBe(false);
    expect(v['gatehouse-guarded TPS >= pgbouncer @ select-only/prepared/8']).toBe(true);
    // A workload that did not run is not measured, never met.
    expect(v['gatehouse TPS >= 95% of node-relay @ select-only/simple/8']).toBe(undefined);
  });

  it('holds latency, rows per second, masked selects and memory to their limits', () => {
    const v = verdicts(
      [
        row('gatehouse', 'select-only/prepared/1', { p50OverDirectUs: 60 }),
        row('gatehouse', 'select-only/simple/1', { p50OverDirectUs: 91 }),
        row('gatehouse-guarded', 'large-result/simple/1', { rowsPerSecond: 1_990_000 }),
        row('gatehouse-guarded', 'masked-rows/simple/8', { ratioVsHaproxy: 0.6 }),
      ],
      { gatehouse: { idleMb: 79, peakMb: 120 }, 'gatehouse-guarded': { idleMb: 126, peakMb: 130 } },
    );
    expect(v['gatehouse p50 <= direct p50 + 60 µs @ select-only/prepared/1']).toBe(true);
    expect(v['gatehouse p50 <= direct p50 + 90 µs @ select-only/simple/1']).toBe(false);
    expect(v['gatehouse-guarded >= 2 M rows/s @ large-result/simple/1']).toBe(false);
    expect(v['gatehouse-guarded TPS >= 60% of haproxy @ masked-rows/simple/8']).toBe(true);
    expect(v['gatehouse idle RSS < 80 MB @ idle']).toBe(true);
    expect(v['gatehouse RSS under load <= idle + 40 MB @ all workloads']).toBe(false);
    expect(v['gatehouse-guarded idle RSS < 80 MB @ idle']).toBe(false);
  });

  it('prints MET, NOT MET and NOT MEASURED', () => {
    const text = formatGoals(
      checkGoals([row('gatehouse', 'select-only/prepared/8', { ratioVsNodeRelay: 0.5 })], {
        gatehouse: { idleMb: 50, peakMb: 60 },
      }),
    );
    expect(text).toMatch(/gatehouse idle RSS < 80 MB.*\bMET$/m);
    expect(text).toMatch(/gatehouse TPS >= 95% of node-relay.*NOT MET$/m);
    expect(text).toMatch(/NOT MEASURED$/m);
  });
});
