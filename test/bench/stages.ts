/**
 * What each stage of a governed statement costs, measured in one process on the real sidecar
 * functions, the benchmark's own statements and the answers its PostgreSQL sends to them, under the
 * policy `gatehouse-guarded` runs (gatehouse.ts): framing, the audit text, analysis (hit and miss),
 * the guardrail decision, lineage and the masking plan, masking the rows, the audit record (serialise,
 * hash, write) and the socket write. `npm run bench` runs it in a child process started as the proxy
 * is (`--liftoff-only`), after the throughput runs: `node --liftoff-only test/bench/stages.ts` reads
 * `{"server": {host, port, database, user, password}, "scale": N, "seconds": S}` on standard input
 * (a database that pgbench -i and the masked-rows setup have filled) and prints the rows as JSON.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chainText, GENESIS } from '../../sidecar/src/audit/chain.ts';
import type { SessionContext, StatementEvent, StatementStartEvent } from '../../sidecar/src/audit/events.ts';
import { openAuditLog } from '../../sidecar/src/audit/log.ts';
import { auditText } from '../../sidecar/src/audit/record.ts';
import type { Identity } from '../../sidecar/src/identity/identity.ts';
import { PostgresGate } from '../../sidecar/src/policy/gates/postgres-gate.ts';
import {
  type CatalogSnapshot,
  MaskingGate,
  planAt,
} from '../../sidecar/src/policy/gates/postgres-masking.ts';
import { analyzeByShape } from '../../sidecar/src/policy/gates/shape-cache.ts';
import { CodeGuard } from '../../sidecar/src/policy/gates/stored-code.ts';
import { loadPolicyDocuments } from '../../sidecar/src/policy/load-policy.ts';
import { createMaskingKey } from '../../sidecar/src/policy/masking/masking-key.ts';
import { CatalogCache } from '../../sidecar/src/protocol/postgres/catalog-cache.ts';
import { MessageFramer, MessageScanner } from '../../sidecar/src/protocol/postgres/message-framer.ts';
import { createRowMasker, rowDescriptionFields } from '../../sidecar/src/protocol/postgres/row-masker.ts';
import { WANTED_BACKEND_TYPES } from '../../sidecar/src/protocol/postgres/server-messages.ts';
import { connectUpstream, type UpstreamConnection } from '../../sidecar/src/protocol/postgres/upstream.ts';
import { analyzeStatement } from '../../sidecar/src/sql/analyze/analyze-statement.ts';
import { outputLineage } from '../../sidecar/src/sql/lineage/output-lineage.ts';
import { describeQuery, loadSqlParser } from '../../sidecar/src/sql/normalize.ts';
import { statementShape } from '../../sidecar/src/sql/statement-shape.ts';
import { exec } from '../harness/exec.ts';
import type { PostgresInfo } from '../harness/postgres.ts';
import { BENCH_USER, GUARDED_POLICY } from './gatehouse.ts';
import { MASKED_ROWS_SCRIPT } from './workloads.ts';

export interface StageRow {
  readonly stage: string;
  /** The statement it was measured on. */
  readonly on: string;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly callsPerSecond: number;
}

export interface StageServer {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
}

/** The stages measured; each row's stage starts with one of these (the README describes each). */
export const STAGE_KINDS = [
  'framing',
  'audit text (describe)',
  'analysis',
  'decision (guardrails)',
  'lineage',
  'masking rows',
  'audit record',
  'socket write',
] as const;

/** Calls timed together: a timer read costs tens of nanoseconds, some stages not much more. */
const BATCH = 8;
const SELECT_ONLY = 'select-only';
const MASKED = 'masked-rows (100)';

/**
 * Times `call` in batches of BATCH for about `seconds`: p50 and p99 of a batch's time per call, and
 * calls per second over the whole run. `call` gets a running number, for texts that must not repeat.
 */
function measure(stage: string, on: string, seconds: number, call: (i: number) => void): StageRow {
  for (let i = 0; i < 2000; i++) call(i);
  const samples: number[] = [];
  let n = 2000;
  const started = performance.now();
  const until = started + seconds * 1000;
  for (let now = started; now < until; ) {
    for (let i = 0; i < BATCH; i++) call(n++);
    const after = performance.now();
    samples.push(((after - now) * 1000) / BATCH);
    now = after;
  }
  const total = performance.now() - started;
  return summarize(stage, on, samples, (samples.length * BATCH) / (total / 1000));
}

/** The same for a stage that has to wait for I/O: `call` handles one batch of BATCH statements. */
async function measureAsync(
  stage: string,
  on: string,
  seconds: number,
  batch: (first: number) => Promise<void>,
): Promise<StageRow> {
  for (let i = 0; i < 200; i++) await batch(i * BATCH);
  const samples: number[] = [];
  let n = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  for (let now = started; now < until; ) {
    await batch(n);
    n += BATCH;
    const after = performance.now();
    samples.push(((after - now) * 1000) / BATCH);
    now = after;
  }
  const total = performance.now() - started;
  return summarize(stage, on, samples, (samples.length * BATCH) / (total / 1000));
}

function summarize(stage: string, on: string, samples: number[], callsPerSecond: number): StageRow {
  if (!STAGE_KINDS.some((kind) => stage.startsWith(kind)))
    throw new Error(`stage ${stage} is of no kind in STAGE_KINDS`);
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { stage, on, p50Us: at(0.5), p99Us: at(0.99), callsPerSecond };
}

/** A simple-protocol Query message. */
function queryMessage(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const message = Buffer.alloc(5 + text.length);
  message[0] = 0x51;
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
}

/** Sends one Query on an idle connection and returns the server's whole answer, up to ReadyForQuery. */
function answerBytes(upstream: UpstreamConnection, sql: string): Promise<Buffer> {
  const socket = upstream.socket;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      // ReadyForQuery ('Z', length 5, status) ends the answer.
      if (all.length >= 6 && all[all.length - 6] === 0x5a && all.readInt32BE(all.length - 5) === 5) {
        socket.off('data', onData);
        socket.pause();
        resolve(all);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(queryMessage(sql));
    socket.resume();
  });
}

/** The messages of an answer, for the row masker: RowDescription's fields and the DataRows. */
function splitAnswer(answer: Buffer): { description: Buffer; rows: Buffer[] } {
  let description: Buffer | undefined;
  const rows: Buffer[] = [];
  for (let at = 0; at < answer.length; ) {
    const end = at + 1 + answer.readInt32BE(at + 1);
    const frame = answer.subarray(at, end);
    if (frame[0] === 0x54) description = frame;
    else if (frame[0] === 0x44) rows.push(frame);
    at = end;
  }
  if (!description) throw new Error('the answer holds no RowDescription');
  return { description, rows };
}

/** A loopback socket whose other end reads and drops everything. */
async function drainedSocket(): Promise<{ socket: Socket; close: () => void }> {
  const server = createServer((peer) => peer.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const socket = netConnect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return {
    socket,
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

export async function measureStages(
  server: StageServer,
  scale: number,
  seconds: number,
): Promise<StageRow[]> {
  await loadSqlParser();
  const connect = () =>
    connectUpstream({
      host: server.host,
      port: server.port,
      database: server.database,
      user: server.user,
      password: server.password,
      tls: { mode: 'disable' },
      connectTimeoutMs: 10_000,
      startupParameters: { application_name: 'gatehouse bench stages' },
    });
  const logger = pino({ level: 'silent' });
  // The proxy's own catalog: loaded, sampled and classified as it loads it for masking.
  const catalogCache = new CatalogCache({
    connect,
    logger,
    refreshMs: 3_600_000,
    sampleRows: 50,
    maxSampledTables: 500,
    queryTimeoutMs: 30_000,
  });
  await catalogCache.ready();
  const snapshot: CatalogSnapshot | undefined = catalogCache.current();
  catalogCache.close();
  if (!snapshot) throw new Error('the catalog could not be loaded');

  const policy = loadPolicyDocuments(GUARDED_POLICY, 'bench');
  const identity: Identity = { subject: `local:${BENCH_USER}`, groups: [], method: 'local' };
  const context: SessionContext = {
    session: '0123456789abcdef',
    identity,
    client: { address: '127.0.0.1', port: 40000 },
    database: server.database,
    protocol: 'postgres',
  };
  const accounts = scale * 100_000;
  const selectOnly = (i: number) =>
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${((i * 7919) % accounts) + 1};`;
  const masked = MASKED_ROWS_SCRIPT.trim();

  const upstream = await connect();
  const selectAnswer = await answerBytes(upstream, selectOnly(0));
  const maskedAnswer = await answerBytes(upstream, masked);
  upstream.socket.destroy();

  const rows: StageRow[] = [];
  const keep = (_: unknown) => undefined;
  const frame = (_: number, f: Buffer) => f;
  const selectTexts = Array.from({ length: 4096 }, (_, i) => queryMessage(selectOnly(i)));

  const framer = new MessageFramer(1024 * 1024 * 1024);
  rows.push(
    measure('framing: client Query', SELECT_ONLY, seconds, (i) =>
      framer.push(selectTexts[i & 4095]!, frame, keep),
    ),
  );
  const scanner = new MessageScanner(WANTED_BACKEND_TYPES, 256 * 1024 * 1024);
  rows.push(
    measure('framing: server answer', SELECT_ONLY, seconds, () => scanner.scan(selectAnswer, frame, keep)),
  );
  rows.push(
    measure('framing: server answer', MASKED, seconds, () => scanner.scan(maskedAnswer, frame, keep)),
  );

  // pgbench draws a new key per statement: its texts are new to the caches keyed by text, and share a shape.
  rows.push(
    measure('audit text (describe), new text', SELECT_ONLY, seconds, (i) =>
      describeQuery(selectOnly(i + 1e6)),
    ),
  );
  rows.push(measure('audit text (describe), hit', SELECT_ONLY, seconds, () => describeQuery(selectOnly(1))));
  // The session describes a text once, for its audit record, and judges it with that description.
  const selectSql = Array.from({ length: 4096 }, (_, n) => selectOnly(n));
  const selectDescribed = selectSql.map((sql) => describeQuery(sql));
  rows.push(
    measure('analysis, hit (same shape)', SELECT_ONLY, seconds, (n) => {
      const sql = selectSql[n & 4095]!;
      const shape = statementShape(sql, selectDescribed[n & 4095]);
      analyzeByShape(
        `pg\u0000${shape}`,
        () => analyzeStatement(sql),
        () => true,
      );
    }),
  );
  // A text of a shape never seen: a new column alias per call.
  rows.push(
    measure('analysis, miss', SELECT_ONLY, seconds, (i) =>
      analyzeStatement(`SELECT abalance AS a${i} FROM pgbench_accounts WHERE aid = 1;`),
    ),
  );
  rows.push(
    measure('analysis, miss', MASKED, seconds, (i) =>
      analyzeStatement(`${masked.slice(0, -1)} AND ${i} = ${i};`),
    ),
  );

  const guard = new CodeGuard(identity, server.database, () => snapshot.code);
  const idle = { idle: true, outdated: false, refreshed: false };
  const selectFacts = analyzeStatement(selectOnly(0));
  const maskedFacts = analyzeStatement(masked);
  for (const [on, facts] of [
    [SELECT_ONLY, selectFacts],
    [MASKED, maskedFacts],
  ] as const) {
    if (guard.judge(facts, policy, idle).verdict.outcome !== 'allow')
      throw new Error(`the policy refuses ${on}`);
    rows.push(measure('decision (guardrails)', on, seconds, () => guard.judge(facts, policy, idle)));
  }

  const maskingGate = new MaskingGate(
    () => policy,
    identity,
    server.database,
    () => snapshot,
  );
  const selectShape = statementShape(selectSql[0]!, selectDescribed[0]);
  rows.push(
    measure('lineage + mask plan, hit', SELECT_ONLY, seconds, (n) =>
      maskingGate.check(selectSql[n & 4095]!, selectShape),
    ),
  );
  const maskedShape = statementShape(masked);
  rows.push(
    measure('lineage + mask plan, hit', MASKED, seconds, () => maskingGate.check(masked, maskedShape)),
  );
  rows.push(
    measure('lineage, miss', SELECT_ONLY, seconds, (i) =>
      outputLineage(`SELECT abalance AS a${i} FROM pgbench_accounts WHERE aid = 1`, snapshot.catalog),
    ),
  );
  rows.push(
    measure('lineage, miss', MASKED, seconds, (i) =>
      outputLineage(`${masked.slice(0, -1)} AND ${i} = ${i}`, snapshot.catalog),
    ),
  );

  // What audit.columnLineage adds for an identity no MaskingPolicy covers: the gate's whole check of
  // one statement (analysis hit, decision, and with the option the lineage hit and its touched record).
  const clearPolicy = loadPolicyDocuments(
    GUARDED_POLICY.map((document) => {
      const d = document as { kind: string; spec: Record<string, unknown> };
      return d.kind === 'DatabaseAccess' ? { ...d, spec: { ...d.spec, maskingPolicies: [] } } : document;
    }),
    'bench',
  );
  for (const columnLineage of [false, true]) {
    const gate = new PostgresGate({
      policy: () => clearPolicy,
      identity,
      database: server.database,
      code: () => snapshot.code,
      snapshot: () => snapshot,
      misread: () => undefined,
      columnLineage,
    });
    const stage = `lineage for the audit: gate check, clear identity, columnLineage ${columnLineage ? 'on' : 'off'}`;
    const first = gate.check(selectSql[0]!, selectDescribed[0]!, idle);
    if (first.outcome !== 'allow' || first.masking)
      throw new Error('the clear identity is refused or masked');
    if (columnLineage !== (first.touched?.[0]?.columns !== undefined))
      throw new Error(`columnLineage ${columnLineage} does not decide the record's columns`);
    rows.push(
      measure(stage, SELECT_ONLY, seconds, (n) =>
        gate.check(selectSql[n & 4095]!, selectDescribed[n & 4095]!, idle),
      ),
    );
    const maskedDescribed = describeQuery(masked);
    rows.push(measure(stage, MASKED, seconds, () => gate.check(masked, maskedDescribed, idle)));
  }

  const masking = maskingGate.check(masked, statementShape(masked));
  if (!masking || masking.refusal) throw new Error('the masked select gets no masking plan');
  const plan = planAt(masking, 0);
  const { description, rows: dataRows } = splitAnswer(maskedAnswer);
  const masker = createRowMasker(
    plan,
    rowDescriptionFields(description),
    createMaskingKey(Buffer.alloc(32, 7)),
  );
  rows.push(
    measure('masking rows (email tokenized, ssn redacted)', MASKED, seconds, () => {
      for (const row of dataRows) masker(row);
    }),
  );

  const start: StatementStartEvent = {
    type: 'statement.start',
    context,
    via: 'simple',
    statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    fingerprint: 'a6c0fb1d4e6d1d5d',
  };
  const outcome: StatementEvent = {
    ...start,
    type: 'statement',
    outcome: 'ok',
    command: 'SELECT',
    rows: 1,
    durationMs: 0.231,
  };
  const time = `"time":"${new Date().toISOString()}",`;
  rows.push(
    measure('audit record: serialise (2 records)', SELECT_ONLY, seconds, () => {
      auditText(start);
      auditText(outcome);
    }),
  );
  const startText = time + auditText(start);
  const outcomeText = time + auditText(outcome);
  rows.push(
    measure('audit record: hash (2 records)', SELECT_ONLY, seconds, (i) => {
      chainText(2 * i, GENESIS, startText);
      chainText(2 * i + 1, GENESIS, outcomeText);
    }),
  );
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-stages-'));
  try {
    const line = chainText(1, GENESIS, outcomeText).line;
    // Eight sessions' records share the write at the end of a turn, as at 8 clients.
    const turn = Buffer.from(
      `${Array(2 * BATCH)
        .fill(line)
        .join('\n')}\n`,
    );
    const fd = openSync(join(dir, 'write.jsonl'), 'w');
    rows.push(
      measure('audit record: write (8 statements a write)', SELECT_ONLY, Math.min(seconds, 0.3), (i) => {
        if (i % BATCH === 0) writeSync(fd, turn);
      }),
    );
    closeSync(fd);
    const log = await openAuditLog({
      file: join(dir, 'audit.jsonl'),
      stdout: false,
      checkpointEveryRecords: 1000,
      checkpointIntervalMs: 1000,
      logger,
    });
    rows.push(
      await measureAsync(
        'audit record: whole log (8 statements a turn)',
        SELECT_ONLY,
        Math.min(seconds, 0.5),
        async () => {
          const written: (Promise<boolean> | boolean)[] = [];
          for (let i = 0; i < BATCH; i++) written.push(log.recordBefore(start));
          for (const ok of await Promise.all(written)) if (!ok) throw new Error(`audit: ${log.failure}`);
          for (let i = 0; i < BATCH; i++) log.record(outcome);
        },
      ),
    );
    await log.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const { socket, close } = await drainedSocket();
  try {
    for (const [on, answer] of [
      [SELECT_ONLY, selectAnswer],
      [MASKED, maskedAnswer],
    ] as const) {
      rows.push(
        await measureAsync('socket write (answer to client)', on, Math.min(seconds, 0.5), async () => {
          let full = false;
          for (let i = 0; i < BATCH; i++) full = !socket.write(answer) || full;
          // Let the reader keep up, as a client does between statements.
          if (full) await new Promise((resolve) => socket.once('drain', resolve));
        }),
      );
    }
  } finally {
    close();
  }
  return rows;
}

export function formatStageTable(rows: readonly StageRow[]): string {
  const header = ['stage', 'statement', 'µs per statement (p50)', 'p99', 'calls/s'];
  const body = rows.map((r) => [
    r.stage,
    r.on,
    r.p50Us.toFixed(2),
    r.p99Us.toFixed(2),
    Math.round(r.callsPerSecond).toLocaleString('en'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => `${'-'.repeat(w + 1)}${i < 2 ? '-' : ':'}`).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

const STAGES = import.meta.filename;

/**
 * Runs the stage measurements in a child process started as the proxy is (`--liftoff-only`), so the
 * SQL parser's WebAssembly runs as it does there, and returns its rows.
 */
export async function runStages(server: PostgresInfo, scale: number, seconds: number): Promise<StageRow[]> {
  const login: StageServer = {
    host: server.host,
    port: server.port,
    database: server.database,
    user: server.admin.user,
    password: server.admin.password,
  };
  const { stdout } = await exec(process.execPath, ['--liftoff-only', STAGES], {
    // On standard input: the password stays out of the process list and environment.
    input: JSON.stringify({ server: login, scale, seconds }),
    timeoutMs: 300_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as StageRow[];
}

if (import.meta.main) {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { server, scale, seconds } = JSON.parse(input) as {
    server: StageServer;
    scale: number;
    seconds: number;
  };
  const rows = await measureStages(server, scale, seconds);
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}
