import { Lru } from '../lru.ts';
import { assembleFacts } from './assemble-facts.ts';
import { EVERY_CLASS } from './statement-catalog.ts';
import { StatementCollector } from './statement-collector.ts';
import type { StatementFacts } from './statement-facts.ts';

export { resolveExecutes } from './assemble-facts.ts';

/*
 * Memory bound as in normalize.ts: texts longer than MAX_CACHED_CHARS are analysed every time, so
 * the cache holds at most 2 x CACHE_ENTRIES texts of up to 4096 UTF-16 chars and their facts.
 */
const CACHE_ENTRIES = 512;
const MAX_CACHED_CHARS = 4096;
const cache = new Lru<string, StatementFacts>(CACHE_ENTRIES);

const UNPARSEABLE: StatementFacts = unknownText("PostgreSQL's parser rejects the text");
const TOO_DEEP: StatementFacts = unknownText('it nests too deeply for Gatehouse to parse safely');
const PARSER_FAILED: StatementFacts = unknownText('the SQL parser failed on it');

function unknownText(detail: string): StatementFacts {
  return assembleFacts(
    [
      {
        kind: 'unknown',
        command: 'UNKNOWN',
        summary: 'a statement',
        topLevel: 0,
        via: [],
        classes: EVERY_CLASS,
        tablesRead: [],
        tablesWritten: [],
        objects: [],
        columnsRead: [],
        columnsWritten: [],
        functions: [],
        findings: [{ kind: 'unknown-statement', detail }],
      },
    ],
    { parsed: false, statementCount: 1, prepared: [], unresolvedExecutes: [], deallocated: [], cursors: [] },
  );
}

/**
 * What the SQL text of a simple-protocol Query or an extended-protocol Parse does: every statement
 * in it, nested ones included (see StatementFacts). Text the parser rejects, or that may nest too
 * deeply to parse safely (parser-nesting.ts), gives one `unknown` statement that needs every class,
 * so it fails closed. Results are cached by text and frozen.
 * `loadSqlParser()` (sql/normalize.ts) must have finished first.
 */
export function analyzeStatement(sql: string): StatementFacts {
  const cached = cache.get(sql);
  if (cached) return cached;
  const facts = analyze(sql);
  if (sql.length <= MAX_CACHED_CHARS) cache.set(sql, facts);
  return facts;
}

function analyze(sql: string): StatementFacts {
  const collector = new StatementCollector();
  const count = collector.topLevel(sql);
  if (count === 'syntax') return UNPARSEABLE;
  if (count === 'nesting') return TOO_DEEP;
  if (count === 'parser') return PARSER_FAILED;
  return collector.finish({ parsed: true, statementCount: count });
}
