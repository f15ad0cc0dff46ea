import { parseSync, type RawStmt, SqlError } from 'libpg-query';
import { mayNestTooDeeply } from './parser-nesting.ts';

/** Why a text has no parse tree. */
export type ParseFailure = 'nesting' | 'syntax' | 'parser';

/*
 * Guardrail analysis and masking lineage read the same statement one after the other; the most
 * recent tree is kept so that the text is parsed once. Trees are never modified by their readers.
 */
let lastText: string | undefined;
let lastResult: readonly RawStmt[] | ParseFailure = [];

/** The statements of a text, or why it cannot be parsed. Needs `loadSqlParser()` to have finished. */
export function parseTree(sql: string): readonly RawStmt[] | ParseFailure {
  if (sql === lastText) return lastResult;
  const result = parseUncached(sql);
  lastText = sql;
  lastResult = result;
  return result;
}

function parseUncached(sql: string): readonly RawStmt[] | ParseFailure {
  if (mayNestTooDeeply(sql)) return 'nesting';
  if (sql === '') return [];
  try {
    return parseSync(sql).stmts ?? [];
  } catch (error) {
    if (error instanceof SqlError) return 'syntax';
    // The WebAssembly stack overflowed after all: parser-nesting.ts underestimated.
    if (error instanceof RangeError) return 'nesting';
    // Not loaded yet: a programming error, not a property of the text.
    if (error instanceof Error && /not initialized/.test(error.message)) throw error;
    // Anything else (a WebAssembly trap once the module is corrupt): fail closed.
    return 'parser';
  }
}
