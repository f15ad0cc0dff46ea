import { type CopyValue, copyRow } from './copy-text.ts';
import { daysOf } from './extract.ts';
import {
  type ChainState,
  type IngestRow,
  ingest,
  NEW_CHAIN,
  resentSeqs,
  type SourceStatus,
} from './ingest.ts';
import type { SqlClient, SqlDriver } from './store-driver.ts';
import {
  COPY_RECORDS,
  createPartitionSql,
  dayOf,
  dayOfPartition,
  MIGRATION_LOCK,
  MIGRATIONS,
  PARTITION_LOCK,
  partitionName,
} from './store-schema.ts';

/** Where an audit log comes from; together these name one log. */
export interface SourceKey {
  readonly cluster: string;
  readonly namespace: string;
  readonly pod: string;
  readonly database: string;
  /** The keyId of the log's first log.open. */
  readonly logKeyId: string;
}

export interface SourceView extends SourceKey {
  readonly id: number;
  readonly status: SourceStatus;
  readonly reason: string | null;
  readonly lastSeq: number;
  readonly checkpointSeq: number | null;
  readonly checkpointTime: string | null;
  readonly records: number;
  readonly lastSeen: string;
  /** The last time someone reset the source's flag, if anyone did (resetSource). */
  readonly lastReset: SourceReset | null;
}

/** A reset of a flagged source: who accepted the damage, why, and what the flag said. */
export interface SourceReset {
  readonly at: string;
  readonly by: string;
  readonly reason: string;
  readonly previousStatus: SourceStatus;
  readonly previousReason: string | null;
  /** The last seq stored when it was reset: the chain is checked again from the record after it. */
  readonly atSeq: number;
}

/**
 * Why a reset was not done: `not-found`; `not-flagged` (a source whose chain holds needs none); or
 * `cannot-check` (its last record has no hash, or it has no log.open: no check could resume, and an
 * `ok` that checks nothing would mislead).
 */
export class ResetRefused extends Error {
  readonly kind: 'not-found' | 'not-flagged' | 'cannot-check';
  constructor(kind: ResetRefused['kind'], message: string) {
    super(message);
    this.kind = kind;
  }
}

export interface IngestOutcome {
  /** The highest seq stored for the source: the shipper goes on after it. */
  readonly acknowledged: number;
  readonly status: SourceStatus;
  readonly stored: number;
  readonly duplicates: number;
}

/**
 * The collector's PostgreSQL (or PGlite) store: ingest of one source's batch in one transaction
 * under its row lock, so replicas never interleave a source's chain; partitions by day made on
 * demand; old days dropped by `applyRetention`.
 */
export class CollectorStore {
  readonly #db: SqlDriver;
  readonly #partitions = new Set<string>();

  private constructor(db: SqlDriver) {
    this.#db = db;
  }

  static async open(db: SqlDriver): Promise<CollectorStore> {
    await migrate(db);
    return new CollectorStore(db);
  }

  get db(): SqlDriver {
    return this.#db;
  }

  async ingest(source: SourceKey, lines: readonly string[], receivedAt = new Date()): Promise<IngestOutcome> {
    await this.#db.query(
      `INSERT INTO sources (cluster, namespace, pod, database, log_key_id) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (cluster, namespace, pod, database, log_key_id) DO NOTHING`,
      [source.cluster, source.namespace, source.pod, source.database, source.logKeyId],
    );
    await this.#ensurePartitions(daysOf(lines, receivedAt));
    const outcome = await this.#db.transaction(async (tx) => {
      const [row] = await tx.query<SourceRow>(
        `SELECT * FROM sources WHERE cluster = $1 AND namespace = $2 AND pod = $3 AND database = $4
         AND log_key_id = $5 FOR UPDATE`,
        [source.cluster, source.namespace, source.pod, source.database, source.logKeyId],
      );
      const chain = chainOf(row!);
      const stored = await storedHashes(tx, row!.id, resentSeqs(chain.lastSeq, lines));
      const result = ingest(chain, lines, stored, source.logKeyId, receivedAt);
      if (result.rows.length > 0) {
        await tx.copyIn(COPY_RECORDS, result.rows.map((r) => copyRow(rowValues(row!.id, r))).join(''));
      }
      const s = result.state;
      await tx.query(
        `UPDATE sources SET status = $2, reason = $3, last_seq = $4, last_hash = $5, checkpoint_seq = $6,
           checkpoint_time = $7, verifier = $8, records = records + $9, last_seen = now() WHERE id = $1`,
        [
          row!.id,
          s.status,
          s.reason ?? null,
          s.lastSeq,
          s.lastHash ?? null,
          s.checkpointSeq ?? null,
          s.checkpointTime ?? null,
          s.verifier === undefined ? null : JSON.stringify(s.verifier),
          result.rows.length,
        ],
      );
      return {
        acknowledged: s.lastSeq,
        status: s.status,
        stored: result.rows.length,
        duplicates: result.duplicates,
      };
    });
    return outcome;
  }

  /** The seq the collector holds up to for a source, 0 when it has none. */
  async acknowledged(source: SourceKey): Promise<number> {
    const [row] = await this.#db.query<{ last_seq: unknown }>(
      `SELECT last_seq FROM sources WHERE cluster = $1 AND namespace = $2 AND pod = $3 AND database = $4
       AND log_key_id = $5`,
      [source.cluster, source.namespace, source.pod, source.database, source.logKeyId],
    );
    return row ? Number(row.last_seq) : 0;
  }

  async sources(): Promise<SourceView[]> {
    const rows = await this.#db.query<SourceRow & ResetRow>(
      `SELECT s.*, r.at AS reset_at, r.by_subject AS reset_by, r.reason AS reset_reason,
         r.previous_status AS reset_previous_status, r.previous_reason AS reset_previous_reason,
         r.at_seq AS reset_at_seq
       FROM sources s LEFT JOIN LATERAL (SELECT * FROM source_resets WHERE source_id = s.id
         ORDER BY at DESC, id DESC LIMIT 1) r ON true
       ORDER BY s.cluster, s.namespace, s.pod, s.id`,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      cluster: r.cluster,
      namespace: r.namespace,
      pod: r.pod,
      database: r.database,
      logKeyId: r.log_key_id,
      status: r.status,
      reason: r.reason,
      lastSeq: Number(r.last_seq),
      checkpointSeq: r.checkpoint_seq === null ? null : Number(r.checkpoint_seq),
      checkpointTime: r.checkpoint_time === null ? null : new Date(r.checkpoint_time).toISOString(),
      records: Number(r.records),
      lastSeen: new Date(r.last_seen).toISOString(),
      lastReset: resetOf(r),
    }));
  }

  /**
   * Clears a flagged source's status, keeping who did it, why and what the flag said, and checks its
   * chain again from the next record: the resumed check expects the record after the last stored
   * one, linked to its hash, signed by the key of the source's last `log.open` (for a foreign key,
   * the one the person resetting vouches for). The damaged records stay as stored, `verified` false.
   */
  async resetSource(id: number, by: string, reason: string): Promise<SourceReset> {
    return this.#db.transaction(async (tx) => {
      const [row] = await tx.query<SourceRow>('SELECT * FROM sources WHERE id = $1 FOR UPDATE', [id]);
      if (!row) throw new ResetRefused('not-found', `no source ${id}`);
      if (row.status === 'ok')
        throw new ResetRefused('not-flagged', `source ${id}'s chain holds: nothing to reset`);
      const [open] = await tx.query<{ line: string }>(
        `SELECT line FROM records WHERE source_id = $1 AND type = 'log.open' ORDER BY seq DESC LIMIT 1`,
        [id],
      );
      const publicKey = open ? publicKeyOf(open.line) : undefined;
      if (row.last_hash === null || publicKey === undefined)
        throw new ResetRefused(
          'cannot-check',
          `source ${id} has no whole last record or no log.open to check its chain from; reset it once one has arrived`,
        );
      const verifier = JSON.stringify({
        expectedSeq: Number(row.last_seq) + 1,
        prev: row.last_hash,
        publicKey,
        sealed: false,
        unsigned: 0,
        torn: [],
        awaitingRecovery: [],
      });
      const [reset] = await tx.query<ResetRow>(
        `INSERT INTO source_resets (source_id, by_subject, reason, previous_status, previous_reason, at_seq)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING at AS reset_at, by_subject AS reset_by, reason AS reset_reason,
           previous_status AS reset_previous_status, previous_reason AS reset_previous_reason, at_seq AS reset_at_seq`,
        [id, by, reason, row.status, row.reason, row.last_seq],
      );
      await tx.query(`UPDATE sources SET status = 'ok', reason = NULL, verifier = $2 WHERE id = $1`, [
        id,
        verifier,
      ]);
      return resetOf(reset!)!;
    });
  }

  /** Every stored line of a source in chain order (torn lines before the record they preceded). */
  async lines(sourceId: number): Promise<string[]> {
    const rows = await this.#db.query<{ line: string }>(
      `SELECT line FROM records WHERE source_id = $1 ORDER BY seq, (type = 'torn') DESC, verified DESC`,
      [sourceId],
    );
    return rows.map((r) => r.line);
  }

  /** Drops the partitions of days wholly older than `days` before `now`; returns the days dropped. */
  async applyRetention(days: number, now = new Date()): Promise<string[]> {
    const cutoff = dayOf(new Date(now.getTime() - days * 86_400_000));
    const partitions = await this.#db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'records'`,
    );
    const dropped: string[] = [];
    for (const { name } of partitions) {
      const day = dayOfPartition(name);
      if (day === undefined || day >= cutoff) continue;
      await this.#db.query(`DROP TABLE IF EXISTS ${partitionName(day)}`);
      this.#partitions.delete(day);
      dropped.push(day);
    }
    return dropped;
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  /** Partition DDL runs outside the ingest transaction and under its own lock, so replicas do not race on it. */
  async #ensurePartitions(days: ReadonlySet<string>): Promise<void> {
    for (const day of days) {
      if (this.#partitions.has(day)) continue;
      await this.#db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
        await tx.query(createPartitionSql(day));
      });
      this.#partitions.add(day);
    }
  }
}

interface SourceRow {
  id: number;
  cluster: string;
  namespace: string;
  pod: string;
  database: string;
  log_key_id: string;
  status: SourceStatus;
  reason: string | null;
  last_seq: unknown;
  last_hash: string | null;
  checkpoint_seq: unknown;
  checkpoint_time: Date | string | null;
  verifier: unknown;
  records: unknown;
  last_seen: Date | string;
}

interface ResetRow {
  reset_at: Date | string | null;
  reset_by: string | null;
  reset_reason: string | null;
  reset_previous_status: SourceStatus | null;
  reset_previous_reason: string | null;
  reset_at_seq: unknown;
}

function resetOf(r: ResetRow): SourceReset | null {
  if (r.reset_at === null || r.reset_by === null) return null;
  return {
    at: new Date(r.reset_at).toISOString(),
    by: r.reset_by,
    reason: r.reset_reason ?? '',
    previousStatus: r.reset_previous_status!,
    previousReason: r.reset_previous_reason,
    atSeq: Number(r.reset_at_seq),
  };
}

function publicKeyOf(line: string): string | undefined {
  try {
    const key = (JSON.parse(line) as Record<string, unknown>)['publicKey'];
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined;
  }
}

function chainOf(row: SourceRow): ChainState {
  const verifier = typeof row.verifier === 'string' ? JSON.parse(row.verifier) : row.verifier;
  return {
    ...NEW_CHAIN,
    status: row.status,
    reason: row.reason ?? undefined,
    lastSeq: Number(row.last_seq),
    lastHash: row.last_hash ?? undefined,
    checkpointSeq: row.checkpoint_seq === null ? undefined : Number(row.checkpoint_seq),
    checkpointTime: row.checkpoint_time === null ? undefined : new Date(row.checkpoint_time).toISOString(),
    verifier: verifier ?? undefined,
  };
}

/** The stored hash of each seq asked for; the verified line wins where a seq was stored twice. */
async function storedHashes(tx: SqlClient, sourceId: number, seqs: number[]): Promise<Map<number, string>> {
  const hashes = new Map<number, string>();
  if (seqs.length === 0) return hashes;
  const rows = await tx.query<{ seq: unknown; hash: string }>(
    `SELECT seq, hash FROM records WHERE source_id = $1 AND seq = ANY($2::bigint[]) AND hash IS NOT NULL
     ORDER BY verified`,
    [sourceId, seqs],
  );
  for (const r of rows) hashes.set(Number(r.seq), r.hash);
  return hashes;
}

function rowValues(sourceId: number, r: IngestRow): CopyValue[] {
  return [
    sourceId,
    r.seq,
    r.time,
    r.type,
    r.hash,
    r.verified,
    r.session,
    r.subject,
    r.database,
    r.namespace,
    r.pod,
    r.statement,
    r.fingerprint,
    r.outcome,
    r.command,
    r.rows,
    r.durationMs,
    r.reason,
    r.masked,
    r.purpose,
    r.runId,
    r.tables,
    r.columnsClear,
    r.columnsMasked,
    r.line,
  ];
}

async function migrate(db: SqlDriver): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS collector_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = await tx.query<{ version: number }>('SELECT version FROM collector_migrations');
    const applied = new Set(done.map((d) => Number(d.version)));
    for (const [index, sql] of MIGRATIONS.entries()) {
      if (applied.has(index + 1)) continue;
      await tx.query(sql);
      await tx.query('INSERT INTO collector_migrations (version) VALUES ($1)', [index + 1]);
    }
  });
}
