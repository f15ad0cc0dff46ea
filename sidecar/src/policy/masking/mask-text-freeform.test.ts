import { describe, expect, it } from 'vitest';
import { maskTextFreeform } from './mask-text-freeform.ts';
import { createMaskingKey } from './masking-key.ts';

const key = createMaskingKey(Buffer.alloc(32, 3));
const CUSTOMERS = [
  {
    id: 1,
    name: 'Alice Smith',
    email: 'alice@example.com',
    ssn: 123456789,
    phone: '+1-555-0100',
    card: '4111111111111111',
    notes: 'vip',
  },
  {
    id: 2,
    name: 'Bob Jones',
    email: 'bob@example.com',
    ssn: 987654321,
    phone: '+1-555-0199',
    card: '5500000000000004',
    notes: 'test',
  },
];

describe('maskTextFreeform', () => {
  it('returns text without findings as it is', () => {
    const text = 'relation "orders" does not exist';
    expect(maskTextFreeform(text)).toBe(text);
  });

  it.each([
    ['redact', 'Call **** or **** about card ****, ref ****.'],
    ['partial', 'Call a***@example.com or +*-***-**00 about card ************1111, ref ***-**-6789.'],
  ] as const)('masks every finding in place (%s)', (method, expected) => {
    const text = 'Call alice@example.com or +1-555-0100 about card 4111111111111111, ref 123-45-6789.';
    expect(maskTextFreeform(text, { method, key })).toBe(expected);
  });

  it('keeps JSON valid under every method, numbers staying numbers', () => {
    const text = JSON.stringify(CUSTOMERS);
    for (const method of ['redact', 'partial', 'hash', 'tokenize', 'nullify'] as const) {
      const masked = maskTextFreeform(text, { method, key });
      const parsed = JSON.parse(masked) as typeof CUSTOMERS;
      expect(parsed.map((c) => c.id)).toEqual([1, 2]);
      expect(parsed.map((c) => c.notes)).toEqual(['vip', 'test']);
      for (const [i, customer] of parsed.entries()) {
        expect(typeof customer.ssn).toBe('number');
        for (const field of ['name', 'email', 'ssn', 'phone', 'card'] as const) {
          expect(String(customer[field])).not.toBe(String(CUSTOMERS[i]![field]));
        }
      }
    }
  });

  it('tokenizes consistently with column masking, so masked values still match across channels', () => {
    const a = maskTextFreeform('owner: alice@example.com', { method: 'tokenize', key });
    const b = maskTextFreeform('{"email": "alice@example.com"}', { method: 'tokenize', key });
    const token = a.slice('owner: '.length);
    expect(token).toMatch(/^[a-z]{5}@[a-z]{7}\.com$/);
    expect(b).toBe(`{"email": "${token}"}`);
  });

  it('replaces encoded tokens whole: redacted, or tokenized within their alphabet', () => {
    const base64 = Buffer.from('123-45-6789').toString('base64');
    expect(maskTextFreeform(`ref ${base64}`)).toBe('ref ****');
    const tokenized = maskTextFreeform(`ref ${base64}`, { method: 'tokenize', key }).slice(4);
    expect(tokenized).toHaveLength(base64.length);
    expect(tokenized).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(tokenized).not.toBe(base64);
    const hex = `\\x${Buffer.from('alice@example.com').toString('hex')}`;
    expect(maskTextFreeform(hex, { method: 'tokenize', key })).toMatch(/^\\x[0-9a-f]{34}$/);
  });

  it('needs a key only for hash and tokenize', () => {
    expect(() => maskTextFreeform('alice@example.com', { method: 'tokenize' })).toThrow(
      /needs a masking key/,
    );
    expect(() => maskTextFreeform('alice@example.com', { method: 'hash' })).toThrow(/needs a masking key/);
    expect(maskTextFreeform('alice@example.com', { method: 'partial' })).toBe('a***@example.com');
  });
});
