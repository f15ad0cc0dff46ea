/**
 * The collector's tables. Migrations are numbered and only ever appended; each runs once, under an
 * advisory lock, so replicas starting together apply them once and in order.
 *
 * - `sources`: one row per audit log (cluster, namespace, pod, database and the key its log began
 *   with) with where its chain stands. Its row lock serialises ingest per source across replicas.
 * - `records`: every line as written (`line`), partitioned by day of the record's own time, with the
 *   columns the questions filter on beside it.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sources (
     id bigserial PRIMARY KEY,
     cluster text NOT NULL,
     namespace text NOT NULL,
     pod text NOT NULL,
     database text NOT NULL,
     log_key_id text NOT NULL,
     status text NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'broken', 'gap', 'foreign-key')),
     reason text,
     last_seq bigint NOT NULL DEFAULT 0,
     last_hash text,
     checkpoint_seq bigint,
     checkpoint_time timestamptz,
     verifier jsonb,
     records bigint NOT NULL DEFAULT 0,
     first_seen timestamptz NOT NULL DEFAULT now(),
     last_seen timestamptz NOT NULL DEFAULT now(),
     UNIQUE (cluster, namespace, pod, database, log_key_id)
   );
   CREATE TABLE records (
     source_id bigint NOT NULL,
     seq bigint NOT NULL,
     time timestamptz NOT NULL,
     type text NOT NULL,
     hash text,
     verified boolean NOT NULL,
     session text,
     subject text,
     database text,
     namespace text,
     pod text,
     statement text,
     fingerprint text,
     outcome text,
     command text,
     rows bigint,
     duration_ms double precision,
     reason text,
     masked text[],
     line text NOT NULL
   ) PARTITION BY RANGE (time);
   CREATE INDEX records_source_seq ON records (source_id, seq);
   CREATE INDEX records_type_time ON records (type, time DESC);
   CREATE INDEX records_subject_time ON records (subject, time DESC) WHERE subject IS NOT NULL;
   CREATE INDEX records_database_time ON records (database, time DESC) WHERE database IS NOT NULL;
   CREATE INDEX records_session ON records (session, time) WHERE session IS NOT NULL;
   CREATE INDEX records_not_ok_time ON records (outcome, time DESC) WHERE outcome <> 'ok';`,
  // Data touched (extract.ts touchedKeys): tables and source columns as keys both qualified and not,
  // so `customers.ssn` and `public.customers.ssn` each find them; the declared purpose and run id.
  `ALTER TABLE records ADD COLUMN IF NOT EXISTS purpose text,
     ADD COLUMN IF NOT EXISTS run_id text,
     ADD COLUMN IF NOT EXISTS tables text[],
     ADD COLUMN IF NOT EXISTS columns_clear text[],
     ADD COLUMN IF NOT EXISTS columns_masked text[];
   CREATE INDEX IF NOT EXISTS records_tables ON records USING gin (tables);
   CREATE INDEX IF NOT EXISTS records_columns_clear ON records USING gin (columns_clear);
   CREATE INDEX IF NOT EXISTS records_columns_masked ON records USING gin (columns_masked);
   CREATE INDEX IF NOT EXISTS records_purpose_time ON records (purpose, time DESC) WHERE purpose IS NOT NULL;
   CREATE INDEX IF NOT EXISTS records_run_id_time ON records (run_id, time DESC) WHERE run_id IS NOT NULL;`,
  // Arrival order, for following (store-queries.ts): the id of the transaction that stored each
  // record, which a snapshot tells apart exactly as committed before it or not, where a record's own
  // time may be older than records already shown (a shipper catching up). Added without a default
  // and given one after, so the partitions already there are not rewritten; records stored before
  // it have none and are never followed.
  `ALTER TABLE records ADD COLUMN IF NOT EXISTS ingest_xid xid8;
   ALTER TABLE records ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id();
   CREATE INDEX IF NOT EXISTS records_ingest_xid ON records (ingest_xid) WHERE ingest_xid IS NOT NULL;`,
  // Resets of flagged sources (store.ts resetSource): who accepted the damage, why, and what it was.
  // Kept for as long as the source: a reset is itself part of the audit.
  `CREATE TABLE IF NOT EXISTS source_resets (
     id bigserial PRIMARY KEY,
     source_id bigint NOT NULL REFERENCES sources (id),
     at timestamptz NOT NULL DEFAULT now(),
     by_subject text NOT NULL,
     reason text NOT NULL,
     previous_status text NOT NULL,
     previous_reason text,
     at_seq bigint NOT NULL
   );
   CREATE INDEX IF NOT EXISTS source_resets_source ON source_resets (source_id, at);`,
  // Forwarding to a SIEM (forwarder.ts): per sink, how far each source was delivered, and which
  // replica forwards.
  `CREATE TABLE IF NOT EXISTS forward_positions (
     sink text NOT NULL,
     source_id bigint NOT NULL,
     seq bigint NOT NULL,
     PRIMARY KEY (sink, source_id)
   );
   CREATE TABLE IF NOT EXISTS forward_leases (
     sink text PRIMARY KEY,
     holder text NOT NULL,
     until timestamptz NOT NULL
   );`,
  // The console's sign-ins (console/console-sessions.ts, console/oidc-pending.ts), so any replica
  // serves any browser and a restart signs no one out. Rows are keyed by the SHA-256 of the browser's
  // secret and sealed under a key derived from it: the store can neither present nor open them. The
  // subject stays readable to cap each person's sessions and to revoke them (DELETE ... WHERE subject).
  `CREATE TABLE IF NOT EXISTS console_sessions (
     lookup text PRIMARY KEY,
     subject text NOT NULL,
     created_at timestamptz NOT NULL,
     expires_at timestamptz NOT NULL,
     sealed text NOT NULL,
     flash text
   );
   CREATE INDEX IF NOT EXISTS console_sessions_expires ON console_sessions (expires_at);
   CREATE INDEX IF NOT EXISTS console_sessions_subject ON console_sessions (subject, created_at);
   CREATE TABLE IF NOT EXISTS console_oidc_pending (
     lookup text PRIMARY KEY,
     expires_at timestamptz NOT NULL,
     sealed text NOT NULL
   );
   CREATE INDEX IF NOT EXISTS console_oidc_pending_expires ON console_oidc_pending (expires_at);`,
];

export const COPY_RECORDS = `COPY records (source_id, seq, time, type, hash, verified, session, subject, database,
  namespace, pod, statement, fingerprint, outcome, command, rows, duration_ms, reason, masked, purpose, run_id, tables,
  columns_clear, columns_masked, line) FROM STDIN`;

/** An arbitrary constant naming the collector's migration lock among the database's advisory locks. */
export const MIGRATION_LOCK = 0x6761_7465;
/** The partition creation lock: DDL of one day by one replica at a time. */
export const PARTITION_LOCK = 0x6761_7466;

/** `records_p20261207` for the UTC day of `time`. */
export function partitionName(day: string): string {
  return `records_p${day.replaceAll('-', '')}`;
}

/** The UTC day (`YYYY-MM-DD`) a time falls in. */
export function dayOf(time: Date): string {
  return time.toISOString().slice(0, 10);
}

export function createPartitionSql(day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a day: ${day}`);
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  return `CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF records
    FOR VALUES FROM ('${day} 00:00:00+00') TO ('${next} 00:00:00+00')`;
}

/** The day a partition holds, from its name; undefined for any other table. */
export function dayOfPartition(name: string): string | undefined {
  const match = /^records_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  return match ? `${match[1]}-${match[2]}-${match[3]}` : undefined;
}
