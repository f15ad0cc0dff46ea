import { qualifiedName } from './catalog.ts';
import { parseCached } from './parse-cached.ts';
import { fromLineage, type Trace, toLineage, union } from './trace.ts';
import type {
  CatalogViewEntry,
  Lineage,
  PreparedStatement,
  SessionEffect,
  StatementLineage,
} from './types.ts';

export interface SessionCursor {
  readonly holdable: boolean;
  readonly lineage: StatementLineage;
}

/**
 * What one client session has done that changes how later statements resolve. Immutable:
 * `applySessionEffects` returns a new state.
 *
 * Views and search paths are only ever added: a CREATE VIEW or SET search_path can be rolled back,
 * and a DROP VIEW can be too, without the proxy seeing which, so every definition and path the
 * session has named is kept and lineage takes the union of all of them.
 */
export interface SessionState {
  /** By `qualifiedName`; every definition seen for that name. Temporary views live in schema `pg_temp`. */
  readonly views: ReadonlyMap<string, readonly CatalogViewEntry[]>;
  /** Every search_path set in the session, in addition to the catalog's; null entries are unknown paths. */
  readonly searchPaths: readonly (readonly string[] | null)[];
  readonly cursors: ReadonlyMap<string, SessionCursor>;
  readonly prepared: ReadonlyMap<string, PreparedStatement>;
  /** Lineage of values stored in settings by set_config, by setting name. */
  readonly settings: ReadonlyMap<string, Lineage>;
  /** Lineage of values stored in settings whose name was computed: any setting may hold them. */
  readonly anySetting: Lineage | null;
  /** Routine and operator names created in the session: built-ins of these names are not trusted. */
  readonly routines: ReadonlySet<string>;
}

export const EMPTY_SESSION: SessionState = Object.freeze({
  views: new Map(),
  searchPaths: Object.freeze([]),
  cursors: new Map(),
  prepared: new Map(),
  settings: new Map(),
  anySetting: null,
  routines: new Set<string>(),
});

export function applySessionEffects(session: SessionState, effects: readonly SessionEffect[]): SessionState {
  let next = session;
  for (const effect of effects) next = applyOne(next, effect);
  return next;
}

function applyOne(session: SessionState, effect: SessionEffect): SessionState {
  switch (effect.kind) {
    case 'view': {
      const key = qualifiedName(effect.view.schema, effect.view.name);
      const views = new Map(session.views);
      views.set(key, [...(views.get(key) ?? []), effect.view]);
      return { ...session, views };
    }
    case 'search-path': {
      const path = effect.path;
      const known = session.searchPaths.some((seen) =>
        seen === null || path === null ? seen === path : sameList(seen, path),
      );
      return known ? session : { ...session, searchPaths: [...session.searchPaths, path] };
    }
    case 'cursor': {
      const cursors = new Map(session.cursors);
      cursors.set(effect.name, { holdable: effect.holdable, lineage: effect.lineage });
      return { ...session, cursors };
    }
    case 'close-cursor': {
      if (effect.name === null) return { ...session, cursors: new Map() };
      const cursors = new Map(session.cursors);
      cursors.delete(effect.name);
      return { ...session, cursors };
    }
    case 'forget-cursors':
      return session.cursors.size === 0 ? session : { ...session, cursors: new Map() };
    case 'transaction-end': {
      const cursors = new Map([...session.cursors].filter(([, cursor]) => cursor.holdable));
      return { ...session, cursors };
    }
    case 'prepare': {
      const prepared = new Map(session.prepared);
      prepared.set(effect.name, effect.statement);
      return { ...session, prepared };
    }
    case 'deallocate': {
      if (effect.name === null) return { ...session, prepared: new Map() };
      const prepared = new Map(session.prepared);
      prepared.delete(effect.name);
      return { ...session, prepared };
    }
    case 'setting': {
      // A setting is never cleaned again: a later SET of a literal can be rolled back.
      if (effect.name === null)
        return { ...session, anySetting: merge(session.anySetting, fromLineage(effect.lineage)) };
      const settings = new Map(session.settings);
      settings.set(effect.name, merge(settings.get(effect.name) ?? null, fromLineage(effect.lineage)));
      return { ...session, settings };
    }
    case 'routine': {
      if (session.routines.has(effect.name)) return session;
      return { ...session, routines: new Set([...session.routines, effect.name]) };
    }
  }
}

function merge(seen: Lineage | null, added: Trace): Lineage {
  return toLineage(seen === null ? added : union(fromLineage(seen), added));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

/**
 * A statement prepared through the extended protocol (a named Parse message), which SQL EXECUTE can
 * run too: record it with a `prepare` effect. Undefined when the text is not one statement.
 */
export function preparedStatement(sql: string): PreparedStatement | undefined {
  const stmts = parseCached(sql);
  const node = stmts?.length === 1 ? stmts[0]!.stmt : undefined;
  return node ? { node } : undefined;
}
