import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { Catalog, CatalogTable } from '../../sql/lineage/catalog.ts';

/** Statements that remove or rewrite whole rows (or the table): every column of what they write is touched. */
const WHOLE_ROWS: ReadonlySet<string> = new Set(['delete', 'truncate', 'drop', 'alter', 'merge']);

/**
 * The masked or sensitive columns a held statement reads or writes, for its approver and the
 * `sensitiveColumns: none` condition, the same for both protocols: `masked` says whether a catalog
 * column is masked for the requester. Over-inclusive where the facts are coarse (an unqualified table
 * may be any schema's; a table read without named columns counts whole), so a condition that admits
 * only statements touching none errs towards holding. Undefined when the facts cannot say.
 */
export function touchedSensitiveColumns(
  facts: StatementFacts,
  catalog: Catalog,
  masked: (schema: string, table: string, column: string) => boolean,
  caseInsensitive = false,
): readonly string[] | undefined {
  if (!facts.parsed || facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement'))
    return undefined;
  const fold = (s: string) => (caseInsensitive ? s.toLowerCase() : s);
  const touched = new Set<string>();
  const add = (table: CatalogTable, column: string) => {
    if (masked(table.schema, table.name, column)) touched.add(`${table.schema}.${table.name}.${column}`);
  };
  const tablesNamed = (written: string): CatalogTable[] => {
    const name = written.replaceAll('"', '').replaceAll('`', '');
    const dot = name.lastIndexOf('.');
    const [schema, table] = dot < 0 ? [undefined, name] : [name.slice(0, dot), name.slice(dot + 1)];
    return [...catalog.tables.values()].filter(
      (t) => fold(t.name) === fold(table) && (schema === undefined || fold(t.schema) === fold(schema)),
    );
  };
  const whole = (written: string) => {
    for (const table of tablesNamed(written)) for (const column of table.columns) add(table, column.name);
  };
  for (const s of facts.statements) {
    if (WHOLE_ROWS.has(s.kind)) for (const t of [...s.tablesWritten, ...s.objects]) whole(t);
    const named = [...s.columnsRead, ...s.columnsWritten];
    for (const ref of named) {
      const dot = ref.lastIndexOf('.');
      if (dot < 0) continue;
      const column = ref.slice(dot + 1);
      for (const table of tablesNamed(ref.slice(0, dot)))
        if (column === '*') whole(ref.slice(0, dot));
        else if (table.columns.some((c) => fold(c.name) === fold(column))) add(table, column);
    }
    // A table read or written with no column named (SELECT *, count(*)): all of it.
    const prefixes = new Set(named.map((ref) => fold(ref.slice(0, ref.lastIndexOf('.')))));
    for (const t of [...s.tablesRead, ...s.tablesWritten]) if (!prefixes.has(fold(t))) whole(t);
  }
  return [...touched].sort();
}
