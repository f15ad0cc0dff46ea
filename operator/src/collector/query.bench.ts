/**
 * Collector questions, p50 and p95 over a store of many records:
 *
 *   node operator/src/collector/query.bench.ts [--records N] [--days D] [--runs R] [--store URL] [--keep]
 *
 * Loads N (default 10 M) synthetic records shaped as proxies write them (sessions of statements from
 * many sources, identities, databases and tables, spread over D days, a few purposes and run ids,
 * refusals and errors) straight into a real PostgreSQL store with COPY, one day partition at a time
 * (filled detached and then attached, so each partition's indexes are built in one pass), then asks
 * each question the API answers R times with varied values through the API itself (`app.request`,
 * no network) and reports p50 and p95.
 *
 * Without --store it starts a throwaway PostgreSQL 15; --keep leaves it running and prints its URL,
 * so a later run with --store URL measures again without loading (a store already holding the
 * records is not loaded twice).
 */
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startPostgres } from '../../../test/harness/postgres.ts';
import { generateTls } from '../../../test/harness/tls.ts';
import { collectorApi } from './collector-api.ts';
import { copyRow } from './copy-text.ts';
import { touchedKeys } from './extract.ts';
import { CollectorStore } from './store.ts';
import { openDriver, type SqlDriver } from './store-driver.ts';
import { COPY_RECORDS, partitionName } from './store-schema.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '10000000' },
    days: { type: 'string', default: '30' },
    runs: { type: 'string', default: '40' },
    store: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const RECORDS = Number(args.records);
const DAYS = Number(args.days);
const RUNS = Number(args.runs);
const SOURCES = 240;
const SUBJECTS = 2000;
const RUN_IDS = 400;
const DAY_MS = 86_400_000;
/** The last loaded day is today's, so `since=24h` and `since=7d` find recent records. */
const LAST_DAY = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());

/** A small, fast, seeded generator: the same arguments load the same records. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4_294_967_296;
  };
}
/** A skewed pick in [0, n): a few values common, most rare, as identities and tables are. */
const skewed = (r: () => number, n: number, power = 3) => Math.floor(n * r() ** power);

const TABLES = [
  ['public.customers', ['id', 'name', 'email', 'ssn', 'phone', 'address', 'created_at']],
  ['public.orders', ['id', 'customer_id', 'total', 'status', 'created_at']],
  ['public.payments', ['id', 'order_id', 'card_number', 'amount', 'iban']],
  ['hr.employees', ['id', 'name', 'salary', 'ssn', 'manager_id']],
  ['public.products', ['id', 'name', 'price', 'sku']],
  ['public.sessions', ['id', 'user_id', 'token', 'expires_at']],
  ...Array.from({ length: 294 }, (_, i) => [
    `${['public', 'sales', 'billing', 'ml'][i % 4]}.t${i}`,
    ['id', 'a', 'b', 'c', 'd', 'email'],
  ]),
] as [string, string[]][];
const MASK = ['redact', 'email', 'hash', 'partial', 'null'];

interface Source {
  id: number;
  cluster: string;
  namespace: string;
  pod: string;
  database: string;
}
const SOURCE_LIST: Source[] = Array.from({ length: SOURCES }, (_, i) => ({
  id: i + 1,
  cluster: ['prod-eu', 'prod-us', 'staging'][i % 3]!,
  namespace: `ns${i % 40}`,
  pod: `app${i}-7d9f-${(i * 7919).toString(36)}`,
  database: `db${i % 25}`,
}));
const subjectOf = (n: number) =>
  n % 3 === 0 ? `oidc:user${n}@example.com` : `system:serviceaccount:ns${n % 40}:sa${n}`;

function hex(r: () => number, length: number): string {
  let out = '';
  while (out.length < length)
    out += Math.floor(r() * 0x1_0000_0000)
      .toString(16)
      .padStart(8, '0');
  return out.slice(0, length);
}

const COLUMNS = COPY_RECORDS.slice(COPY_RECORDS.indexOf('('), COPY_RECORDS.indexOf(')') + 1);

/**
 * One day's records as COPY text, in chunks of about `chunk` rows: whole sessions (a
 * connection.start, a statement.start and a statement per statement, a connection.end), and a
 * checkpoint every 1000 records of a source.
 */
function* dayRecords(day: number, count: number, chunk: number): Generator<string> {
  const r = random(day * 7_919 + 17);
  const dayStart = LAST_DAY - (DAYS - 1 - day) * DAY_MS;
  const seqs = new Map<number, number>();
  let out = '';
  let rows = 0;
  let made = 0;
  const emit = (source: Source, type: string, time: number, fields: Record<string, unknown>) => {
    const seq = day * 10_000_000 + (seqs.get(source.id) ?? 0) + 1;
    seqs.set(source.id, seq - day * 10_000_000);
    const iso = new Date(time).toISOString();
    const hash = hex(r, 64);
    const line = JSON.stringify({ seq, prev: hex(r, 64), time: iso, type, ...fields, hash });
    const f = fields as Record<string, string | number | undefined>;
    const tables = touchedKeys([
      ...((fields['tablesRead'] as string[]) ?? []),
      ...((fields['tablesWritten'] as string[]) ?? []),
    ]);
    const columns = (fields['columns'] ?? {}) as Record<string, string>;
    const clear = touchedKeys(Object.keys(columns).filter((c) => columns[c] === 'clear'));
    const masked = touchedKeys(Object.keys(columns).filter((c) => columns[c] !== 'clear'));
    out += copyRow([
      source.id,
      seq,
      iso,
      type,
      hash,
      true,
      f['session'],
      f['subject'],
      f['database'],
      f['namespace'],
      f['pod'],
      f['statement'],
      f['fingerprint'],
      f['outcome'],
      f['command'],
      f['rows'],
      f['durationMs'],
      f['reason'],
      (fields['masked'] as string[]) ?? null,
      f['purpose'],
      f['runId'],
      tables,
      clear,
      masked,
      line,
    ]);
    rows++;
    made++;
  };
  while (made < count) {
    const source = SOURCE_LIST[Math.floor(r() * SOURCES)]!;
    const subjectIndex = skewed(r, SUBJECTS);
    const subject = subjectOf(subjectIndex);
    const covered = subjectIndex % 4 !== 1; // a MaskingPolicy covers most identities: their records name columns
    const declared = r() < 0.05;
    const context = {
      session: `01J${hex(r, 23).toUpperCase()}`,
      protocol: subjectIndex % 5 === 0 ? 'mysql' : 'postgres',
      subject,
      groups: ['system:authenticated', `team-${subjectIndex % 12}`],
      method: subject.startsWith('oidc:') ? 'oidc' : 'token',
      namespace: source.namespace,
      serviceAccount: `sa${subjectIndex}`,
      pod: source.pod,
      clientAddress: `10.${subjectIndex % 250}.${Math.floor(r() * 250)}.${Math.floor(r() * 250)}`,
      database: source.database,
      ...(declared
        ? { purpose: r() < 0.5 ? 'training' : 'analytics', runId: `run-${Math.floor(r() * RUN_IDS)}` }
        : {}),
    };
    let time = dayStart + Math.floor(r() * (DAY_MS - 3_600_000));
    const statements = 1 + skewed(r, 40, 2);
    emit(source, 'connection.start', time, context);
    for (let s = 0; s < statements && made < count; s++) {
      time += Math.floor(r() * 20_000);
      const [table, tableColumns] = TABLES[skewed(r, TABLES.length)]!;
      const [other] = TABLES[skewed(r, TABLES.length)]!;
      const write = r() < 0.2;
      const roll = r();
      const outcome = roll < 0.965 ? 'ok' : roll < 0.99 ? 'error' : 'refused';
      const picked = tableColumns.filter(() => r() < 0.5);
      const columns: Record<string, string> = {};
      if (outcome === 'ok' && covered && !write)
        for (const c of picked) {
          const sensitive = /ssn|email|card|iban|salary|token|phone/.test(c);
          columns[`${table}.${c}`] = sensitive && r() < 0.97 ? MASK[Math.floor(r() * MASK.length)]! : 'clear';
        }
      const text = write
        ? `UPDATE ${table} SET ${tableColumns[1]} = $1 WHERE id = $2`
        : `SELECT ${picked.join(', ') || '*'} FROM ${table} JOIN ${other} USING (id) WHERE id = $1`;
      const fingerprint = hex(r, 16);
      emit(source, 'statement.start', time, { ...context, via: 'simple', statement: text, fingerprint });
      emit(source, 'statement', time + 2, {
        ...context,
        via: 'extended',
        statement: text,
        fingerprint,
        outcome,
        command: write ? 'UPDATE' : 'SELECT',
        rows: outcome === 'ok' ? Math.floor(r() * 50) : 0,
        durationMs: Math.round(r() * 4000) / 100,
        ...(outcome === 'refused'
          ? { reason: `guardrail no-unbounded-${write ? 'update' : 'select'}: statement has no WHERE` }
          : outcome === 'error'
            ? { reason: 'relation does not exist' }
            : {}),
        ...(outcome === 'ok'
          ? {
              tablesRead: write ? [] : [table, other],
              tablesWritten: write ? [table] : [],
              ...(Object.keys(columns).length > 0 ? { columns } : {}),
              masked: Object.entries(columns)
                .filter(([, how]) => how !== 'clear')
                .map(([c, how]) => `${c.split('.').at(-1)} <- ${c} (${how} by policy)`),
            }
          : {}),
      });
      if ((seqs.get(source.id) ?? 0) % 1000 < 2)
        emit(source, 'checkpoint', time + 3, { keyId: 'bench', lost: 0, sig: hex(r, 88) });
      if (rows >= chunk) {
        yield out;
        out = '';
        rows = 0;
      }
    }
    emit(source, 'connection.end', time + 50, {
      ...context,
      durationMs: time + 50 - dayStart,
      statements,
      reason: r() < 0.9 ? 'client' : 'idle-timeout',
    });
  }
  if (rows > 0) yield out;
}

async function load(db: SqlDriver): Promise<void> {
  const [marker] = await db.query<{ records: string }>(
    `SELECT to_regclass('bench_loaded') IS NOT NULL AS present`,
  );
  if ((marker as unknown as { present: boolean }).present) {
    const [row] = await db.query<{ records: string }>('SELECT records FROM bench_loaded');
    if (Number(row!.records) === RECORDS) {
      console.log(`the store already holds the ${RECORDS.toLocaleString('en')} bench records`);
      return;
    }
    throw new Error('the store holds another bench load; give a fresh one');
  }
  const started = performance.now();
  await db.query(
    `INSERT INTO sources (id, cluster, namespace, pod, database, log_key_id, status, reason, last_seq, checkpoint_seq, checkpoint_time, records)
     SELECT i, c, n, p, d, 'bench' || i, CASE WHEN i % 97 = 0 THEN 'broken' WHEN i % 89 = 0 THEN 'gap' ELSE 'ok' END,
       CASE WHEN i % 97 = 0 THEN 'record 12 changed' WHEN i % 89 = 0 THEN 'seq 40 to 44 missing' END,
       1000, 1000, now(), 1000
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) AS s(i, c, n, p, d)`,
    [
      SOURCE_LIST.map((s) => s.id),
      SOURCE_LIST.map((s) => s.cluster),
      SOURCE_LIST.map((s) => s.namespace),
      SOURCE_LIST.map((s) => s.pod),
      SOURCE_LIST.map((s) => s.database),
    ],
  );
  await db.query(`SELECT setval('sources_id_seq', $1)`, [SOURCES]);
  const perDay = Math.ceil(RECORDS / DAYS);
  let next = 0;
  let loaded = 0;
  // Two days at a time: this process makes the rows while the server parses and indexes the other.
  const worker = async () => {
    for (let day = next++; day < DAYS; day = next++) {
      const count = Math.min(perDay, RECORDS - day * perDay);
      const date = new Date(LAST_DAY - (DAYS - 1 - day) * DAY_MS).toISOString().slice(0, 10);
      const nextDate = new Date(Date.parse(date) + DAY_MS).toISOString().slice(0, 10);
      const name = partitionName(date);
      await db.query(`DROP TABLE IF EXISTS ${name}`);
      await db.query(`CREATE TABLE ${name} (LIKE records INCLUDING DEFAULTS)`);
      for (const chunk of dayRecords(day, count, 20_000))
        await db.copyIn(`COPY ${name} ${COLUMNS} FROM STDIN`, chunk);
      await db.query(
        `ALTER TABLE records ATTACH PARTITION ${name} FOR VALUES FROM ('${date} 00:00:00+00') TO ('${nextDate} 00:00:00+00')`,
      );
      loaded += count;
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `  ${date}: ${loaded.toLocaleString('en')} records in ${seconds.toFixed(0)} s (load average ${loadavg()[0]!.toFixed(1)})`,
      );
    }
  };
  await Promise.all([worker(), worker()]);
  await db.query('ANALYZE sources');
  await db.query('ANALYZE records');
  await db.query(`CREATE TABLE bench_loaded AS SELECT $1::bigint AS records`, [RECORDS]);
  console.log(
    `loaded ${RECORDS.toLocaleString('en')} records in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}

/** The questions, each a function of a run's random values, as a console or CLI user asks them. */
function questions(r: () => number): [string, () => string][] {
  const subject = () => subjectOf(skewed(r, SUBJECTS));
  const rareSubject = () => subjectOf(1000 + Math.floor(r() * 1000));
  const database = () => `db${Math.floor(r() * 25)}`;
  const day = () => {
    const start = LAST_DAY - Math.floor(r() * DAYS) * DAY_MS;
    return `since=${new Date(start).toISOString()}&until=${new Date(start + DAY_MS).toISOString()}`;
  };
  const common = () => TABLES[Math.floor(r() * 4)]![0];
  const rare = () => TABLES[100 + Math.floor(r() * 190)]![0].split('.')[1]!;
  const run = () => `run-${Math.floor(r() * RUN_IDS)}`;
  const e = encodeURIComponent;
  return [
    ['sessions, newest', () => '/v1/sessions'],
    ['sessions of an identity, 7 days', () => `/v1/sessions?subject=${e(subject())}&since=7d`],
    ['sessions of an identity, one day', () => `/v1/sessions?subject=${e(subject())}&${day()}`],
    ['sessions of a rare identity, 30 days', () => `/v1/sessions?subject=${e(rareSubject())}&since=30d`],
    ['sessions to a database, 24 h', () => `/v1/sessions?database=${database()}&since=24h`],
    ['sessions of a run id', () => `/v1/sessions?run_id=${run()}`],
    ['statements, newest', () => '/v1/statements'],
    ['statements of an identity, 24 h', () => `/v1/statements?subject=${e(subject())}&since=24h`],
    ['statements of a rare identity, 30 days', () => `/v1/statements?subject=${e(rareSubject())}&since=30d`],
    [
      'refusals in a database, 7 days',
      () => `/v1/statements?database=${database()}&outcome=refused&since=7d`,
    ],
    ['errors, 30 days', () => '/v1/statements?outcome=error&since=30d'],
    ['statements in one day', () => `/v1/statements?${day()}`],
    ['touched a common table, 7 days', () => `/v1/statements?table=${common()}&since=7d`],
    ['touched a rare table, 30 days', () => `/v1/statements?table=${rare()}&since=30d`],
    [
      'who read customers.ssn in clear, 30 days',
      () => '/v1/statements?column=customers.ssn&seen=clear&since=30d',
    ],
    [
      'who read hr.employees.salary in clear, 30 days',
      () => '/v1/statements?column=hr.employees.salary&seen=clear&since=30d',
    ],
    [
      'who touched a column, masked or clear, 30 days',
      () => '/v1/statements?column=public.payments.iban&since=30d',
    ],
    [
      'an identity on a table, 30 days',
      () => `/v1/statements?subject=${e(subject())}&table=${common()}&since=30d`,
    ],
    ['what a run id read', () => `/v1/statements?run_id=${run()}`],
    ['statements of a purpose, 7 days', () => '/v1/statements?purpose=training&since=7d'],
    ['sources and their integrity', () => '/v1/sources'],
  ];
}

async function measure(store: CollectorStore): Promise<void> {
  const app = collectorApi({
    store,
    logger: pino({ level: 'silent' }),
    // The bench measures the store's answers; who may ask is the collector's tests' business.
    authenticate: async () => ({ subject: 'bench', shipper: false, reader: true }),
  });
  const ask = async (path: string) => {
    const response = await app.request(path);
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { items: unknown[]; next?: string };
  };
  const r = random(42);
  const rows: { question: string; p50: number; p95: number; max: number; items: number }[] = [];
  const time = async (question: string, path: () => Promise<string> | string) => {
    await ask(await path()); // warm: plans cached, pages read once
    const times: number[] = [];
    let items = 0;
    for (let i = 0; i < RUNS; i++) {
      const target = await path();
      const started = performance.now();
      items += (await ask(target)).items.length;
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]!;
    rows.push({ question, p50: at(0.5), p95: at(0.95), max: times.at(-1)!, items: items / RUNS });
    console.log(
      `  ${question}: p50 ${at(0.5).toFixed(1)} ms, p95 ${at(0.95).toFixed(1)} ms (${(items / RUNS).toFixed(0)} items a page)`,
    );
  };
  for (const [question, path] of questions(r)) await time(question, path);
  // Deeper pages, by the cursor the previous page gave.
  for (const depth of [2, 10]) {
    await time(`statements, page ${depth}`, async () => {
      let path = '/v1/statements';
      for (let page = 1; page < depth; page++) {
        const answer = await ask(path);
        path = `/v1/statements?cursor=${answer.next}`;
      }
      return path;
    });
  }
  const over = rows.filter((row) => row.p95 >= 200);
  console.log(
    `\n| question | p50 ms | p95 ms | items a page |\n| --- | --- | --- | --- |\n${rows
      .map(
        (row) =>
          `| ${row.question} | ${row.p50.toFixed(1)} | ${row.p95.toFixed(1)} | ${row.items.toFixed(0)} |`,
      )
      .join('\n')}`,
  );
  console.log(
    over.length === 0
      ? `\nevery question under 200 ms p95 over ${RECORDS.toLocaleString('en')} records (load average ${loadavg()[0]!.toFixed(1)})`
      : `\nover 200 ms p95: ${over.map((row) => row.question).join('; ')}`,
  );
  if (over.length > 0) process.exitCode = 1;
}

let stop: (() => Promise<void>) | undefined;
let url = args.store;
try {
  if (url === undefined) {
    const postgres = await startPostgres({
      tls: await generateTls(join(tmpdir(), `gatehouse-query-bench-tls-${process.pid}`)),
      // A throwaway server: durability off for the load; memory as a modest dedicated server has.
      settings: {
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        shared_buffers: "'2GB'",
        maintenance_work_mem: "'512MB'",
        max_wal_size: "'16GB'",
        checkpoint_timeout: "'30min'",
      },
    });
    const { host, port, admin, database } = postgres.info;
    url = `postgres://${admin.user}:${encodeURIComponent(admin.password)}@${host}:${port}/${database}`;
    if (!args.keep) stop = () => postgres.stop();
  }
  const store = await CollectorStore.open(await openDriver(url, 4));
  await load(store.db);
  await measure(store);
  await store.close();
  if (args.keep && args.store === undefined) console.log(`\nkept: --store '${url}'`);
} finally {
  await stop?.();
}
