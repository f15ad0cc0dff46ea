import { describeQuery, type QueryText } from './normalize.ts';

/**
 * A single-statement text's shape: its audit normalisation, every literal value replaced by `$n`.
 * Texts that differ only in literal values (an application's `WHERE id = 42`, pgbench) share a
 * shape, so what does not depend on literal values can be worked out once per shape. Undefined for
 * several statements, text that does not parse, and text that already holds parameters (`$1` and a
 * literal would then share a placeholder). `texts`: the text's audit description, if already made.
 */
export function statementShape(
  sql: string,
  texts: readonly QueryText[] = describeQuery(sql),
): string | undefined {
  if (texts.length !== 1 || /\$\d/.test(sql)) return undefined;
  return texts[0]!.statement ?? undefined;
}
