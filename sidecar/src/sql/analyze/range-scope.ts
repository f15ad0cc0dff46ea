import { type AstNode, isObject, list, names, rangeVarName, str, unwrap } from './ast.ts';

/** One entry of a FROM clause (or a DML target), as column references see it. */
export interface RangeItem {
  /** The name column references qualify it with: its alias, else its relation name. */
  readonly name: string;
  /** A plain table or view: its relation name and `schema.table` as written. */
  readonly relname?: string;
  readonly table?: string;
  /**
   * True when its columns cannot be tied to a table column by name: a subquery, a function, a CTE,
   * VALUES, a join alias, or a table whose alias renames its columns (`customers AS c(i, n)`).
   */
  readonly opaque: boolean;
}

/** The FROM items and CTE names visible at one query level; `parent` is the enclosing level. */
export interface RangeScope {
  readonly parent?: RangeScope;
  readonly items: readonly RangeItem[];
  readonly ctes: ReadonlySet<string>;
}

export const EMPTY_SCOPE: RangeScope = Object.freeze({ items: [], ctes: new Set<string>() });

export function isCte(rangeVar: AstNode, scope: RangeScope | undefined): boolean {
  if (rangeVar['schemaname'] !== undefined) return false;
  const name = str(rangeVar['relname']);
  for (let s = scope; s; s = s.parent) if (name !== undefined && s.ctes.has(name)) return true;
  return false;
}

export function rangeVarItem(rangeVar: AstNode, scope: RangeScope | undefined): RangeItem {
  const alias = isObject(rangeVar['alias']) ? rangeVar['alias'] : undefined;
  const relname = str(rangeVar['relname']) ?? '';
  const name = str(alias?.['aliasname']) ?? relname;
  if (isCte(rangeVar, scope)) return { name, opaque: true };
  return {
    name,
    relname,
    table: rangeVarName(rangeVar),
    opaque: list(alias?.['colnames']).length > 0,
  };
}

/** The items of a FROM clause (or USING list), looking into joins. */
export function rangeItems(fromClause: unknown, scope: RangeScope | undefined): RangeItem[] {
  const items: RangeItem[] = [];
  const visit = (value: unknown): void => {
    const wrapped = unwrap(value);
    if (!wrapped) return;
    const { type, node } = wrapped;
    if (type === 'RangeVar') items.push(rangeVarItem(node, scope));
    else if (type === 'JoinExpr') {
      visit(node['larg']);
      visit(node['rarg']);
      const alias = aliasName(node['alias']);
      if (alias) items.push({ name: alias, opaque: true });
    } else if (type === 'RangeTableSample') visit(node['relation']);
    else {
      // RangeSubselect, RangeFunction, RangeTableFunc, JSON_TABLE...: columns of its own making.
      items.push({ name: aliasName(node['alias']) ?? '', opaque: true });
    }
  };
  for (const item of list(fromClause)) visit(item);
  return items;
}

function aliasName(alias: unknown): string | undefined {
  return isObject(alias) ? str(alias['aliasname']) : undefined;
}

/** CTE names of a WITH clause. */
export function cteNames(withClause: unknown): string[] {
  if (!isObject(withClause)) return [];
  const out: string[] = [];
  for (const cte of list(withClause['ctes'])) {
    const wrapped = unwrap(cte);
    const name = wrapped ? str(wrapped.node['ctename']) : undefined;
    if (name) out.push(name);
  }
  return out;
}

/** Where a column reference points, as far as names tell. */
export interface ColumnTarget {
  /** The column name, or `*` for a whole row (`t.*`, or a bare table name used as a value). */
  readonly column: string;
  /** The FROM item it belongs to, when that is certain. */
  readonly item?: RangeItem;
  /**
   * `'?'` when it may belong to any item in scope (unqualified, several candidates), `'*'` when it
   * may be any column of anything (an opaque item), else the relation name of its table.
   */
  readonly relname: string;
}

/** Resolves the fields of a ColumnRef in `scope`. */
export function resolveColumn(fields: unknown, scope: RangeScope): ColumnTarget {
  const items = list(fields);
  const last = unwrap(items[items.length - 1]);
  const column = last?.type === 'String' ? String(last.node['sval'] ?? '') : '*';
  const qualifiers = names(items.slice(0, -1)) ?? [];
  if (qualifiers.length === 0) return resolveUnqualified(column, scope);
  const qualifier = qualifiers[qualifiers.length - 1]!;
  const schema = qualifiers.length > 1 ? qualifiers[qualifiers.length - 2] : undefined;
  for (let s: RangeScope | undefined = scope; s; s = s.parent) {
    for (const item of s.items) {
      if (item.name !== qualifier) continue;
      if (schema !== undefined && item.table !== undefined && !item.table.endsWith(`${schema}.${qualifier}`))
        continue;
      return item.opaque || item.relname === undefined
        ? { column, item, relname: '*' }
        : { column, item, relname: item.relname };
    }
  }
  return { column, relname: '*' };
}

function resolveUnqualified(column: string, scope: RangeScope): ColumnTarget {
  // PostgreSQL binds an unqualified name to the nearest level that has such a column, which only the
  // catalog knows: so the name is tied to an item only when there is a single candidate in the whole
  // chain. An unqualified name equal to an item's name may also be that whole row (`SELECT c FROM
  // customers c`).
  const candidates: RangeItem[] = [];
  for (let s: RangeScope | undefined = scope; s; s = s.parent) {
    const rowItem = s.items.find((item) => item.name === column);
    if (rowItem)
      return { column: '*', item: rowItem, relname: rowItem.opaque ? '*' : (rowItem.relname ?? '*') };
    candidates.push(...s.items);
  }
  if (candidates.some((item) => item.opaque)) return { column, relname: '*' };
  const only = candidates.length === 1 ? candidates[0] : undefined;
  if (only?.relname !== undefined) return { column, item: only, relname: only.relname };
  return { column, relname: '?' };
}
