import type { MysqlAst } from './parser.ts';

export function isObject(value: unknown): value is MysqlAst {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The single variant of an enum node: `{Select: {...}}` → ['Select', {...}]. */
export function variant(node: unknown): [string, unknown] | undefined {
  if (typeof node === 'string') return [node, undefined];
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  return keys.length === 1 ? [keys[0]!, node[keys[0]!]] : undefined;
}

export function field(node: unknown, name: string): unknown {
  return isObject(node) ? node[name] : undefined;
}

/** An identifier's name: Ident nodes are `{value, quote_style?, span}`. */
export function identName(node: unknown): string | undefined {
  const value = field(node, 'value');
  return typeof value === 'string' ? value : undefined;
}

/** The parts of an ObjectName: arrays of `{Identifier: Ident}` parts (or plain Idents in some places). */
export function nameParts(node: unknown): string[] {
  const parts: string[] = [];
  for (const part of asArray(node)) {
    const ident = field(part, 'Identifier') ?? part;
    const name = identName(ident);
    if (name !== undefined) parts.push(name);
  }
  return parts;
}

/** `db.table` or `table` as written. */
export function objectName(node: unknown): string {
  return nameParts(node).join('.');
}
