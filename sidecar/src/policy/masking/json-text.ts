/**
 * Rewrites the leaves of JSON text (PostgreSQL's json or jsonb output) and keeps its structure and
 * keys. `leaf` gets each string (decoded) or number (as written) with the key of the member it sits
 * in (for array elements, the key of the array), and returns the new string or number text, or null
 * for a JSON null. Strings come back re-encoded, so the result stays valid JSON; numbers must be
 * returned as valid JSON numbers. Returns null for text that is not JSON.
 */
export function mapJsonLeaves(
  text: string,
  leaf: (value: string, key: string | null, isNumber: boolean) => string | null,
): string | null {
  let out = '';
  // One entry per open container.
  const isObject: boolean[] = [];
  const ownerKey: (string | null)[] = [];
  const memberKey: (string | null)[] = [];
  const expectKey: boolean[] = [];
  const keyHere = (): string | null => {
    const top = isObject.length - 1;
    if (top < 0) return null;
    return isObject[top] ? memberKey[top]! : ownerKey[top]!;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const top = isObject.length - 1;
    if (c === '{' || c === '[') {
      ownerKey.push(keyHere());
      isObject.push(c === '{');
      memberKey.push(null);
      expectKey.push(c === '{');
      out += c;
      i++;
    } else if (c === '}' || c === ']') {
      if (top < 0 || isObject[top] !== (c === '}')) return null;
      isObject.pop();
      ownerKey.pop();
      memberKey.pop();
      expectKey.pop();
      out += c;
      i++;
    } else if (c === ',') {
      if (top >= 0 && isObject[top]) expectKey[top] = true;
      out += c;
      i++;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return null;
      const raw = text.slice(i, end);
      if (top >= 0 && expectKey[top]) {
        memberKey[top] = JSON.parse(raw) as string;
        expectKey[top] = false;
        out += raw;
      } else {
        const masked = leaf(JSON.parse(raw) as string, keyHere(), false);
        out += masked === null ? 'null' : JSON.stringify(masked);
      }
      i = end;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      const masked = leaf(text.slice(i, end), keyHere(), true);
      out += masked === null ? 'null' : masked;
      i = end;
    } else {
      out += c;
      i++;
    }
  }
  return isObject.length === 0 ? out : null;
}

function isNumberChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) || code === 46 || code === 101 || code === 69 || code === 43 || code === 45
  );
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92) i++;
    else if (c === 34) return i + 1;
  }
  return -1;
}
