import type { StatementTouched } from '../../audit/events.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import { type TracedTouch, untracedTouch } from '../masking/traced-touch.ts';

export type { TracedTouch };

/**
 * What each statement of a text touched, for its audit record, from what the policy already worked
 * out: the guardrails' analysis (tables) and, for identities the masking policy covers, the masking
 * plan over the statement's lineage (tables through views, schema-qualified, and the source columns of
 * its output, clear or masked). Nothing here parses: it only rearranges, and keeps what it makes per
 * analysis object, which the shape caches share between texts of one shape.
 */

const byFacts = new WeakMap<StatementFacts, readonly StatementTouched[]>();

/** Per top-level statement of the text, the tables its statements (nested ones included) read and write. */
export function tablesTouched(facts: StatementFacts): readonly StatementTouched[] {
  let touched = byFacts.get(facts);
  if (touched === undefined) {
    const read: Set<string>[] = [];
    const written: Set<string>[] = [];
    for (const statement of facts.statements) {
      const i = statement.topLevel;
      const r = read[i] ?? new Set<string>();
      const w = written[i] ?? new Set<string>();
      read[i] = r;
      written[i] = w;
      for (const table of statement.tablesRead) r.add(table);
      for (const table of statement.tablesWritten) w.add(table);
    }
    const count = Math.max(facts.statementCount, read.length, written.length);
    touched = Object.freeze(
      Array.from({ length: count }, (_, i) => touchedOf(read[i], written[i], undefined) ?? NOTHING),
    );
    byFacts.set(facts, touched);
  }
  return touched;
}

const merged = new WeakMap<StatementTouched, WeakMap<TracedTouch, StatementTouched>>();

/**
 * One statement's record: the lineage's qualified tables where masking traced it, the analysis's
 * tables otherwise (a written table the lineage names is qualified from it), and the traced columns.
 */
export function statementTouched(
  analysed: StatementTouched | undefined,
  traced: TracedTouch | undefined,
): StatementTouched | undefined {
  if (traced === undefined) return analysed && Object.keys(analysed).length > 0 ? analysed : undefined;
  const base = analysed ?? NOTHING;
  let byTrace = merged.get(base);
  if (byTrace === undefined) {
    byTrace = new WeakMap();
    merged.set(base, byTrace);
  }
  let touched = byTrace.get(traced);
  if (touched === undefined) {
    const qualified = new Map<string, string>();
    for (const table of [...traced.tablesRead, ...traced.tablesWritten])
      qualified.set(table.slice(table.indexOf('.') + 1), table);
    const written = new Set(traced.tablesWritten);
    for (const table of base.tablesWritten ?? [])
      written.add(table.includes('.') ? table : (qualified.get(table) ?? table));
    const read = new Set(traced.tablesRead);
    if (traced.tablesRead.length === 0) for (const table of base.tablesRead ?? []) read.add(table);
    touched = touchedOf(read, written, traced.columns) ?? NOTHING;
    byTrace.set(traced, touched);
  }
  return touched === NOTHING ? undefined : touched;
}

/**
 * Per statement, the analysis's tables joined with the columns lineage traced for an identity that
 * sees them in clear; where lineage could not read the text (`traced` undefined or short), the tables
 * read are recorded with their columns unknown (untracedTouch) rather than left out.
 */
export function withTraced(
  analysed: readonly StatementTouched[],
  traced: readonly TracedTouch[] | undefined,
): readonly StatementTouched[] {
  const count = Math.max(analysed.length, traced?.length ?? 0);
  return Array.from(
    { length: count },
    (_, i) => statementTouched(analysed[i], traced?.[i] ?? untracedTouch(analysed[i]?.tablesRead)) ?? NOTHING,
  );
}

const NOTHING: StatementTouched = Object.freeze({});

function touchedOf(
  read: ReadonlySet<string> | undefined,
  written: ReadonlySet<string> | undefined,
  columns: Readonly<Record<string, string>> | undefined,
): StatementTouched | undefined {
  const tablesRead = read && read.size > 0 ? Object.freeze([...read].sort()) : undefined;
  const tablesWritten = written && written.size > 0 ? Object.freeze([...written].sort()) : undefined;
  if (!tablesRead && !tablesWritten && !columns) return undefined;
  return Object.freeze({
    ...(tablesRead && { tablesRead }),
    ...(tablesWritten && { tablesWritten }),
    ...(columns && { columns }),
  });
}
