import type { MaskingMethod } from '../../../../crds/masking-policy.ts';
import { columnKey, tableKey } from '../../sql/lineage/trace.ts';
import type { ColumnRef, Lineage, StatementLineage } from '../../sql/lineage/types.ts';
import type { TracedTouch } from '../gates/statement-touched.ts';
import type { MaskingSettings } from './masking-for.ts';
import type { PiiKind } from './pii-kind.ts';
import type { ExemptColumn, Sensitivity } from './sensitive-columns.ts';
import { tracedTouch } from './traced-touch.ts';

/** How one output column is masked. */
export interface OutputMask {
  readonly method: MaskingMethod;
  /** The source column's kind when the value passes through unchanged; null for derived values. */
  readonly kind: PiiKind | null;
  /** For the audit record: `email <- public.customers.email (email by name)`. */
  readonly reason: string;
}

/** What masking does to one statement's result, or why the statement must not run. */
export interface StatementMaskPlan {
  /** Per output column (result order); undefined entries are clean (the value scan still looks at them). */
  readonly columns: readonly (OutputMask | undefined)[];
  /** Applies to result columns past `columns` (lineage could not tell them apart); undefined: clean. */
  readonly rest: OutputMask | undefined;
  /** Set when the statement would reveal or copy masked values in a way masking cannot cover. */
  readonly refusal?: string;
  /**
   * With a refusal over predicates or equality: the masked columns whose clear values the statement
   * needs (`schema.table.column`), for a request of clear access (accessRequests.openOnRefusalSeconds).
   */
  readonly needs?: readonly string[];
  /** Masked output columns with their reasons, for the audit record (`rest` only when it applies to all). */
  readonly masked: readonly string[];
  /**
   * The statement reads or writes a table with masked columns, or data it cannot see: the server's
   * error and notice texts for it may quote those values in any form (a failed cast, an XPath error, a
   * RAISE), so they are withheld whole rather than scrubbed by pattern.
   */
  readonly withholdsServerText: boolean;
  /**
   * For a COPY ... TO STDOUT in plain text format whose rows the proxy masks: each column's type OID
   * where known (masked columns of unknown type become `\N`). See copy-text-masker.ts.
   */
  readonly copyTypes?: readonly (number | undefined)[];
  /**
   * Per output column: the approved access request whose exempt column this column passes through
   * unchanged, shown in clear until it ends (`exemptInForce`). The value scan skips these cells (it
   * would redact what was approved); every other clean column is still scanned. `columns` still holds
   * their masks: what ignores this, or runs after the exemption ended (a prepared statement), masks.
   */
  readonly exempt?: readonly (ExemptColumn | undefined)[];
  /** The access requests that cleared some column of this result, for its audit record. */
  readonly exemptions?: readonly string[];
  /** What the statement touched as lineage traced it, for its audit record (see tracedTouch). */
  readonly traced?: TracedTouch;
}

export const NOTHING_MASKED: StatementMaskPlan = Object.freeze({
  columns: Object.freeze([]),
  rest: undefined,
  masked: Object.freeze([]),
  withholdsServerText: false,
});

/** Nothing in the result is masked, but the statement touches masked data: its errors are withheld. */
const NOTHING_MASKED_TEXT_WITHHELD: StatementMaskPlan = Object.freeze({
  ...NOTHING_MASKED,
  withholdsServerText: true,
});

/** For results Gatehouse cannot relate to any statement it traced: every column masked. */
export const MASK_EVERYTHING: StatementMaskPlan = Object.freeze({
  columns: Object.freeze([]),
  rest: Object.freeze({ method: 'redact', kind: null, reason: 'result not traced' }) as OutputMask,
  masked: Object.freeze(['* (result not traced)']),
  withholdsServerText: true,
});

/**
 * Applies the sensitivity of catalog columns to a statement's lineage. Values derived from a
 * sensitive column are masked; values that pass one through unchanged keep its method and kind.
 * Untraceable values are masked when the statement reads a sensitive table or data it cannot see.
 * Refused: predicates over masked columns (unless allowed), writes that copy masked values into
 * columns or functions that are not masked the same way, and COPY out of masked columns in any
 * format but plain text.
 */
export function planStatementMasking(
  lineage: StatementLineage,
  sensitivity: Sensitivity,
  settings: MaskingSettings,
): StatementMaskPlan {
  const readsSensitive =
    lineage.readsUnknown || lineage.reads.some((table) => sensitivity.tables.has(tableKey(table)));
  const touchesSensitive =
    readsSensitive ||
    lineage.writes.some(
      (write) => write.target.kind === 'column' && sensitivity.tables.has(tableKey(write.target.column)),
    );
  const maskOf = (value: Lineage, name: string): OutputMask | undefined =>
    outputMask(value, name, sensitivity, readsSensitive);
  // Exempt columns are clear to this identity in what decides rows and groups, nowhere else: writes
  // still treat them as masked, so no statement copies their values where others would see them.
  const maskedToReader = (s: ColumnRef): boolean => !sensitivity.exempt.has(columnKey(s));

  const predicates = sensitiveSources(lineage.predicates, sensitivity).filter(maskedToReader);
  if (predicates.length > 0 && !settings.allowPredicatesOnMasked) {
    return refuse(
      `it filters, joins, groups, orders or branches on ${describeSources(predicates)}, or passes it where its value decides whether the statement fails or how many rows it returns; this identity sees it masked`,
      predicates,
    );
  }
  if (!settings.allowPredicatesOnMasked) {
    const compared = comparedInClear(lineage.equalities ?? [], (s) =>
      maskedToReader(s) ? sensitivity.columns.get(columnKey(s))?.method : undefined,
    );
    if (compared)
      return refuse(
        compared,
        (lineage.equalities ?? []).flatMap((group) =>
          sensitiveSources(group, sensitivity).filter(maskedToReader),
        ),
      );
  }
  for (const write of lineage.writes) {
    if (!maskOf(write, '')) continue;
    if (write.target.kind === 'column') {
      const target = sensitivity.columns.get(columnKey(write.target.column));
      const sources = sensitiveSources(write, sensitivity);
      // Masked values may move between columns masked alike (UPDATE t SET email = lower(email)).
      if (target && sources.every((s) => sensitivity.columns.get(columnKey(s))?.method === target.method))
        continue;
      return refuse(
        `it would copy masked values into ${qualified(write.target.column)}, which is not masked the same way`,
      );
    }
    return refuse(`it would pass masked values to ${write.target.name}()`);
  }

  const columns = lineage.columns ?? [];
  let planned: (OutputMask | undefined)[];
  let rest: OutputMask | undefined;
  let exempt: (ExemptColumn | undefined)[] = [];
  if (lineage.exact) {
    // COPY's rows are masked field by field without regard to exemptions: clear access is for queries.
    if (lineage.kind !== 'CopyStmt') exempt = columns.map((column) => exemptPassThrough(column, sensitivity));
    planned = columns.map((column) => maskOf(column, column.name));
    rest = readsSensitive ? { method: 'redact', kind: null, reason: 'column not traced' } : undefined;
  } else {
    // A `*` over something whose columns are unknown: every column may hold any of the values.
    const union: Lineage = {
      sources: columns.flatMap((c) => c.sources),
      wholeRows: columns.flatMap((c) => c.wholeRows),
      transformed: true,
      opaque: columns.length === 0 || columns.some((c) => c.opaque),
    };
    rest = maskOf(union, '*');
    planned = [];
  }
  const masked: string[] = [];
  planned.forEach((mask, i) => {
    if (mask && exempt[i] === undefined) masked.push(mask.reason);
  });
  if (rest && !lineage.exact) masked.push(rest.reason);
  let copyTypes: readonly (number | undefined)[] | undefined;
  if (lineage.kind === 'CopyStmt' && masked.length > 0) {
    // Rows of the plain text format split into fields without doubt, one column each: they are
    // masked like a SELECT's. Any other layout, or columns lineage cannot match one to one, would
    // send the values unmasked.
    if (!lineage.exact || !lineage.copyOut?.plainText)
      return refuse(
        `COPY would send ${masked.join(', ')} unmasked in this format; use COPY's default text format without options, or SELECT, which mask them`,
      );
    copyTypes = Object.freeze([...lineage.copyOut.types]);
  }
  const exemptions = [...new Set(exempt.flatMap((e) => (e ? [e.request] : [])))];
  const traced = tracedTouch(lineage, sensitivity, planned, rest, exempt);
  if (masked.length === 0 && !rest && exemptions.length === 0)
    return Object.freeze({ ...(touchesSensitive ? NOTHING_MASKED_TEXT_WITHHELD : NOTHING_MASKED), traced });
  return Object.freeze({
    traced,
    columns: Object.freeze(planned),
    rest,
    masked: Object.freeze(masked),
    withholdsServerText: touchesSensitive,
    ...(copyTypes && { copyTypes }),
    ...(exemptions.length > 0 && { exempt: Object.freeze(exempt), exemptions: Object.freeze(exemptions) }),
  });
}

/** Whether output column `index` of the plan is shown in clear at `now`: an exemption still in force. */
export function exemptInForce(plan: StatementMaskPlan, index: number, now: number = Date.now()): boolean {
  const exemption = plan.exempt?.[index];
  return exemption !== undefined && now < exemption.until;
}

/** The access requests in force at `now` that clear some column of the plan, for the audit record. */
export function exemptionsInForce(plan: StatementMaskPlan, now: number = Date.now()): string[] | undefined {
  if (!plan.exempt) return undefined;
  return [...new Set(plan.exempt.flatMap((e) => (e && now < e.until ? [e.request] : [])))];
}

/**
 * The access request that clears this output value, when it is one exempt column passed through
 * unchanged: a single source, not transformed, no whole row, nothing opaque. Anything else (a function
 * of it, a mix with other columns, a UNION arm of another column) is judged as before, masked.
 */
function exemptPassThrough(value: Lineage, sensitivity: Sensitivity): ExemptColumn | undefined {
  if (value.sources.length !== 1 || value.transformed || value.opaque || value.wholeRows.length > 0)
    return undefined;
  return sensitivity.exempt.get(columnKey(value.sources[0]!));
}

/**
 * Equality between values reveals no more than deterministic tokens of them do: GROUP BY, DISTINCT,
 * UNION and JOIN equality are allowed over columns masked with the same keyed method (tokenize or
 * hash), and over clean columns. Any other group that holds a masked value (redacted, partial, or
 * compared with a clean column, whose clear values would then name the masked ones) is refused.
 */
/**
 * Equality is allowed where the masks reveal it anyway, for both protocols: a group of values compared
 * only with each other (GROUP BY, DISTINCT, UNION, a join's `a.x = b.y`) passes when every member is
 * masked with one keyed, deterministic method (tokenize or hash). `methodOf` says how this identity
 * sees a source column (undefined: in clear).
 */
export function comparedInClear(
  groups: readonly Lineage[],
  methodOf: (source: ColumnRef) => MaskingMethod | undefined,
): string | undefined {
  for (const group of groups) {
    const masked = group.sources.filter((s) => methodOf(s) !== undefined);
    if (masked.length === 0) continue;
    const methods = new Set(masked.map((s) => methodOf(s)!));
    const [method] = methods;
    const keyed = methods.size === 1 && (method === 'tokenize' || method === 'hash');
    if (keyed && masked.length === group.sources.length) continue;
    const why = keyed
      ? 'with columns shown in clear'
      : `and ${describeSources(masked)} ${masked.length === 1 ? 'is' : 'are'} not tokenized or hashed alike`;
    return `it compares ${describeSources(group.sources)} for equality (GROUP BY, DISTINCT, UNION or a join) ${why}; this identity sees ${describeSources(masked)} masked`;
  }
  return undefined;
}

function refuse(refusal: string, needs: readonly ColumnRef[] = []): StatementMaskPlan {
  const names = [...new Set(needs.map(qualified))];
  return Object.freeze({ ...NOTHING_MASKED, refusal, ...(names.length > 0 && { needs: names }) });
}

function outputMask(
  value: Lineage,
  name: string,
  sensitivity: Sensitivity,
  readsSensitive: boolean,
): OutputMask | undefined {
  const sources = sensitiveSources(value, sensitivity);
  const wholeRow = value.wholeRows.some((table) => sensitivity.tables.has(tableKey(table)));
  const untraced = value.opaque && readsSensitive;
  if (sources.length === 0 && !wholeRow && !untraced) return undefined;
  const maskings = sources.map((s) => sensitivity.columns.get(columnKey(s))!);
  const why = [
    ...sources.map((s, i) => `${qualified(s)} (${maskings[i]!.reason})`),
    ...(wholeRow ? ['whole row'] : []),
    ...(untraced ? ['not traced'] : []),
  ];
  const reason = `${name || '?column?'} <- ${why.join(', ')}`;
  const first = maskings[0];
  if (first && sources.length === 1 && !value.transformed && !wholeRow && !value.opaque)
    return { method: first.method, kind: first.kind, reason: `${reason}: ${first.method}` };
  // Derived values: keyed methods still apply (they reveal nothing); partial masks assume the source's layout.
  const method = derivedMethod(maskings);
  return { method, kind: null, reason: `${reason}: ${method}` };
}

/**
 * The method of a value derived from masked sources (or drawn from several), in both protocols: a
 * keyed method survives only when every source has that same method (tokens reveal nothing more);
 * anything else, a mix included, is redacted, the strictest.
 */
export function derivedMethod(maskings: readonly { readonly method: MaskingMethod }[]): MaskingMethod {
  const first = maskings[0]?.method;
  if (
    first !== undefined &&
    (first === 'hash' || first === 'tokenize' || first === 'nullify') &&
    maskings.every((m) => m.method === first)
  )
    return first;
  return 'redact';
}

function sensitiveSources(value: Lineage, sensitivity: Sensitivity): ColumnRef[] {
  return value.sources.filter((source) => sensitivity.columns.has(columnKey(source)));
}

function describeSources(sources: readonly ColumnRef[]): string {
  const names = [...new Set(sources.map(qualified))];
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

function qualified(ref: ColumnRef): string {
  return `${ref.schema}.${ref.table}.${ref.column}`;
}
