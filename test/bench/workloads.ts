export type Workload = {
  /** Stable name in the table and the JSON, e.g. select-only/prepared/8. */
  id: string;
  script: 'select-only' | 'large-result';
  protocol: 'simple' | 'prepared';
  clients: number;
  /** pgbench worker threads (-j): one per core at most, on a 2-core machine that runs everything else too. */
  threads: number;
  /** Rows each transaction returns, for rows per second. */
  rowsPerTransaction: number;
};

export const LARGE_RESULT_ROWS = 100_000;

function selectOnly(protocol: Workload['protocol'], clients: number): Workload {
  return {
    id: `select-only/${protocol}/${clients}`,
    script: 'select-only',
    protocol,
    clients,
    threads: clients === 1 ? 1 : 2,
    rowsPerTransaction: 1,
  };
}

/** pgbench -S (one primary-key lookup per transaction) at 1 and 8 clients, and one large result. */
export const WORKLOADS: readonly Workload[] = [
  selectOnly('simple', 1),
  selectOnly('prepared', 1),
  selectOnly('simple', 8),
  selectOnly('prepared', 8),
  {
    id: 'large-result/simple/1',
    script: 'large-result',
    protocol: 'simple',
    clients: 1,
    threads: 1,
    rowsPerTransaction: LARGE_RESULT_ROWS,
  },
];

/** The pgbench custom script of the large-result workload. */
export const LARGE_RESULT_SCRIPT = `SELECT * FROM pgbench_accounts LIMIT ${LARGE_RESULT_ROWS};\n`;
