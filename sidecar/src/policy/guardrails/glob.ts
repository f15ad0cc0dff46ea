/** `*` (any run of characters) and `?` (one character); everything else literal, case-sensitive. */
export function globMatches(pattern: string, value: string): boolean {
  return globRegExp(pattern).test(value);
}

const compiled = new Map<string, RegExp>();

function globRegExp(pattern: string): RegExp {
  let regex = compiled.get(pattern);
  if (!regex) {
    const body = pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
      .join('');
    regex = new RegExp(`^${body}$`, 's');
    compiled.set(pattern, regex);
  }
  return regex;
}

/**
 * Whether a table name as the statement wrote it (`customers`, `public.customers`) matches a pattern
 * (`customers`, `public.*`, `*.customers`). A pattern without a schema matches the table in any
 * schema; an unqualified table matches any schema pattern, as search_path may resolve it anywhere.
 */
export function tableMatches(pattern: string, table: string): boolean {
  const [patternSchema, patternName] = splitTableName(pattern);
  const [tableSchema, tableName] = splitTableName(table);
  if (!globMatches(patternName, tableName)) return false;
  return patternSchema === undefined || tableSchema === undefined || globMatches(patternSchema, tableSchema);
}

/** `[schema, table]` of `table`, `schema.table` or `catalog.schema.table`; no schema when unqualified. */
export function splitTableName(name: string): [string | undefined, string] {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return [undefined, name];
  const schema = name.slice(0, dot);
  // catalog.schema.table: the schema is the part before the last dot.
  const schemaDot = schema.lastIndexOf('.');
  return [schemaDot < 0 ? schema : schema.slice(schemaDot + 1), name.slice(dot + 1)];
}
