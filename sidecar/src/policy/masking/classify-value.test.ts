import { describe, expect, it } from 'vitest';
import { classifyValue } from './classify-value.ts';
import type { PiiKind } from './pii-kind.ts';

describe('classifyValue', () => {
  it.each<[string, PiiKind]>([
    ['alice@example.com', 'email'],
    [' 123-45-6789 ', 'ssn'],
    ['+1-555-0100', 'phone'],
    ['4111 1111 1111 1111', 'card'],
    ['GB82WEST12345698765432', 'iban'],
    ['192.168.1.20', 'ip'],
    ['Alice Smith', 'person-name'],
    ['1 Main St', 'street-address'],
    ['AKIAIOSFODNN7EXAMPLE', 'secret'],
  ])('%j is %s without a hint', (value, kind) => {
    expect(classifyValue(value)).toBe(kind);
  });

  it.each([
    '123456789',
    '1980-05-17',
    'Zyx',
    'vip',
    '10.5',
    '',
    'call alice@example.com tomorrow', // contains an email, but is not one
  ])('%j is nothing on its own', (value) => {
    expect(classifyValue(value)).toBeNull();
  });

  it.each<[string, PiiKind]>([
    ['123456789', 'ssn'],
    ['130692544', 'national-id'], // Canadian SIN
    ['111222333', 'national-id'], // Dutch BSN
    ['X-4471-22', 'national-id'],
    ['5550100', 'phone'],
    ['(0)20 7946 0958', 'phone'],
    ['4111111111111111', 'card'],
    ['1980-05-17', 'date-of-birth'],
    ['17.05.1980', 'date-of-birth'],
    ['05/17/1980', 'date-of-birth'],
    ['19800517', 'date-of-birth'],
    ['May 17, 1980', 'date-of-birth'],
    ['17 May 1980', 'date-of-birth'],
    ['Zyx', 'person-name'],
    ['van der Berg', 'person-name'],
    ['Flat 3, Rose Court', 'street-address'],
    ['a@b', 'email'],
    ['10.0.0.0/8', 'ip'],
    ['NL91ABNA0417164300', 'iban'],
    ['12345678', 'iban'],
    ['hunter2', 'secret'],
  ])('%j is %s under that hint', (value, kind) => {
    expect(classifyValue(value, kind)).toBe(kind);
  });

  it.each<[string, PiiKind]>([
    ['000000000', 'ssn'],
    ['666123456', 'ssn'],
    ['000456789', 'national-id'], // no SSN, SIN or BSN
    ['12345', 'phone'],
    ['4111111111111112', 'card'],
    ['2024-13-45', 'date-of-birth'],
    ['1850-01-01', 'date-of-birth'],
    ['12 apples', 'person-name'],
    ['not an address', 'ip'],
    ['two words', 'secret'],
  ])('%j is not %s even under that hint', (value, kind) => {
    expect(classifyValue(value, kind)).toBeNull();
  });
});
