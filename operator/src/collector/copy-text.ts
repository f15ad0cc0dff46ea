/**
 * COPY's text format: one line per row, columns separated by tabs, `\N` for NULL, and backslash,
 * tab, newline and carriage return escaped, so any value survives byte for byte.
 */
export type CopyValue = string | number | boolean | Date | readonly string[] | undefined | null;

export function copyRow(values: readonly CopyValue[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) line += '\t';
    line += copyField(values[i]);
  }
  return `${line}\n`;
}

function copyField(value: CopyValue): string {
  if (value === undefined || value === null) return '\\N';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string') return escapeText(value);
  return escapeText(arrayLiteral(value));
}

const SPECIAL = /[\\\t\n\r]/;

function escapeText(text: string): string {
  if (!SPECIAL.test(text)) return text;
  return text.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

/** A text[] literal with every element quoted, so commas, braces and NULL-looking text stay text. */
function arrayLiteral(items: readonly string[]): string {
  return `{${items.map((item) => `"${item.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
