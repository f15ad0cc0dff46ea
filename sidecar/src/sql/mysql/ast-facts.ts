import { asArray, field, identName, isObject, nameParts, objectName, variant } from './ast.ts';
import { functionName } from './effective-where.ts';

/** What a parsed statement reads, writes and calls, as far as its text shows. */
export interface AstFacts {
  readonly tablesRead: string[];
  readonly tablesWritten: string[];
  readonly columnsRead: string[];
  readonly columnsWritten: string[];
  readonly functions: string[];
  /** Table aliases and names, lower-cased, to the table they stand for. */
  readonly aliases: Map<string, string>;
}

export function emptyAstFacts(): AstFacts {
  return {
    tablesRead: [],
    tablesWritten: [],
    columnsRead: [],
    columnsWritten: [],
    functions: [],
    aliases: new Map(),
  };
}

/** Reads relations, functions and columns everywhere in `node` into `facts`. */
export function collectReads(node: unknown, facts: AstFacts): void {
  const ctes = new Set<string>();
  collectCtes(node, ctes);
  walk(node, facts, ctes);
}

function collectCtes(node: unknown, ctes: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectCtes(item, ctes);
    return;
  }
  if (!isObject(node)) return;
  for (const cte of asArray(field(node['with'], 'cte_tables'))) {
    const name = identName(field(field(cte, 'alias'), 'name'));
    if (name) ctes.add(name.toLowerCase());
  }
  for (const [key, value] of Object.entries(node)) if (key !== 'span') collectCtes(value, ctes);
}

function walk(node: unknown, facts: AstFacts, ctes: ReadonlySet<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, facts, ctes);
    return;
  }
  if (!isObject(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'span' || key === 'alias' || key === 'data_type') continue;
    if (key === 'Table' && isObject(value) && Array.isArray(value['name'])) {
      const name = objectName(value['name']);
      if (!ctes.has(name.toLowerCase())) addOnce(facts.tablesRead, name);
      const alias = identName(field(value['alias'], 'name'));
      facts.aliases.set((alias ?? name).toLowerCase(), name);
      const last = nameParts(value['name']).pop();
      if (!alias && last) facts.aliases.set(last.toLowerCase(), name);
      walk(value['args'], facts, ctes);
      continue;
    }
    if (key === 'Function' && isObject(value)) {
      const name = functionName(value);
      if (name) addOnce(facts.functions, qualifiedFunction(value) ?? name);
      walk(value['args'], facts, ctes);
      walk(value['over'], facts, ctes);
      walk(value['filter'], facts, ctes);
      continue;
    }
    if (key === 'Identifier' && isObject(value) && typeof value['value'] === 'string') {
      if (!value['value'].startsWith('@')) pendingColumns(facts).push([null, value['value']]);
      continue;
    }
    if (key === 'CompoundIdentifier') {
      const parts = asArray(value).map(identName);
      if (parts.length >= 2 && parts.every((p) => p !== undefined))
        pendingColumns(facts).push([parts.slice(0, -1).join('.'), parts[parts.length - 1]!]);
      continue;
    }
    walk(value, facts, ctes);
  }
}

function qualifiedFunction(body: unknown): string | undefined {
  const parts = nameParts(field(body, 'name'));
  return parts.length > 1 ? parts.join('.').toLowerCase() : undefined;
}

const PENDING = new WeakMap<AstFacts, [string | null, string][]>();

function pendingColumns(facts: AstFacts): [string | null, string][] {
  let list = PENDING.get(facts);
  if (!list) {
    list = [];
    PENDING.set(facts, list);
  }
  return list;
}

/**
 * Resolves the column references seen to `table.column` where the table is plain to see: qualified
 * by a known alias, or unqualified with one table in the statement.
 */
export function finishColumns(facts: AstFacts): void {
  const only = new Set(facts.aliases.values()).size === 1 ? [...facts.aliases.values()][0] : undefined;
  for (const [qualifier, column] of pendingColumns(facts)) {
    const table = qualifier === null ? only : facts.aliases.get(qualifier.toLowerCase());
    if (table) addOnce(facts.columnsRead, `${table}.${column.toLowerCase()}`);
  }
  PENDING.delete(facts);
}

export function addOnce(list: string[], item: string): void {
  if (!list.includes(item)) list.push(item);
}

/** The tables of a TableWithJoins (relation and joined relations), as [name, alias] pairs. */
export function tablesOf(twj: unknown): { name: string; names: Set<string> }[] {
  const out: { name: string; names: Set<string> }[] = [];
  const add = (factor: unknown) => {
    const v = variant(factor);
    if (!v) return;
    if (v[0] === 'Table') {
      const name = objectName(field(v[1], 'name'));
      const alias = identName(field(field(v[1], 'alias'), 'name'));
      const names = new Set<string>();
      if (alias) names.add(alias.toLowerCase());
      else {
        names.add(name.toLowerCase());
        const last = nameParts(field(v[1], 'name')).pop();
        if (last) names.add(last.toLowerCase());
      }
      out.push({ name, names });
    } else if (v[0] === 'NestedJoin') {
      out.push(...tablesOf(field(v[1], 'table_with_joins')));
    }
  };
  add(field(twj, 'relation'));
  for (const join of asArray(field(twj, 'joins'))) add(field(join, 'relation'));
  return out;
}

/** Join conditions (ON) of a TableWithJoins. */
export function joinConditions(twj: unknown): unknown[] {
  const out: unknown[] = [];
  for (const join of asArray(field(twj, 'joins'))) {
    const op = variant(field(join, 'join_operator'));
    const on = field(op?.[1], 'On');
    if (on !== undefined) out.push(on);
  }
  return out;
}
