/**
 * What masking costs per cell: `node --liftoff-only sidecar/src/policy/masking/masking.bench.ts`.
 * Cells cycle through 4096 distinct values so that nothing is answered from a warm cache line.
 * Times are CPU time of this process (user + system), which holds up better than wall time on a
 * machine shared with other work.
 */
import { findSensitive } from './find-sensitive.ts';
import { BINARY_FORMAT, type CellMasker, createCellMasker, TEXT_FORMAT } from './mask-cell.ts';
import type { MaskMethod } from './mask-methods.ts';
import { maskTextFreeform } from './mask-text-freeform.ts';
import { createMaskingKey } from './masking-key.ts';
import { PG_TYPE } from './pg-types.ts';
import type { PiiKind } from './pii-kind.ts';

const ROUNDS = 1_000_000;
const VALUES = 4096;
const key = createMaskingKey(Buffer.alloc(32, 7));

function measure(name: string, call: (i: number) => unknown): void {
  for (let i = 0; i < 200_000; i++) call(i);
  const started = process.cpuUsage();
  for (let i = 0; i < ROUNDS; i++) call(i);
  const used = process.cpuUsage(started);
  const nanos = ((used.user + used.system) * 1000) / ROUNDS;
  const perSecond = (1e9 / nanos / 1e6).toFixed(2);
  console.log(`${name.padEnd(62)} ${nanos.toFixed(0).padStart(6)} ns/cell ${perSecond.padStart(6)} M/s`);
}

function cells(make: (i: number) => string): Buffer[] {
  return Array.from({ length: VALUES }, (_, i) => Buffer.from(make(i)));
}

const emails = cells((i) => `user${100000 + i}@example.com`);
const cards = cells((i) => `4111${String(111111111111 + i * 7919).padStart(12, '0')}`);
const names = cells((i) => `Alice Smith${i}`);
const int4s = Array.from({ length: VALUES }, (_, i) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(1_000_000 + i * 31);
  return b;
});

function column(method: MaskMethod, typeOid: number, kind: PiiKind, extra = {}): CellMasker {
  return createCellMasker(method, { key, kind, typeOid, ...extra });
}

console.log('Cell masking (per DataRow cell, text format unless said):');
const redactSameLength = column('redact', PG_TYPE.text, 'email', { redactStyle: 'same-length' });
measure('redact, same length, email text', (i) => redactSameLength(emails[i & 4095]!, TEXT_FORMAT));
const redactChar = column('redact', PG_TYPE.bpchar, 'card');
measure('redact, char(16) card', (i) => redactChar(cards[i & 4095]!, TEXT_FORMAT));
const redactFixed = column('redact', PG_TYPE.text, 'email');
measure("redact, fixed '****', email text", (i) => redactFixed(emails[i & 4095]!, TEXT_FORMAT));
const partialCard = column('partial', PG_TYPE.text, 'card');
measure('partial, card text (same length)', (i) => partialCard(cards[i & 4095]!, TEXT_FORMAT));
const tokenizeCard = column('tokenize', PG_TYPE.text, 'card');
measure('tokenize, card text (same length)', (i) => tokenizeCard(cards[i & 4095]!, TEXT_FORMAT));
const tokenizeEmail = column('tokenize', PG_TYPE.text, 'email');
measure('tokenize, email text (same length)', (i) => tokenizeEmail(emails[i & 4095]!, TEXT_FORMAT));
const tokenizeName = column('tokenize', PG_TYPE.text, 'person-name');
measure('tokenize, name text (same length)', (i) => tokenizeName(names[i & 4095]!, TEXT_FORMAT));
const hashEmail = column('hash', PG_TYPE.text, 'email');
measure('hash, email text (64 hex digits)', (i) => hashEmail(emails[i & 4095]!, TEXT_FORMAT));
const tokenizeInt = column('tokenize', PG_TYPE.int4, 'national-id');
measure('tokenize, int4 binary', (i) => tokenizeInt(int4s[i & 4095]!, BINARY_FORMAT));

console.log('\nValue scanning (findSensitive):');
const ordinary = [
  'vip',
  'test',
  '10.5',
  '20',
  '42',
  'Widget Pro',
  '2024-01-15',
  '2024-01-15 10:30:00+00',
  'shipped',
  'order 1234567',
  'The quick brown fox jumps over the lazy dog',
  '3f2b8c1e-9a7d-4e5f-8b6a-1c2d3e4f5a6b',
];
measure(`ordinary short text and numbers (${ordinary.length} kinds)`, (i) =>
  findSensitive(ordinary[i % 12]!),
);
const ids = Array.from({ length: VALUES }, (_, i) => String(100000 + i * 13));
measure('integers as text', (i) => findSensitive(ids[i & 4095]!));
const row = '(1,"Alice Smith",alice@example.com,123-45-6789,+1-555-0100,4111111111111111,vip)';
measure('whole-row text with 5 PII values', () => findSensitive(row));
measure('maskTextFreeform, whole-row text, redact', () => maskTextFreeform(row));
