import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The proxy's Prometheus metrics, on a registry of their own so tests and embeddings do not collide. */
export interface ProxyMetrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge<'protocol'>;
  readonly connectionsTotal: Counter<'protocol' | 'outcome'>;
  readonly statementsTotal: Counter<'protocol' | 'outcome'>;
  readonly statementDuration: Histogram<'protocol'>;
  readonly upstreamErrorsTotal: Counter<'protocol' | 'kind'>;
  readonly bytesTotal: Counter<'protocol' | 'direction'>;
  readonly approvalNotificationsTotal: Counter<'type' | 'outcome'>;
}

export function createMetrics(): ProxyMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  return {
    registry,
    connectionsActive: new Gauge({
      name: 'gatehouse_connections_active',
      help: 'Client sessions currently open through the proxy.',
      labelNames: ['protocol'],
      registers: [registry],
    }),
    connectionsTotal: new Counter({
      name: 'gatehouse_connections_total',
      help: 'Client connections by outcome: accepted, refused (authentication or policy), failed (upstream or protocol error), cancel.',
      labelNames: ['protocol', 'outcome'],
      registers: [registry],
    }),
    statementsTotal: new Counter({
      name: 'gatehouse_statements_total',
      help: 'Statements by outcome: ok, error (the database refused it), refused (Gatehouse refused it).',
      labelNames: ['protocol', 'outcome'],
      registers: [registry],
    }),
    statementDuration: new Histogram({
      name: 'gatehouse_statement_duration_seconds',
      help: 'Time from a statement reaching the proxy to its completion from the database.',
      labelNames: ['protocol'],
      buckets: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
      ],
      registers: [registry],
    }),
    upstreamErrorsTotal: new Counter({
      name: 'gatehouse_upstream_errors_total',
      help: 'Failures reaching or talking to the database: connect, auth, tls, closed.',
      labelNames: ['protocol', 'kind'],
      registers: [registry],
    }),
    bytesTotal: new Counter({
      name: 'gatehouse_bytes_total',
      help: 'Bytes relayed, by direction: client_to_upstream, upstream_to_client.',
      labelNames: ['protocol', 'direction'],
      registers: [registry],
    }),
    approvalNotificationsTotal: new Counter({
      name: 'gatehouse_approval_notifications_total',
      help: 'Approval notifications by target type (slack, webhook) and outcome: sent, failed (after its retries), skipped (its URL could not be had).',
      labelNames: ['type', 'outcome'],
      registers: [registry],
    }),
  };
}

/** Audit health as gauges read at scrape time, so the hot path pays nothing for them. */
export function registerAuditMetrics(
  registry: Registry,
  audit: { readonly written: number; readonly lost: number; readonly healthy: boolean },
): void {
  new Gauge({
    name: 'gatehouse_audit_records_written',
    help: 'Audit records written to the audit file since start.',
    registers: [registry],
    collect() {
      this.set(audit.written);
    },
  });
  new Gauge({
    name: 'gatehouse_audit_records_lost',
    help: 'Audit records that could not be written since start; statements are refused while the sink fails.',
    registers: [registry],
    collect() {
      this.set(audit.lost);
    },
  });
  new Gauge({
    name: 'gatehouse_audit_healthy',
    help: '1 while the audit sink accepts records, 0 while it fails (statements are then refused).',
    registers: [registry],
    collect() {
      this.set(audit.healthy ? 1 : 0);
    },
  });
}

/** The HTTP audit sink's state (audit.http): what it delivered, what waits, what it had to drop. */
export function registerAuditHttpMetrics(
  registry: Registry,
  sink: { readonly sent: number; readonly pending: number; readonly dropped: number },
): void {
  const gauges: [string, string, () => number][] = [
    ['gatehouse_audit_http_sent', 'Audit records the HTTP sink delivered since start.', () => sink.sent],
    ['gatehouse_audit_http_pending', 'Audit records waiting for the HTTP endpoint.', () => sink.pending],
    [
      'gatehouse_audit_http_dropped',
      'Audit records the HTTP sink dropped since start because too many waited (the audit file keeps them).',
      () => sink.dropped,
    ],
  ];
  for (const [name, help, value] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  }
}

/** The bound metric children a session updates. */
export interface SessionMetrics {
  statementOk(): void;
  statementError(): void;
  statementRefused(): void;
  observeDuration(seconds: number): void;
  bytesIn(n: number): void;
  bytesOut(n: number): void;
  upstreamError(kind: string): void;
  connection(outcome: 'accepted' | 'refused' | 'failed' | 'cancel'): void;
  active(delta: number): void;
}

/** The metric children one protocol's sessions update, bound once. */
export function sessionMetrics(m: ProxyMetrics, protocol: 'postgres' | 'mysql'): SessionMetrics {
  const ok = m.statementsTotal.labels(protocol, 'ok');
  const error = m.statementsTotal.labels(protocol, 'error');
  const refused = m.statementsTotal.labels(protocol, 'refused');
  const duration = m.statementDuration.labels(protocol);
  const bytesIn = m.bytesTotal.labels(protocol, 'client_to_upstream');
  const bytesOut = m.bytesTotal.labels(protocol, 'upstream_to_client');
  const active = m.connectionsActive.labels(protocol);
  return {
    statementOk: () => ok.inc(),
    statementError: () => error.inc(),
    statementRefused: () => refused.inc(),
    observeDuration: (seconds) => duration.observe(seconds),
    bytesIn: (n) => bytesIn.inc(n),
    bytesOut: (n) => bytesOut.inc(n),
    upstreamError: (kind) => m.upstreamErrorsTotal.labels(protocol, kind).inc(),
    connection: (outcome) => m.connectionsTotal.labels(protocol, outcome).inc(),
    active: (delta) => active.inc(delta),
  };
}
