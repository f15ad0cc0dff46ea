import type { Catalog } from './catalog.ts';
import type { SessionState } from './session.ts';
import { CLEAN, columnKey, equalityUse, type Trace, tableKey, union } from './trace.ts';
import type { CopyOut, SessionEffect, TableRef, WriteTarget } from './types.ts';

/** What the analysis of one statement accumulates besides the lineage of its output columns. */
export interface Context {
  readonly catalog: Catalog;
  readonly session: SessionState;
  readonly maxViewDepth: number;
  viewDepth: number;
  /** Nesting of expressions and queries, bounded so a deeply nested text cannot overflow the stack. */
  depth: number;
  /** Above zero inside a catalog view: its own WHERE is the view owner's, not the client's predicate. */
  hidePredicates: number;
  readonly reads: Map<string, TableRef>;
  readsUnknown: boolean;
  predicates: Trace;
  /** Values compared only for equality with each other (see recordEquality), one trace per group. */
  readonly equalities: Trace[];
  /** Predicates of the query level being analysed, for EXISTS and IN, whose value is their predicate. */
  levelPredicates: Trace;
  readonly writes: Map<string, { target: WriteTarget; trace: Trace }>;
  readonly effects: SessionEffect[];
  /** The result depends on session state beyond name resolution (cursors, prepared statements, settings). */
  usedSession: boolean;
  /** Values this statement stores in settings (null key: a computed setting name). */
  readonly settingsWritten: Map<string | null, Trace>;
  settingsRead: boolean;
  /** Settings written by this statement, visible to its own current_setting calls on the second pass. */
  readonly pendingSettings: ReadonlyMap<string | null, Trace>;
  /** Set by a COPY ... TO STDOUT. */
  copyOut?: CopyOut;
}

export const MAX_DEPTH = 400;

export function createContext(
  catalog: Catalog,
  session: SessionState,
  maxViewDepth: number,
  pendingSettings: ReadonlyMap<string | null, Trace> = new Map(),
): Context {
  return {
    catalog,
    session,
    maxViewDepth,
    viewDepth: 0,
    depth: 0,
    hidePredicates: 0,
    reads: new Map(),
    readsUnknown: false,
    predicates: CLEAN,
    equalities: [],
    levelPredicates: CLEAN,
    writes: new Map(),
    effects: [],
    usedSession: false,
    settingsWritten: new Map(),
    settingsRead: false,
    pendingSettings,
  };
}

export function recordPredicate(ctx: Context, trace: Trace): void {
  if (ctx.hidePredicates > 0) return;
  ctx.levelPredicates = union(ctx.levelPredicates, trace);
  ctx.predicates = union(ctx.predicates, trace);
}

/**
 * Values the statement only tests for equality with each other: a GROUP BY or DISTINCT ON key, the
 * columns of SELECT DISTINCT and UNION, the two sides of `a.x = b.y` in a JOIN, a DISTINCT aggregate's
 * argument. Each trace is one group whose members are compared with each other. Only values passed
 * through unchanged can be told apart this way; anything computed from them is a plain predicate.
 */
export function recordEquality(ctx: Context, group: Trace): void {
  if (ctx.hidePredicates > 0) return;
  const use = equalityUse(group);
  if (use === 'condition') recordPredicate(ctx, group);
  else if (use === 'group') ctx.equalities.push(group);
}

export function recordRead(ctx: Context, table: TableRef): void {
  ctx.reads.set(tableKey(table), table);
}

export function recordWrite(ctx: Context, target: WriteTarget, trace: Trace): void {
  const key = target.kind === 'column' ? 'c' + columnKey(target.column) : 'f' + target.name;
  const seen = ctx.writes.get(key);
  ctx.writes.set(key, { target, trace: seen ? union(seen.trace, trace) : trace });
}

/** Something ran whose effects we cannot see: it may read anything and open portals under any name. */
export function recordUnknownCode(ctx: Context): void {
  ctx.readsUnknown = true;
  if (!ctx.effects.some((effect) => effect.kind === 'forget-cursors'))
    ctx.effects.push({ kind: 'forget-cursors' });
}

/** Runs `analyse` as one query level: returns its result and the predicates of that level. */
export function withLevel<T>(ctx: Context, analyse: () => T): { result: T; predicates: Trace } {
  const outer = ctx.levelPredicates;
  ctx.levelPredicates = CLEAN;
  try {
    const result = analyse();
    const predicates = ctx.levelPredicates;
    return { result, predicates };
  } finally {
    ctx.levelPredicates = union(outer, ctx.levelPredicates);
  }
}
