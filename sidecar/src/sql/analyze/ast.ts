/**
 * Small readers over libpg-query's JSON parse tree. Fields typed as a generic Node hold a wrapper
 * (`{"RangeVar": {...}}`); fields typed as one node type hold the bare fields (`relation: {...}`).
 */

export type AstNode = Record<string, unknown>;

export interface Wrapped {
  readonly type: string;
  readonly node: AstNode;
}

export function isObject(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{"Type": {...}}` → {type, node}; anything else → undefined. */
export function unwrap(value: unknown): Wrapped | undefined {
  if (!isObject(value)) return undefined;
  let type: string | undefined;
  for (const key in value) {
    if (type !== undefined) return undefined;
    type = key;
  }
  if (type === undefined) return undefined;
  const first = type.charCodeAt(0);
  if (first < 65 || first > 90) return undefined;
  const node = value[type];
  return isObject(node) ? { type, node } : undefined;
}

/** The fields of a wrapped node of `type`, or undefined. */
export function nodeOf(value: unknown, type: string): AstNode | undefined {
  const wrapped = unwrap(value);
  return wrapped?.type === type ? wrapped.node : undefined;
}

export function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The `sval`s of a list of String nodes (qualified names), or undefined if any item is not a String. */
export function names(value: unknown): string[] | undefined {
  const items = list(value);
  const out: string[] = [];
  for (const item of items) {
    const s = nodeOf(item, 'String');
    if (!s) return undefined;
    out.push(String(s['sval'] ?? ''));
  }
  return out;
}

/** The string of an A_Const string literal (possibly under casts), or undefined. */
export function stringConstant(value: unknown): string | undefined {
  let wrapped = unwrap(value);
  while (wrapped?.type === 'TypeCast') wrapped = unwrap(wrapped.node['arg']);
  if (wrapped?.type !== 'A_Const') return undefined;
  const sval = wrapped.node['sval'];
  return isObject(sval) ? String(sval['sval'] ?? '') : undefined;
}

/** `schema.table` as written (catalog too when given), from the fields of a RangeVar. */
export function rangeVarName(rangeVar: AstNode): string {
  const parts = [rangeVar['catalogname'], rangeVar['schemaname'], rangeVar['relname']].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  );
  return parts.join('.');
}

/** PostgreSQL's spelling of an ObjectType (`OBJECT_MATVIEW` → `MATERIALIZED VIEW`). */
export function objectTypeName(objectType: unknown): string {
  const raw = typeof objectType === 'string' ? objectType.replace(/^OBJECT_/, '') : 'OBJECT';
  return OBJECT_TYPE_NAMES[raw] ?? raw.replaceAll('_', ' ');
}

const OBJECT_TYPE_NAMES: Record<string, string> = {
  MATVIEW: 'MATERIALIZED VIEW',
  FDW: 'FOREIGN DATA WRAPPER',
  FOREIGN_SERVER: 'SERVER',
  STATISTIC_EXT: 'STATISTICS',
  TABCONSTRAINT: 'CONSTRAINT',
  DOMCONSTRAINT: 'CONSTRAINT',
  TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  TSPARSER: 'TEXT SEARCH PARSER',
  TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OPCLASS: 'OPERATOR CLASS',
  OPFAMILY: 'OPERATOR FAMILY',
  LARGEOBJECT: 'LARGE OBJECT',
  DEFACL: 'DEFAULT PRIVILEGES',
  PARAMETER_ACL: 'PARAMETER',
};
