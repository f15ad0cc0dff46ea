/**
 * Rewrites the elements of a PostgreSQL array in text form (`{a,"b c",NULL}`, nested for more
 * dimensions, optionally after bounds such as `[0:1]=`). `element` gets each element (unquoted and
 * unescaped; null for NULL) and returns the new element or null. Returns null for text that is not
 * an array literal.
 */
export function mapArrayElements(
  text: string,
  element: (value: string | null) => string | null,
): string | null {
  const open = text.indexOf('{');
  if (open < 0 || (open > 0 && text[open - 1] !== '=')) return null;
  let out = text.slice(0, open);
  let depth = 0;
  let i = open;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '{') {
      depth++;
      out += c;
      i++;
    } else if (c === '}') {
      depth--;
      out += c;
      i++;
      if (depth === 0) return i === text.length ? out : null;
    } else if (c === ',' || c === ' ') {
      out += c;
      i++;
    } else if (c === '"') {
      let value = '';
      i++;
      for (; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\') i++;
        value += text[i] ?? '';
      }
      if (i >= text.length) return null;
      i++;
      out += quote(element(value));
    } else {
      let end = i;
      while (end < text.length && text[end] !== ',' && text[end] !== '}') end++;
      const raw = text.slice(i, end);
      out += quote(element(raw.toUpperCase() === 'NULL' ? null : raw));
      i = end;
    }
  }
  return null;
}

/** An element as array_out writes it: quoted when empty, NULL-like or holding special characters. */
function quote(value: string | null): string {
  if (value === null) return 'NULL';
  if (value !== '' && value.toUpperCase() !== 'NULL' && !/[{}",\\\s]/.test(value)) return value;
  return '"' + value.replace(/[\\"]/g, '\\$&') + '"';
}
