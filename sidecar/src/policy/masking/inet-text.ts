import { ipv4Valid, ipv6Valid } from './validators.ts';

/** An inet or cidr value: 4 or 16 address bytes and the prefix length written after '/', if any. */
export interface InetValue {
  readonly bytes: Uint8Array;
  readonly prefix: number | null;
}

/** Parses PostgreSQL's inet/cidr text (`192.0.2.1`, `10.0.0.0/8`, `2001:db8::1/64`, `::ffff:1.2.3.4`). */
export function parseInet(text: string): InetValue | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefix = slash < 0 ? null : Number(text.slice(slash + 1));
  if (prefix !== null && !Number.isInteger(prefix)) return null;
  if (ipv4Valid(address, 0, address.length)) {
    return { bytes: Uint8Array.from(address.split('.').map(Number)), prefix };
  }
  if (!ipv6Valid(address, 0, address.length)) return null;
  const bytes = new Uint8Array(16);
  const [head = '', tail] = address.split('::');
  const groups = (part: string): number[] => {
    const out: number[] = [];
    for (const group of part === '' ? [] : part.split(':')) {
      if (group.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(Number.parseInt(group, 16));
      }
    }
    return out;
  };
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  all.forEach((group, i) => {
    bytes[i * 2] = group >>> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return { bytes, prefix };
}

/** Text PostgreSQL accepts for the value: dotted quad, or eight hex groups, and the prefix if any. */
export function formatInet(value: InetValue): string {
  const b = value.bytes;
  let address: string;
  if (b.length === 4) {
    address = `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  } else {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
    address = groups.join(':');
  }
  return value.prefix === null ? address : `${address}/${value.prefix}`;
}

/** Clears the bits after the prefix, as a cidr value requires. */
export function zeroHostBits(bytes: Uint8Array, prefix: number): void {
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
}
