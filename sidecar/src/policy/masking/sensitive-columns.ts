import type { MaskingMethod } from '../../../../crds/masking-policy.ts';
import type { Catalog } from '../../sql/lineage/catalog.ts';
import { columnKey, tableKey } from '../../sql/lineage/trace.ts';
import { globMatches } from '../guardrails/glob.ts';
import { classifyColumn } from './classify-column.ts';
import type { MaskingRuleSettings, MaskingSettings } from './masking-for.ts';
import type { PiiKind } from './pii-kind.ts';

/** How one catalog column is masked, and why (for the audit record). */
export interface ColumnMasking {
  readonly method: MaskingMethod;
  readonly kind: PiiKind | null;
  /** `ssn by name`, `email by sampled values`, `rule pii/rules[0]`, `statistics of table values`. */
  readonly reason: string;
}

/** Which catalog columns are sensitive for one MaskingSettings, keyed like lineage traces them. */
export interface Sensitivity {
  readonly columns: ReadonlyMap<string, ColumnMasking>;
  /** Tables (by tableKey) with at least one sensitive column: reading one makes untraceable outputs masked. */
  readonly tables: ReadonlySet<string>;
  /**
   * Sensitive columns an approved access request clears for this identity (by columnKey, the request's
   * id): still sensitive everywhere but where a value passes through unchanged (statement-mask-plan.ts).
   */
  readonly exempt: ReadonlyMap<string, ExemptColumn>;
}

/** A sensitive column an approved access request clears, and until when (epoch ms). */
export interface ExemptColumn {
  readonly request: string;
  readonly until: number;
}

/** What value sampling found in a column (by columnKey): the kind most of its sampled values have. */
export type SampledKinds = ReadonlyMap<string, PiiKind>;

/** The method auto-detection uses: it shows nothing of the value and keeps the column's type. */
export const AUTO_DETECT_METHOD: MaskingMethod = 'redact';

/**
 * The columns of PostgreSQL's system relations that hold data rather than metadata, with why. The
 * rest of pg_catalog and information_schema is metadata (names, types, definitions written by DDL)
 * and comes back clear to introspection; these are masked like a sensitive column for whoever sees
 * masked values: values copied from user tables (most common values, histogram bounds), other
 * sessions' statement texts with their literals, large object contents, and credentials.
 */
const SYSTEM_VALUE_COLUMNS: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map(
  Object.entries({
    'pg_catalog.pg_stats': statistics('most_common_vals', 'histogram_bounds', 'most_common_elems'),
    'pg_catalog.pg_stats_ext': statistics('most_common_vals', 'most_common_val_nulls', 'most_common_freqs'),
    'pg_catalog.pg_stats_ext_exprs': statistics(
      'most_common_vals',
      'histogram_bounds',
      'most_common_elems',
      'expr',
    ),
    'pg_catalog.pg_statistic': statistics(
      'stavalues1',
      'stavalues2',
      'stavalues3',
      'stavalues4',
      'stavalues5',
    ),
    'pg_catalog.pg_statistic_ext_data': statistics(
      'stxdmcv',
      'stxdexpr',
      'stxdndistinct',
      'stxddependencies',
    ),
    'pg_catalog.pg_stat_activity': new Map([['query', 'statement texts of sessions, with their literals']]),
    'pg_catalog.pg_largeobject': new Map([['data', 'large object contents']]),
    'pg_catalog.pg_authid': new Map([['rolpassword', 'credentials']]),
    'pg_catalog.pg_shadow': new Map([['passwd', 'credentials']]),
    'pg_catalog.pg_user_mapping': new Map([['umoptions', 'credentials']]),
    'pg_catalog.pg_user_mappings': new Map([['umoptions', 'credentials']]),
    'pg_catalog.pg_subscription': new Map([['subconninfo', 'credentials']]),
    'pg_catalog.pg_stat_wal_receiver': new Map([['conninfo', 'credentials']]),
    'information_schema.user_mapping_options': new Map([['option_value', 'credentials']]),
  }),
);

function statistics(...columns: string[]): ReadonlyMap<string, string> {
  return new Map(columns.map((column) => [column, 'statistics of table values']));
}

const cache = new WeakMap<Catalog, WeakMap<MaskingSettings, WeakMap<SampledKinds, Sensitivity>>>();
const NO_SAMPLES: SampledKinds = new Map();

/**
 * Classifies every column of the catalog once per (catalog, settings, samples): explicit rules
 * first (the first matching rule decides), then auto-detection by column name and by sampled values.
 */
export function sensitiveColumns(
  catalog: Catalog,
  settings: MaskingSettings,
  samples: SampledKinds = NO_SAMPLES,
): Sensitivity {
  let bySettings = cache.get(catalog);
  if (!bySettings) {
    bySettings = new WeakMap();
    cache.set(catalog, bySettings);
  }
  let bySamples = bySettings.get(settings);
  if (!bySamples) {
    bySamples = new WeakMap();
    bySettings.set(settings, bySamples);
  }
  const hit = bySamples.get(samples);
  if (hit) return hit;

  const columns = new Map<string, ColumnMasking>();
  const tables = new Set<string>();
  const exempt = new Map<string, ExemptColumn>();
  for (const table of catalog.tables.values()) {
    const values = SYSTEM_VALUE_COLUMNS.get(`${table.schema}.${table.name}`);
    for (const column of table.columns) {
      const ref = { schema: table.schema, table: table.name, column: column.name };
      const key = columnKey(ref);
      let masking: ColumnMasking | undefined;
      const value = values?.get(column.name);
      if (value !== undefined) {
        masking = { method: 'redact', kind: null, reason: value };
      } else if (table.schema !== 'pg_catalog' && table.schema !== 'information_schema') {
        masking = classifyCatalogColumn(ref, settings, samples.get(key));
      }
      if (masking) {
        columns.set(key, masking);
        tables.add(tableKey(ref));
        // System value columns are never exempt: no request names them, and none may.
        const exemption = value === undefined ? exemptionOf(ref, settings) : undefined;
        if (exemption !== undefined) exempt.set(key, exemption);
      }
    }
  }
  const result: Sensitivity = Object.freeze({ columns, tables, exempt });
  bySamples.set(samples, result);
  return result;
}

/**
 * How one catalog column is masked under `settings`, if it is: the first explicit rule that matches
 * it, else auto-detection by its name or by what sampling found in its values.
 */
export function classifyCatalogColumn(
  ref: { schema: string; table: string; column: string },
  settings: MaskingSettings,
  sampled?: PiiKind,
): ColumnMasking | undefined {
  const byName = classifyColumn(ref.column, ref.table);
  const kind = byName ?? sampled ?? null;
  for (const rule of settings.rules) {
    if (ruleMatches(rule, ref, kind)) return { method: rule.method, kind, reason: `rule ${rule.source}` };
  }
  if (!settings.autoDetect) return undefined;
  if (byName) return { method: AUTO_DETECT_METHOD, kind: byName, reason: `${byName} by name` };
  if (sampled) return { method: AUTO_DETECT_METHOD, kind: sampled, reason: `${sampled} by sampled values` };
  return undefined;
}

/** The approved access request that clears this column for the identity, if one does (exact names). */
export function exemptionOf(
  ref: { schema: string; table: string; column: string },
  settings: MaskingSettings,
): ExemptColumn | undefined {
  for (const exemption of settings.exemptions)
    if (exemption.columns.some((name) => sameColumn(name, ref)))
      return { request: exemption.request, until: exemption.until };
  return undefined;
}

/** `table.column` in any schema or `schema.table.column`, compared exactly: requests name no patterns. */
function sameColumn(name: string, ref: { schema: string; table: string; column: string }): boolean {
  const parts = name.split('.');
  if (parts.length === 2) return parts[0] === ref.table && parts[1] === ref.column;
  return parts.length === 3 && parts[0] === ref.schema && parts[1] === ref.table && parts[2] === ref.column;
}

/** A rule with both columns and classifiers needs both to match; with one, that one. */
function ruleMatches(
  rule: MaskingRuleSettings,
  ref: { schema: string; table: string; column: string },
  kind: PiiKind | null,
): boolean {
  const columnOk = rule.columns.length === 0 || rule.columns.some((pattern) => columnMatches(pattern, ref));
  const kindOk = rule.kinds.length === 0 || (kind !== null && rule.kinds.includes(kind));
  return columnOk && kindOk && (rule.columns.length > 0 || rule.kinds.length > 0);
}

/** `table.column` in any schema, or `schema.table.column`; `*` and `?` are wildcards. */
function columnMatches(pattern: string, ref: { schema: string; table: string; column: string }): boolean {
  const parts = pattern.split('.');
  if (parts.length === 2) return globMatches(parts[0]!, ref.table) && globMatches(parts[1]!, ref.column);
  return (
    parts.length === 3 &&
    globMatches(parts[0]!, ref.schema) &&
    globMatches(parts[1]!, ref.table) &&
    globMatches(parts[2]!, ref.column)
  );
}
