import { describeQuery } from './normalize.ts';

/**
 * A single-statement text's shape: its audit normalisation, every literal value replaced by `$n`.
 * Texts that differ only in literal values (an application's `WHERE id = 42`, pgbench) share a
 * shape, so what does not depend on literal values can be worked out once per shape. Undefined for
 * several statements, text that does not parse, and text that already holds parameters (`$1` and a
 * literal would then share a placeholder).
 */
export function statementShape(sql: string): string | undefined {
  if (/\$\d/.test(sql)) return undefined;
  const texts = describeQuery(sql);
  if (texts.length !== 1) return undefined;
  return texts[0]!.statement ?? undefined;
}
