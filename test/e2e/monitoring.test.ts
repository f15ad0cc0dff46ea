import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { freshStoreUrl } from '../../operator/src/collector/test-store.ts';
import { freePort } from '../harness/free-port.ts';
import { CHART_DIR, helm } from '../harness/helm.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { localProxyConfig } from './support/clients.ts';
import { type CollectorProcess, startCollectorProcess } from './support/collector-process.ts';
import {
  type MonitoringQuery,
  monitoringQueries,
  readsOperator,
  seriesByMetric,
  unbackedParts,
} from './support/promql-check.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

/**
 * The chart's alerts and dashboard read the metrics a real proxy and a real collector export (the
 * operator's are checked in operator.test.ts, where a real operator runs): every query parses with
 * Prometheus' grammar, every metric it reads has series, every label it matches or groups by is on
 * them (or is one Prometheus adds to a target), and every value it matches with = occurs.
 */
const postgres = inject('postgres');

/**
 * Exported, with the labels the queries use, but without a series in this run: each needs an event
 * the run does not make. Their labels are the ones metrics.ts declares; the test checks they exist.
 */
const NO_SERIES_HERE: Record<string, string> = {
  gatehouse_upstream_errors_total: 'needs the database to fail (pg-lifecycle tests make it)',
  gatehouse_approval_notifications_total: 'needs a held statement with notify targets (approvals tests)',
};

let queries: MonitoringQuery[];
let proxy: ProxyProcess | undefined;
let collector: CollectorProcess | undefined;
let sink: Server | undefined;
let proxyScrape: Map<string, Record<string, string>[]>;
let collectorScrape: Map<string, Record<string, string>[]>;
let proxyText: string;

beforeAll(async () => {
  const rendered = await helm([
    'template',
    'gatehouse',
    CHART_DIR,
    '--namespace',
    'gatehouse-system',
    '--set',
    'monitoring.podMonitor.enabled=true,monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.dashboards.enabled=true',
  ]);
  expect(rendered.code, rendered.stderr).toBe(0);
  const objects = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJS() as { kind?: string; spec?: unknown; data?: unknown } | null)
    .filter((o) => o !== null);
  queries = monitoringQueries(objects);

  // A receiver for the audit HTTP sink, so that its metrics exist.
  sink = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.end('{}'));
  });
  await new Promise<void>((resolve) => sink!.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-monitoring-'));
  const collectorPort = await freePort();
  writeFileSync(
    join(dir, 'collector.yaml'),
    stringify({
      store: { url: await freshStoreUrl('monitoring_e2e') },
      auth: { shipperTokens: [{ value: 'monitoring-shipper-token-0123' }], localUsers: [] },
    }),
  );
  collector = await startCollectorProcess(join(dir, 'collector.yaml'), collectorPort);
  proxy = await startProxyProcess(
    localProxyConfig(postgres, {
      audit: {
        file: 'audit.jsonl',
        stdout: false,
        http: {
          url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`,
          batchIntervalSeconds: 0.05,
        },
        ship: {
          url: `http://127.0.0.1:${collectorPort}`,
          token: 'monitoring-shipper-token-0123',
          cluster: 'e2e',
          pod: 'proxy-0',
        },
      },
    }),
    {
      extraDocuments: [
        policyDocument('Guardrail', 'no-drop', {
          rules: [{ name: 'no-drop', kinds: ['drop'], action: 'block' }],
        }),
        policyDocument('DatabaseAccess', 'demo', {
          subjects: [localUser('demo')],
          allow: ['read', 'write'],
          guardrails: ['no-drop'],
        }),
      ],
    },
  );
  // What the queries count: statements that ran, failed and were refused, and a refused login.
  const client = new pg.Client({
    host: '127.0.0.1',
    port: proxy.port,
    database: postgres.database,
    user: 'demo',
    password: 'demo-secret',
  });
  await client.connect();
  await client.query('SELECT 1');
  await expect(client.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
  await expect(client.query('DROP TABLE IF EXISTS anything')).rejects.toMatchObject({ code: '42501' });
  await client.end();
  const stranger = new pg.Client({
    host: '127.0.0.1',
    port: proxy.port,
    database: postgres.database,
    user: 'demo',
    password: 'wrong',
  });
  await expect(stranger.connect()).rejects.toThrow();
  // Let the shipper reach the collector, so that its counters have moved.
  const until = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${collectorPort}/metrics`)).text();
    if (/^gatehouse_collector_records_stored_total [1-9]/m.test(text) || Date.now() > until) {
      collectorScrape = seriesByMetric(text);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  proxyText = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
  proxyScrape = seriesByMetric(proxyText);
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await collector?.stop();
  await new Promise((resolve) => sink?.close(resolve));
});

describe("the chart's alerts and dashboard", () => {
  it('install the alerts the compliance issue names, and a dashboard of every component', () => {
    const alerts = queries.filter((q) => q.where.startsWith('alert ')).map((q) => q.where);
    expect(alerts).toEqual(
      expect.arrayContaining([
        'alert GatehouseAuditUnhealthy',
        'alert GatehouseAuditRecordsLost',
        'alert GatehouseRefusalSurge',
        'alert GatehouseSidecarMissing',
        'alert GatehouseCollectorChainBroken',
      ]),
    );
    expect(queries.filter((q) => q.where.startsWith('panel ')).length).toBeGreaterThan(10);
  });

  it('read only what the proxy and the collector export', () => {
    const scrapeOf = (metric: string) => {
      if (metric.startsWith('gatehouse_collector_')) return collectorScrape;
      if (metric in NO_SERIES_HERE) {
        // Exported by the proxy, with no series in this run: the rest of the query is checked anyway.
        expect(proxyText, metric).toContain(`# HELP ${metric} `);
        return new Map([[metric, [{ type: '', outcome: '', kind: '' }]]]);
      }
      return proxyScrape;
    };
    const problems = queries
      .filter((q) => !readsOperator(q))
      .flatMap((q) => unbackedParts(q.expression, scrapeOf).map((p) => `${q.where}: ${p}`));
    expect(problems).toEqual([]);
    // Not vacuous: the refusal, the failed statement and the refused login are among the series read.
    expect(
      proxyScrape
        .get('gatehouse_statements_total')
        ?.map((s) => s['outcome'])
        .sort(),
    ).toEqual(['error', 'ok', 'refused']);
  });

  it('catch a query that reads what is not exported', () => {
    const scrapeOf = () => proxyScrape;
    expect(unbackedParts('sum(rate(gatehouse_statement_total[5m]))', scrapeOf)).toEqual([
      'gatehouse_statement_total: no such series exported',
    ]);
    expect(unbackedParts('sum(rate(gatehouse_statements_total{result="refused"}[5m]))', scrapeOf)).toEqual([
      'gatehouse_statements_total: no series has the label result',
    ]);
    expect(unbackedParts('sum(rate(gatehouse_statements_total{outcome="blocked"}[5m]))', scrapeOf)).toEqual([
      'gatehouse_statements_total: no series has outcome="blocked"',
    ]);
    expect(unbackedParts('sum by (rule) (gatehouse_audit_healthy)', scrapeOf)).toEqual([
      'grouped by rule, which no series has',
    ]);
    expect(unbackedParts('sum(rate(gatehouse_statements_total[5m]) ', scrapeOf)[0]).toMatch(/syntax error/);
  });
});
