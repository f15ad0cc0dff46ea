import { describe, expect, it } from 'vitest';
import {
  ahvValid,
  bsnValid,
  cardNumberValid,
  dniValid,
  ibanValid,
  ipv4Valid,
  ipv6Valid,
  luhnValid,
  ninoValid,
  sinValid,
  ssnValid,
} from './validators.ts';

const whole =
  (check: (text: string, start: number, end: number) => boolean) =>
  (text: string): boolean =>
    check(text, 0, text.length);

describe('check digits and structure rules', () => {
  it.each([
    ['4111111111111111', true],
    ['4111 1111 1111 1111', true],
    ['4111111111111112', false],
    ['79927398713', true],
    ['79927398710', false],
  ])('luhnValid(%j) is %s', (text, valid) => {
    expect(whole(luhnValid)(text)).toBe(valid);
  });

  it.each([
    ['4111111111111111', true], // Visa
    ['5500000000000004', true], // Mastercard
    ['2223000048400011', true], // Mastercard 2-series
    ['378282246310005', true], // Amex
    ['6011111111111117', true], // Discover
    ['3530111333300000', true], // JCB
    ['30569309025904', true], // Diners
    ['4111-1111-1111-1111', true],
    ['4111111111111112', false], // Luhn fails
    ['1234567812345670', false], // Luhn passes, no issuer starts with 1
    ['0000000000000000', false],
    ['411111111111', false], // 12 digits
    ['41111111111111111111', false], // 20 digits
  ])('cardNumberValid(%j) is %s', (text, valid) => {
    expect(whole(cardNumberValid)(text)).toBe(valid);
  });

  it.each([
    [123, 45, 6789, true],
    [987, 65, 4321, true], // ITIN: area 9xx, group 65
    [900, 70, 1234, true],
    [900, 93, 1234, false], // 93 is not an ITIN group
    [987, 12, 3456, false],
    [0, 45, 6789, false],
    [666, 45, 6789, false],
    [123, 0, 6789, false],
    [123, 45, 0, false],
  ])('ssnValid(%i, %i, %i) is %s', (area, group, serial, valid) => {
    expect(ssnValid(area, group, serial)).toBe(valid);
  });

  it.each([
    ['GB82WEST12345698765432', true],
    ['GB82 WEST 1234 5698 7654 32', true],
    ['DE89370400440532013000', true],
    ['FR1420041010050500013M02606', true],
    ['NO9386011117947', true],
    ['gb82west12345698765432', true],
    ['GB82WEST12345698765433', false], // mod 97 fails
    ['GB82WEST1234569876543', false], // one short for GB
    ['XX82WEST12345698765432', false], // no such country
  ])('ibanValid(%j) is %s', (text, valid) => {
    expect(whole(ibanValid)(text)).toBe(valid);
  });

  it.each([
    ['AB123456C', true],
    ['AB 12 34 56 C', true],
    ['JG103759A', true],
    ['AB123456E', false], // suffix A-D only
    ['DA123456C', false], // D is not a first letter
    ['GB123456A', false], // unused prefix
    ['AB12345C', false],
  ])('ninoValid(%j) is %s', (text, valid) => {
    expect(whole(ninoValid)(text)).toBe(valid);
  });

  it.each([
    ['12345678Z', true],
    ['X1234567L', true],
    ['12345678A', false],
  ])('dniValid(%j) is %s', (text, valid) => {
    expect(whole(dniValid)(text)).toBe(valid);
  });

  it.each([
    ['756.1234.5678.97', true],
    ['7561234567897', true],
    ['756.1234.5678.90', false],
    ['757.1234.5678.97', false],
  ])('ahvValid(%j) is %s', (text, valid) => {
    expect(whole(ahvValid)(text)).toBe(valid);
  });

  it('checks Dutch BSNs and Canadian SINs', () => {
    expect(bsnValid('111222333')).toBe(true);
    expect(bsnValid('111222334')).toBe(false);
    expect(sinValid('130692544')).toBe(true);
    expect(sinValid('130692545')).toBe(false);
    // Luhn-valid, but 0 marks fictitious numbers and 8 none that are issued.
    expect(sinValid('046454286')).toBe(false);
  });

  it.each([
    ['192.168.1.20', true],
    ['0.0.0.0', true],
    ['255.255.255.255', true],
    ['256.1.1.1', false],
    ['01.2.3.4', false],
    ['1.2.3', false],
    ['1.2.3.4.5', false],
  ])('ipv4Valid(%j) is %s', (text, valid) => {
    expect(whole(ipv4Valid)(text)).toBe(valid);
  });

  it.each([
    ['2001:db8::1', true],
    ['fe80::1ff:fe23:4567:890a', true],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', true],
    ['::', true],
    ['::ffff:192.0.2.1', true],
    ['10:30:00', false],
    ['00:1A:2B:3C:4D:5E', false], // a MAC address
    ['1::2::3', false],
    ['12345::1', false],
    ['a:b:c:d:e:f:0:1:2', false],
  ])('ipv6Valid(%j) is %s', (text, valid) => {
    expect(whole(ipv6Valid)(text)).toBe(valid);
  });
});
