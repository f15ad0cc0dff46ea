import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { SourceStatus } from './ingest.ts';
import type { IngestOutcome, SourceView } from './store.ts';

const STATUSES: readonly SourceStatus[] = ['ok', 'gap', 'broken', 'foreign-key'];

/** The collector's Prometheus metrics (GET /metrics on its API port): what it stored, and its sources' chains. */
export interface CollectorMetrics {
  readonly registry: Registry;
  /** Counts one accepted batch. */
  ingested(outcome: IngestOutcome): void;
}

/**
 * Sources by chain status are read from the store at scrape time, so every replica over one store
 * reports the same and GatehouseCollectorChainBroken needs no leader; they are counts, not a series
 * per source (pods come and go, and a series per pod would grow without end).
 */
export function createCollectorMetrics(store: {
  sources(): Promise<readonly SourceView[]>;
}): CollectorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_collector_process_' });
  const records = new Counter({
    name: 'gatehouse_collector_records_stored_total',
    help: 'Audit records stored since start (duplicates of records already stored not counted).',
    registers: [registry],
  });
  const duplicates = new Counter({
    name: 'gatehouse_collector_records_duplicate_total',
    help: 'Audit records received again (a shipper resending after a lost acknowledgement) and not stored twice.',
    registers: [registry],
  });
  const batches = new Counter({
    name: 'gatehouse_collector_batches_total',
    help: 'Batches accepted, by the chain status of their source after them: ok, gap, broken, foreign-key.',
    labelNames: ['status'],
    registers: [registry],
  });
  new Gauge({
    name: 'gatehouse_collector_sources',
    help: 'Audit sources in the store by chain status: ok, gap (records missing), broken (a record does not chain or verify), foreign-key (signed by another key).',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>(STATUSES.map((s) => [s, 0]));
      for (const source of await store.sources())
        counts.set(source.status, (counts.get(source.status) ?? 0) + 1);
      for (const [status, count] of counts) this.set({ status }, count);
    },
  });
  for (const status of STATUSES) batches.inc({ status }, 0);
  return {
    registry,
    ingested(outcome) {
      records.inc(outcome.stored);
      duplicates.inc(outcome.duplicates);
      batches.inc({ status: outcome.status });
    },
  };
}
