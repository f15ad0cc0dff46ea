import type { Catalog, CatalogTable } from '../../sql/lineage/catalog.ts';
import type { Lineage } from '../../sql/lineage/types.ts';
import type { MysqlLineageResult } from '../../sql/mysql/lineage-mysql.ts';
import type { TracedTouch } from '../gates/statement-touched.ts';
import type { ColumnMask, SessionMasking } from './mysql-session-masking.ts';
import type { ExemptColumn } from './sensitive-columns.ts';
import { comparedInClear, derivedMethod } from './statement-mask-plan.ts';
import { maskedTouch } from './traced-touch.ts';

/** Masks for the columns of one result set, in order; 'all' masks every column. */
export type ResultMask = readonly (ColumnMask | undefined)[] | 'all';

/** What masking asks of one text: a mask per result (by statement), or a refusal. */
export interface TextMasks {
  readonly results: readonly ResultMask[];
  /** Per result, its masked columns for the audit record: `email <- rt.customers.email: redact`. */
  readonly described: readonly (readonly string[])[];
  /** Per result, the exemptions that clear some column of it, for the audit record (`exemptionIds`). */
  readonly exemptions: readonly (readonly ExemptColumn[])[];
  /** Per statement, what it touched as lineage traced it, with how this identity saw each column. */
  readonly touched?: readonly TracedTouch[];
  /** Set when the text filters or orders by a masked column and the policy does not allow it. */
  readonly refusal?: string;
  /** With such a refusal: the masked columns it needs in clear (`schema.table.column`). */
  readonly needs?: readonly string[];
  /**
   * The text reads or writes a relation with masked columns, or data it cannot trace: the server's
   * error messages for it may quote those values in any form, so they are withheld whole.
   */
  readonly withholdsServerText: boolean;
}

/** The access requests of `exemptions` still in force at `now`: those a result was shown clear under. */
export function exemptionIds(
  exemptions: readonly ExemptColumn[] | undefined,
  now: number = Date.now(),
): string[] | undefined {
  if (!exemptions || exemptions.length === 0) return undefined;
  return [...new Set(exemptions.flatMap((e) => (now < e.until ? [e.request] : [])))];
}

const REDACT_UNKNOWN: ColumnMask = { method: 'redact', kind: null };

/**
 * The mask of a value from one or more masked sources, by the PostgreSQL planner's rule: a single
 * source passed through unchanged keeps its mask; anything else takes `derivedMethod`, so
 * `concat(email, ssn)` with the email tokenized and the SSN redacted is redacted whole.
 */
export function strictestMask(masks: readonly ColumnMask[], passedThrough: boolean): ColumnMask {
  const [first] = masks;
  if (first && masks.length === 1 && passedThrough) return first;
  const method = derivedMethod(masks);
  return method === 'redact' ? REDACT_UNKNOWN : { method, kind: null };
}

const maskedTablesMemo = new WeakMap<Catalog, WeakMap<SessionMasking, readonly CatalogTable[]>>();

/**
 * The catalog's tables with a column this masking masks, once per (catalog, masking): both are made
 * anew when they change, and every statement of a masked session asks.
 */
export function maskedTables(catalog: Catalog, masking: SessionMasking): readonly CatalogTable[] {
  let byMasking = maskedTablesMemo.get(catalog);
  if (!byMasking) {
    byMasking = new WeakMap();
    maskedTablesMemo.set(catalog, byMasking);
  }
  let tables = byMasking.get(masking);
  if (!tables) {
    tables = [...catalog.tables.values()].filter((table) =>
      table.columns.some((c) => masking.columnMask(table.schema, table.name, c.name)),
    );
    byMasking.set(masking, tables);
  }
  return tables;
}

/**
 * From the lineage of a text to the masks of its results: a column is masked when a sensitive catalog
 * column flows into it, when it carries whole rows of a relation with sensitive columns, and, when it
 * cannot be traced, whenever the statement reads a sensitive relation or one the catalog does not know.
 * Text that cannot be traced at all masks everything.
 */
export function resultMasks(
  lineage: MysqlLineageResult,
  catalog: Catalog,
  masking: SessionMasking,
): TextMasks {
  if (lineage.parseError) return { results: [], described: [], exemptions: [], withholdsServerText: true };
  const sensitiveTables = new Set(
    maskedTables(catalog, masking).map((t) => `${t.schema}.${t.name}`.toLowerCase()),
  );
  const isSensitiveTable = (schema: string, table: string) =>
    sensitiveTables.has(`${schema}.${table}`.toLowerCase());
  const sourceMask = (l: Lineage): ColumnMask | undefined => {
    const masks = l.sources.flatMap((s) => masking.columnMask(s.schema, s.table, s.column) ?? []);
    const wholeRow = l.wholeRows.some((r) => isSensitiveTable(r.schema, r.table));
    if (masks.length === 0) return wholeRow ? REDACT_UNKNOWN : undefined;
    return strictestMask(masks, l.sources.length === 1 && !l.transformed && !l.opaque && !wholeRow);
  };
  // Exempt columns are clear to this identity in what decides rows and groups; writes still mask them.
  const maskedToReader = (s: { schema: string; table: string; column: string }) =>
    masking.columnMask(s.schema, s.table, s.column) !== undefined &&
    masking.exemptionOf(s.schema, s.table, s.column) === undefined;
  /** One exempt column passed through unchanged: its request, else undefined (see statement-mask-plan.ts). */
  const exemptPassThrough = (l: Lineage): ExemptColumn | undefined =>
    l.sources.length === 1 && !l.transformed && !l.opaque && l.wholeRows.length === 0
      ? masking.exemptionOf(l.sources[0]!.schema, l.sources[0]!.table, l.sources[0]!.column)
      : undefined;
  const results: ResultMask[] = [];
  const described: string[][] = [];
  const exemptions: ExemptColumn[][] = [];
  const touched: TracedTouch[] = [];
  let refusal: string | undefined;
  let needs: string[] | undefined;
  let withholdsServerText = false;
  for (const statement of lineage.statements) {
    const readsSensitive =
      statement.readsUnknown || statement.reads.some((r) => isSensitiveTable(r.schema, r.table));
    withholdsServerText ||=
      readsSensitive ||
      statement.writes.some(
        (w) => w.target.kind === 'column' && isSensitiveTable(w.target.column.schema, w.target.column.table),
      );
    // GET DIAGNOSTICS copies the last statement's messages, which quote the values it handled, into
    // variables that lineage cannot tie to them; SHOW WARNINGS shows the same messages, masked.
    if (statement.kind === 'GET' && refusal === undefined)
      refusal =
        'GET DIAGNOSTICS can carry masked values out of messages; use SHOW WARNINGS, which masks them';
    if (!masking.allowPredicates && refusal === undefined) {
      const over = statement.predicates.sources.find(maskedToReader);
      if (over) {
        refusal = `it filters or orders by the masked column ${over.table}.${over.column}`;
        needs = [`${over.schema}.${over.table}.${over.column}`];
      } else {
        refusal = comparedInClear(statement.equalities ?? [], (s) =>
          maskedToReader(s) ? masking.columnMask(s.schema, s.table, s.column)?.method : undefined,
        );
        if (refusal !== undefined)
          needs = [
            ...new Set(
              (statement.equalities ?? []).flatMap((g) =>
                g.sources.filter(maskedToReader).map((s) => `${s.schema}.${s.table}.${s.column}`),
              ),
            ),
          ];
      }
    }
    // Masked values must not be laundered into columns (or functions) that show them in clear later.
    for (const write of statement.writes) {
      if (refusal !== undefined) break;
      const mask = sourceMask(write) ?? (write.opaque && readsSensitive ? REDACT_UNKNOWN : undefined);
      if (!mask) continue;
      if (write.target.kind === 'function') {
        const name = write.target.name;
        refusal = name.startsWith('@@')
          ? `it would store masked values in the system variable ${name}`
          : `it would pass masked values to ${name}()`;
        break;
      }
      const { schema, table, column } = write.target.column;
      const target = masking.columnMask(schema, table, column);
      const sameMethod = write.sources.every((s) => {
        const m = masking.columnMask(s.schema, s.table, s.column);
        return m === undefined || m.method === target?.method;
      });
      if (!target || !sameMethod || write.wholeRows.length > 0)
        refusal = `it would copy masked values into ${table}.${column}, which is not masked the same way`;
    }
    const columns = statement.columns;
    if (columns === null) {
      touched.push(maskedTouch(statement, [], undefined, []));
      results.push(readsSensitive ? 'all' : []);
      described.push(readsSensitive ? ['* (not traced): redact'] : []);
      exemptions.push([]);
      continue;
    }
    const masks = columns.map(
      (c) => sourceMask(c) ?? (c.opaque && readsSensitive ? REDACT_UNKNOWN : undefined),
    );
    if (!statement.exact) {
      const any = masks.some((m) => m !== undefined);
      touched.push(maskedTouch(statement, [], any ? REDACT_UNKNOWN : undefined, []));
      results.push(any ? 'all' : []);
      described.push(any ? ['* (columns not told apart): redact'] : []);
      exemptions.push([]);
    } else {
      const exempt = columns.map(exemptPassThrough);
      touched.push(maskedTouch(statement, masks, undefined, exempt));
      results.push(
        masks.map((mask, i) => (mask && exempt[i] !== undefined ? { ...mask, exempt: exempt[i] } : mask)),
      );
      exemptions.push(exempt.filter((e) => e !== undefined));
      described.push(
        columns.flatMap((c, i) => {
          const mask = masks[i];
          if (!mask || exempt[i] !== undefined) return [];
          const from = c.sources.map((s) => `${s.schema}.${s.table}.${s.column}`).join(', ') || 'not traced';
          return [`${c.name} <- ${from}: ${mask.method}`];
        }),
      );
    }
  }
  return refusal === undefined
    ? { results, described, exemptions, touched, withholdsServerText }
    : { results, described, exemptions, refusal, ...(needs && { needs }), withholdsServerText };
}
