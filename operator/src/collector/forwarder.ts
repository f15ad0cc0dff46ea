import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpAuditSink } from '../../../sidecar/src/audit/http-sink.ts';
import { sourceName } from './collector-client.ts';
import type { SqlDriver } from './store-driver.ts';

/** How long one replica's hold on forwarding lasts without renewal; another takes over after it. */
const LEASE_SECONDS = 30;

export interface ForwarderOptions {
  readonly db: SqlDriver;
  readonly sink: HttpAuditSink;
  /** Names the sink's position in the store (several sinks may forward the same store). */
  readonly name: string;
  readonly logger: Logger;
  /** Records read from one source per round; the position moves after they are delivered. */
  readonly batchRecords?: number;
  readonly intervalMs?: number;
}

/**
 * Forwards every record the collector stores to an HTTP endpoint (the SIEM), at least once, across
 * restarts and replicas: the position (source, seq) of what the endpoint acknowledged is kept in the
 * store, and moves only after delivery; one replica at a time forwards, under a lease row, so
 * replicas do not send every record twice (after a lease passes to another replica mid-batch, that
 * batch may go twice: the records' hashes tell the duplicates). Records go out in each source's
 * chain order; an endpoint that is down holds the forwarding back, never the ingest.
 */
export class RecordForwarder {
  readonly #options: ForwarderOptions;
  readonly #holder = randomBytes(8).toString('hex');
  #stopped = false;
  #loop: Promise<void> | undefined;
  #forwarded = 0;

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  /** Records delivered by this replica since start. */
  get forwarded(): number {
    return this.#forwarded;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops after the batch in flight, giving the endpoint `graceMs` for it; what is not acknowledged goes next time. */
  async stop(graceMs = 2000): Promise<void> {
    this.#stopped = true;
    await this.#options.sink.close(graceMs);
    await this.#loop;
    // Released on the way out, so another replica takes over at once instead of after the lease.
    await this.#options.db
      .query('DELETE FROM forward_leases WHERE sink = $1 AND holder = $2', [this.#options.name, this.#holder])
      .catch((error: Error) =>
        this.#options.logger.warn({ err: error.message }, 'could not release the forwarding lease'),
      );
  }

  async #run(): Promise<void> {
    const interval = this.#options.intervalMs ?? 1000;
    while (!this.#stopped) {
      let moved = 0;
      try {
        if (await this.#holdLease()) moved = await this.#round();
      } catch (error) {
        this.#options.logger.error(
          { err: (error as Error).message },
          'forwarding round failed; trying again',
        );
      }
      if (moved === 0 && !this.#stopped) await sleep(interval);
    }
  }

  /** Takes or renews the lease; false while another replica holds it. */
  async #holdLease(): Promise<boolean> {
    const rows = await this.#options.db.query<{ holder: string }>(
      `INSERT INTO forward_leases (sink, holder, until) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (sink) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
         WHERE forward_leases.holder = EXCLUDED.holder OR forward_leases.until < now()
       RETURNING holder`,
      [this.#options.name, this.#holder, LEASE_SECONDS],
    );
    return rows.length === 1;
  }

  /** One batch from every source that has records past its position; returns how many went out. */
  async #round(): Promise<number> {
    const { db, sink, name } = this.#options;
    const limit = this.#options.batchRecords ?? 1000;
    const behind = await db.query<{
      id: string;
      cluster: string;
      namespace: string;
      pod: string;
      database: string;
      log_key_id: string;
      position: string;
    }>(
      `SELECT s.id, s.cluster, s.namespace, s.pod, s.database, s.log_key_id, coalesce(p.seq, 0) AS position
         FROM sources s LEFT JOIN forward_positions p ON p.sink = $1 AND p.source_id = s.id
        WHERE s.last_seq > coalesce(p.seq, 0)
        ORDER BY s.id`,
      [name],
    );
    let moved = 0;
    for (const source of behind) {
      if (this.#stopped) break;
      const records = await db.query<{ seq: string; line: string }>(
        'SELECT seq, line FROM records WHERE source_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
        [source.id, source.position, limit],
      );
      if (records.length === 0) continue;
      const label = sourceName({ ...source, logKeyId: source.log_key_id });
      for (const record of records) sink.push(record.line, label);
      await sink.settled();
      if (this.#stopped && sink.pending > 0) break;
      const last = records[records.length - 1]!.seq;
      await db.query(
        `INSERT INTO forward_positions (sink, source_id, seq) VALUES ($1, $2, $3)
         ON CONFLICT (sink, source_id) DO UPDATE SET seq = greatest(forward_positions.seq, EXCLUDED.seq)`,
        [name, source.id, last],
      );
      moved += records.length;
      this.#forwarded += records.length;
      // Still ours? A long outage may have let the lease pass to another replica.
      if (!(await this.#holdLease())) break;
    }
    return moved;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
