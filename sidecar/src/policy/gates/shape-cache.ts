import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import { Lru } from '../../sql/lru.ts';

/**
 * Analyses shared between texts of one shape (their audit normalisation: every literal value
 * erased), for both protocols: an application's `WHERE id = 42` then costs one analysis, not one per
 * id. Keys start with the protocol and whatever else changes how a text is read (MySQL's sql_mode).
 *
 * Memory bound: at most 2 x 8 MiB of entries as approximateBytes counts them (measured: an analysis
 * takes about 1.5 KB plus 2.5 bytes per character of its text). Shapes longer than MAX_CACHED_CHARS
 * (a bulk INSERT of many rows, whose row count makes each shape new) are analysed every time: one
 * such shape would otherwise push every other one out.
 */
const SHAPES = new Lru<string, StatementFacts>(4096, {
  budget: 8 * 1024 * 1024,
  weigh: (key) => approximateBytes(key),
});

const MAX_CACHED_CHARS = 16_384;

function approximateBytes(key: string): number {
  return 1536 + 4 * key.length;
}

/** Kinds whose facts no literal value changes (unlike UPDATE and DELETE, whose WHERE may be `'a' = 'a'`). */
const SHAPE_SAFE_KINDS: ReadonlySet<string> = new Set(['select', 'insert']);

/**
 * `analyze()`, or the analysis of an earlier text of the same key. Only facts no literal value can
 * change are shared: parsed SELECT and INSERT statements with no finding at all and no effect on the
 * session (no PREPARE, EXECUTE, DEALLOCATE or cursor), and whatever `alsoShared` adds for the protocol.
 * Everything else is analysed for its own text. `key` is undefined when the text has no shape.
 */
export function analyzeByShape<F extends StatementFacts>(
  key: string | undefined,
  analyze: () => F,
  alsoShared: (facts: F) => boolean,
): F {
  if (key === undefined) return analyze();
  // The key begins with the protocol, whose analyser alone stores under it: the type is the one stored.
  const cached = SHAPES.get(key) as F | undefined;
  if (cached) return cached;
  const facts = analyze();
  if (key.length <= MAX_CACHED_CHARS && literalIndependent(facts) && alsoShared(facts))
    SHAPES.set(key, facts);
  return facts;
}

function literalIndependent(facts: StatementFacts): boolean {
  return (
    facts.parsed &&
    facts.findings.length === 0 &&
    facts.statements.every((s) => SHAPE_SAFE_KINDS.has(s.kind)) &&
    facts.prepared.length === 0 &&
    facts.unresolvedExecutes.length === 0 &&
    facts.deallocated.length === 0 &&
    facts.cursors.length === 0
  );
}
