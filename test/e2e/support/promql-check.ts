import { parser } from '@prometheus-io/lezer-promql';

/** One series selector of a PromQL expression: the metric and its label matchers. */
export interface Selector {
  readonly metric: string;
  readonly matchers: readonly { readonly label: string; readonly op: string; readonly value: string }[];
}

/** What an expression reads: its selectors, the labels it groups by, and the spans the grammar refused. */
export interface ExpressionReading {
  readonly selectors: readonly Selector[];
  readonly grouping: readonly string[];
  readonly syntaxErrors: readonly string[];
}

/**
 * Reads a PromQL expression with Prometheus' own grammar (@prometheus-io/lezer-promql, what the
 * Prometheus UI parses with): a misspelt function or an unbalanced bracket is a syntax error here.
 */
export function readExpression(expression: string): ExpressionReading {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  const syntaxErrors: string[] = [];
  const text = (from: number, to: number) => expression.slice(from, to);
  parser.parse(expression).iterate({
    enter(node) {
      if (node.type.isError) {
        syntaxErrors.push(`at ${node.from}: ${JSON.stringify(text(node.from, node.to + 10))}`);
        return;
      }
      if (node.name === 'LabelName' && node.node.parent?.name === 'GroupingLabels')
        grouping.push(text(node.from, node.to));
      if (node.name !== 'VectorSelector') return;
      const selector = node.node;
      const metric = selector.getChild('Identifier');
      const matchers = (selector.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map(
        (m) => ({
          label: text(m.getChild('LabelName')!.from, m.getChild('LabelName')!.to),
          op: text(m.getChild('MatchOp')!.from, m.getChild('MatchOp')!.to),
          value: JSON.parse(
            text(m.getChild('StringLiteral')!.from, m.getChild('StringLiteral')!.to),
          ) as string,
        }),
      );
      selectors.push({ metric: metric ? text(metric.from, metric.to) : '', matchers });
    },
  });
  return { selectors, grouping, syntaxErrors };
}

/** The series of a Prometheus text exposition, by metric name (histograms by their _bucket/_sum/_count names). */
export function seriesByMetric(exposition: string): Map<string, Record<string, string>[]> {
  const series = new Map<string, Record<string, string>[]>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[name!] = value!;
    const list = series.get(match[1]!) ?? [];
    list.push(labels);
    series.set(match[1]!, list);
  }
  return series;
}

/** Labels Prometheus adds to every target scraped through a PodMonitor or ServiceMonitor. */
export const TARGET_LABELS = ['namespace', 'pod', 'container', 'service', 'endpoint', 'job', 'instance'];

/**
 * What in `expression` the scrapes do not back: a metric no component exports, a label its series do
 * not carry (nor Prometheus adds), an equality matcher on a value no series has, a grouping label
 * found nowhere. `scrapeOf` names the scrape that must hold a metric.
 */
export function unbackedParts(
  expression: string,
  scrapeOf: (metric: string) => Map<string, Record<string, string>[]>,
): string[] {
  const { selectors, grouping, syntaxErrors } = readExpression(expression);
  const problems = syntaxErrors.map((e) => `syntax error ${e}`);
  if (selectors.length === 0) problems.push('reads no metric');
  const labelsSeen = new Set(TARGET_LABELS);
  for (const { metric, matchers } of selectors) {
    const series = scrapeOf(metric).get(metric);
    if (series === undefined || series.length === 0) {
      problems.push(`${metric}: no such series exported`);
      continue;
    }
    for (const labels of series) for (const label of Object.keys(labels)) labelsSeen.add(label);
    for (const { label, op, value } of matchers) {
      if (TARGET_LABELS.includes(label)) continue;
      if (!series.some((s) => label in s)) problems.push(`${metric}: no series has the label ${label}`);
      else if (op === '=' && !series.some((s) => s[label] === value))
        problems.push(`${metric}: no series has ${label}="${value}"`);
    }
  }
  for (const label of grouping)
    if (!labelsSeen.has(label)) problems.push(`grouped by ${label}, which no series has`);
  return problems;
}

/** One query of the chart's monitoring: an alert's expression or a dashboard panel's target. */
export interface MonitoringQuery {
  readonly where: string;
  readonly expression: string;
}

/**
 * Every query the chart installs with all of `monitoring` on: the PrometheusRule's alerts and the
 * Grafana dashboard's targets, Grafana's variables replaced by what Grafana would send.
 */
export function monitoringQueries(
  objects: readonly { kind?: string; spec?: unknown; data?: unknown }[],
): MonitoringQuery[] {
  const queries: MonitoringQuery[] = [];
  for (const object of objects) {
    if (object.kind === 'PrometheusRule') {
      const groups = (object.spec as { groups: { rules: { alert: string; expr: string }[] }[] }).groups;
      for (const rule of groups.flatMap((g) => g.rules))
        queries.push({ where: `alert ${rule.alert}`, expression: String(rule.expr) });
    }
    if (
      object.kind === 'ConfigMap' &&
      (object.data as Record<string, string> | undefined)?.['gatehouse.json']
    ) {
      const dashboard = JSON.parse((object.data as Record<string, string>)['gatehouse.json']!) as {
        panels: { title: string; targets: { expr: string }[] }[];
      };
      for (const panel of dashboard.panels)
        for (const target of panel.targets)
          queries.push({
            where: `panel "${panel.title}"`,
            expression: target.expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*'),
          });
    }
  }
  return queries;
}

/** Whether a query reads the operator's metrics (checked where a real operator runs) or the others'. */
export function readsOperator(query: MonitoringQuery): boolean {
  return readExpression(query.expression).selectors.every((s) => s.metric.startsWith('gatehouse_operator_'));
}
