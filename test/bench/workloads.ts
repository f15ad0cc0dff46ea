export type Workload = {
  /** Stable name in the table and the JSON, e.g. select-only/prepared/8. */
  id: string;
  script: 'select-only' | 'large-result' | 'masked-rows' | 'update-by-key';
  protocol: 'simple' | 'prepared';
  clients: number;
  /** pgbench worker threads (-j): one per core at most, on a 2-core machine that runs everything else too. */
  threads: number;
  /** Rows each transaction returns, for rows per second. */
  rowsPerTransaction: number;
};

export const LARGE_RESULT_ROWS = 100_000;
export const MASKED_ROWS = 100;

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

/**
 * One row updated by key per transaction, 8 clients: the cost of the row check a row limit adds to
 * every statement that may change rows (gatehouse-guarded: the defaults' maxAffectedRows).
 */
function updateByKey(protocol: Workload['protocol']): Workload {
  return {
    id: `update-by-key/${protocol}/8`,
    script: 'update-by-key',
    protocol,
    clients: 8,
    threads: 2,
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
  updateByKey('simple'),
  updateByKey('prepared'),
  {
    id: 'masked-rows/simple/8',
    script: 'masked-rows',
    protocol: 'simple',
    clients: 8,
    threads: 2,
    rowsPerTransaction: MASKED_ROWS,
  },
];

/**
 * 100 rows of a table with two columns masking detects by name (email, ssn) and two clean ones: the
 * cost of masking on a full result, through a target with a MaskingPolicy (gatehouse-guarded).
 */
export const MASKED_ROWS_SCRIPT = `SELECT id, email, ssn, city FROM bench_people WHERE id <= ${MASKED_ROWS};\n`;
export const MASKED_ROWS_SETUP = `DROP TABLE IF EXISTS bench_people;
CREATE TABLE bench_people(id int PRIMARY KEY, email text, ssn text, city text);
INSERT INTO bench_people SELECT i, 'person' || i || '@example.com', lpad((100000000 + i)::text, 9, '0'), 'Springfield'
  FROM generate_series(1, 1000) AS i;
ANALYZE bench_people;`;

/** The pgbench custom script of the large-result workload. */
export const LARGE_RESULT_SCRIPT = `SELECT * FROM pgbench_accounts LIMIT ${LARGE_RESULT_ROWS};\n`;

/** The pgbench custom script of the update-by-key workload (pgbench_accounts has 100000 rows per scale). */
export const UPDATE_BY_KEY_SCRIPT = `\\set aid random(1, 100000)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
`;
