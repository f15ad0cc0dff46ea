import { createHash } from 'node:crypto';

/** One value of a masked column, read straight from the database. */
export interface SecretValue {
  /** `table.column`: named in reports instead of the value. */
  readonly column: string;
  readonly value: string;
}

export interface Leak {
  readonly column: string;
  /** How the value showed: `clear`, `digits`, `6-character piece`...; never the value itself. */
  readonly form: string;
}

const PIECE = 6;

/**
 * Decides, outside the proxy, whether anything a client received reveals a masked value: the value
 * itself (any letter case), reversed, its digits, base64, hex, md5/sha1/sha256 hex, and for SSNs,
 * card numbers and emails any piece of six or more characters (of the value or of its digits).
 *
 * Two kinds of form are left out because they reveal nothing about one person: pieces shared by two
 * or more values (a card's issuer prefix, `@example.com`), and forms the masked identity legitimately
 * sees anyway (`visible`: what `SELECT *` returns it through the proxy, unmasked columns included).
 */
export class LeakOracle {
  private readonly forms = new Map<string, Leak>();
  private readonly lengths: number[];

  constructor(secrets: readonly SecretValue[], visible: readonly string[]) {
    const seenIn = new Map<string, Set<string>>();
    const candidates: Array<{ form: string; leak: Leak; piece: boolean }> = [];
    const add = (form: string, leak: Leak, piece = false) => {
      const lower = form.toLowerCase();
      if (lower.length < PIECE) return;
      candidates.push({ form: lower, leak, piece });
    };
    for (const { column, value } of secrets) {
      if (value.length < PIECE) continue;
      const leak = (form: string): Leak => ({ column, form });
      add(value, leak('clear'));
      add([...value].reverse().join(''), leak('reversed'));
      const digits = value.replace(/\D/g, '');
      if (digits.length >= 7) {
        add(digits, leak('digits'));
        add([...digits].reverse().join(''), leak('reversed digits'));
      }
      const bytes = Buffer.from(value);
      add(bytes.toString('base64').replace(/=+$/, ''), leak('base64'));
      add(bytes.toString('hex'), leak('hex'));
      for (const hash of ['md5', 'sha1', 'sha256'])
        add(createHash(hash).update(value).digest('hex'), leak(`${hash} hex`));
      if (identifiesByPieces(value)) {
        for (const source of [value, digits]) {
          for (let i = 0; i + PIECE <= source.length; i++) {
            const piece = source.slice(i, i + PIECE).toLowerCase();
            const owners = seenIn.get(piece) ?? new Set<string>();
            owners.add(value);
            seenIn.set(piece, owners);
            add(piece, leak(source === value ? `${PIECE}-character piece` : `${PIECE}-digit piece`), true);
          }
        }
      }
    }
    const visibleText = visible.join('\u0000').toLowerCase();
    for (const { form, leak, piece } of candidates) {
      if (piece && (seenIn.get(form)?.size ?? 0) > 1) continue;
      if (visibleText.includes(form)) continue;
      if (!this.forms.has(form)) this.forms.set(form, leak);
    }
    // Longest first: a value in clear is reported as such, not as one of its pieces.
    this.lengths = [...new Set([...this.forms.keys()].map((f) => f.length))].sort((a, b) => b - a);
  }

  /** How many forms are looked for. */
  get formCount(): number {
    return this.forms.size;
  }

  /** The first revealing form in `received`, if any. */
  find(received: readonly string[]): Leak | undefined {
    for (const text of received) {
      const lower = text.toLowerCase();
      // A number of many digits (pow(price, price)) holds a six-digit piece of anything by chance, and
      // again after the values are changed; whole values and their full digit strings still count.
      const longNumber = LONG_NUMBER.test(lower) && (lower.match(/\d/g)?.length ?? 0) > 24;
      for (const length of this.lengths) {
        for (let i = 0; i + length <= lower.length; i++) {
          const hit = this.forms.get(lower.slice(i, i + length));
          if (hit && !(longNumber && hit.form.endsWith('piece'))) return hit;
        }
      }
    }
    return undefined;
  }
}

const LONG_NUMBER = /^[-+]?\d[\d.]*(e[-+]?\d+)?$/;

/** SSNs, card numbers and emails: values where a fragment already narrows down a person. */
function identifiesByPieces(value: string): boolean {
  return /^\d{3}-\d{2}-\d{4}$/.test(value) || /^\d{13,19}$/.test(value) || /^[^@\s]+@[^@\s]+$/.test(value);
}

/**
 * Every string inside a driver's result (cells, error fields, notices); bytes as latin1, which shows
 * a value sent as raw bytes as it is (a hex rendering would turn any long binary cell into digit runs
 * that match six-digit pieces by chance).
 */
export function receivedText(value: unknown, out: string[] = []): string[] {
  if (value === null || value === undefined) return out;
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    out.push(String(value));
  else if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    const bytes = Buffer.from(value);
    out.push(bytes.toString('latin1'));
  } else if (value instanceof Date) out.push(Number.isNaN(value.getTime()) ? '' : value.toISOString());
  else if (Array.isArray(value)) for (const item of value) receivedText(item, out);
  else if (typeof value === 'object') {
    for (const item of Object.values(value as Record<string, unknown>)) receivedText(item, out);
    if (value instanceof Error) out.push(value.message);
  }
  return out;
}
