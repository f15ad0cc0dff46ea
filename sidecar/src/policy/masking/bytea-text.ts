/** The bytes of a bytea in text form: hex (`\x6869`, the default bytea_output) or escape (`hi\000`). */
export function parseByteaText(text: string): Uint8Array | null {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
    return Buffer.from(hex, 'hex');
  }
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 92) {
      // bytea_output = escape writes every byte outside 32..126 as an octal escape.
      if (c > 126) return null;
      bytes.push(c);
    } else if (text[i + 1] === '\\') {
      bytes.push(92);
      i++;
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      return null;
    }
  }
  return Uint8Array.from(bytes);
}

export function formatByteaHex(bytes: Uint8Array): string {
  return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
