/**
 * Generated statements are kept as trees rather than strings, so that a statement that leaks can be
 * shrunk by dropping clauses and replacing expressions by their parts (minimize-statement.ts), and
 * every shrunk candidate is still a statement the same generator could have written.
 */
export interface SqlNode {
  /** `expr` nodes may be replaced by a descendant expression; `clause` nodes marked optional may be dropped. */
  readonly kind: 'expr' | 'clause' | 'query';
  readonly parts: readonly SqlPart[];
  readonly optional?: boolean;
}
export type SqlPart = string | SqlNode;

export const expr = (...parts: SqlPart[]): SqlNode => ({ kind: 'expr', parts });
export const clause = (...parts: SqlPart[]): SqlNode => ({ kind: 'clause', parts });
/** A clause the statement stays meaningful without (WHERE, ORDER BY, DISTINCT, a join...). */
export const optionalClause = (...parts: SqlPart[]): SqlNode => ({ kind: 'clause', parts, optional: true });
export const query = (...parts: SqlPart[]): SqlNode => ({ kind: 'query', parts });

export function render(node: SqlPart): string {
  return typeof node === 'string' ? node : node.parts.map(render).join('');
}

/** Comma-separated parts, for argument and column lists. */
export function list(items: readonly SqlPart[], separator = ', '): SqlPart[] {
  return items.flatMap((item, i) => (i === 0 ? [item] : [separator, item]));
}

/** Number of nodes: the size a minimiser makes smaller. */
export function size(node: SqlPart): number {
  return typeof node === 'string' ? 0 : 1 + node.parts.reduce((n, p) => n + size(p), 0);
}
