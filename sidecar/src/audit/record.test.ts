import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainSignedText, chainText, chainTextBytes, GENESIS } from './chain.ts';
import type { AuditEvent, SessionContext } from './events.ts';
import { auditFields, auditText } from './record.ts';
import { sessionContext } from './testing.ts';

/** Strings that JSON escapes, or that take more than one byte, or that V8 keeps in odd shapes. */
const STRINGS = [
  '',
  'SELECT 1',
  'say "hi"',
  'back\\slash',
  'tab\there\nnewline\r\u0000\u001f\u007f',
  'line\u2028separator\u2029',
  'é ü ß 漢字 🦊',
  'lone \ud800 surrogate \udfff',
  `${'x'.repeat(300)}"`,
  'SELECT * FROM "odd ""name"" table" WHERE a = $1',
];
const NUMBERS = [0, -0, 1, 42, 0.412, 1.5e-7, 1e21, 123456789.125, Number.NaN, Number.POSITIVE_INFINITY];

function context(n: number): SessionContext {
  const text = STRINGS[n % STRINGS.length]!;
  return {
    session: `s${n}${text}`,
    protocol: n % 2 === 0 ? 'postgres' : 'mysql',
    identity: {
      subject: `local:${text}`,
      groups: n % 3 === 0 ? [] : [text, 'g'],
      method: 'local',
      ...(n % 2 === 0 && { issuer: text, namespace: 'ns', serviceAccount: text, pod: 'p' }),
    },
    client: { address: '10.0.0.1', port: NUMBERS[n % NUMBERS.length]! },
    database: text,
    ...(n % 3 === 1 && { purpose: text, runId: `run-${text}` }),
  };
}

function events(n: number): AuditEvent[] {
  const text = STRINGS[n % STRINGS.length]!;
  const number = NUMBERS[n % NUMBERS.length]!;
  const ctx = n % 4 === 0 ? sessionContext : context(n);
  const optional = n % 2 === 0;
  return [
    {
      type: 'statement.start',
      context: ctx,
      via: (['simple', 'extended', 'text', 'prepared'] as const)[n % 4]!,
      statement: n % 5 === 0 ? null : text,
      fingerprint: n % 3 === 0 ? null : `f${n}`,
    },
    {
      type: 'statement',
      context: ctx,
      via: 'simple',
      statement: n % 5 === 0 ? null : text,
      fingerprint: n % 3 === 0 ? null : `f${n}`,
      outcome: (['ok', 'error', 'refused'] as const)[n % 3]!,
      durationMs: number,
      ...(optional && {
        command: text,
        rows: number,
        rowsChanged: n,
        sqlstate: '42501',
        reason: text,
        masked: [text, `${text} (email, tokenize)`],
        approval: `ar-${n}`,
        touched: {
          tablesRead: [`public.${text}`, 'public.customers'],
          ...(n % 3 === 0 && { tablesWritten: [text] }),
          ...(n % 4 === 0 && {
            columns: { [`public.customers.${text}`]: 'clear', 'public.customers.ssn': 'redact' },
          }),
        },
      }),
    },
    {
      type: 'approval',
      event: (['requested', 'approved', 'denied', 'expired', 'executed', 'withdrawn'] as const)[n % 6]!,
      request: `ar-${n}`,
      subject: text,
      database: text,
      statement: n % 5 === 0 ? null : text,
      fingerprint: null,
      parametersHash: '',
      rules: [text, 'g/r'],
      ...(optional && { by: text, reason: text, condition: text, shapeUntil: '2026-12-07T00:00:00.000Z' }),
    },
    { type: 'connection.start', context: ctx, tls: optional },
    { type: 'connection.end', context: ctx, durationMs: number, statements: n, reason: text },
    {
      type: 'connection.refused',
      client: { address: '::1', port: n },
      protocol: 'mysql',
      user: text,
      database: text,
      sqlstate: '28000',
      ...(optional && { errno: 1045 }),
      reason: text,
    },
  ];
}

describe('auditText', () => {
  it('writes exactly what JSON.stringify makes of the record fields, for every event and odd value', () => {
    let checked = 0;
    for (let n = 0; n < 120; n++) {
      for (const event of events(n)) {
        expect(`{${auditText(event)}}`).toBe(JSON.stringify(auditFields(event)));
        // A second time from the session's cached fields.
        expect(`{${auditText(event)}}`).toBe(JSON.stringify(auditFields(event)));
        checked++;
      }
    }
    expect(checked).toBe(720);
  });

  it("keeps each session's fields to its own records", () => {
    const [a, b] = [context(1), context(2)];
    const start = (ctx: SessionContext) =>
      auditText({ type: 'statement.start', context: ctx, via: 'simple', statement: 'x', fingerprint: null });
    expect(start(a)).toContain(JSON.stringify(a.session));
    expect(start(b)).toContain(JSON.stringify(b.session));
    expect(start(b)).not.toContain(JSON.stringify(a.session));
  });
});

describe('what a statement touched and what its session declared', () => {
  it('are in the statement record, in this order, and left out when unknown', () => {
    const statement = {
      type: 'statement',
      context: { ...sessionContext, purpose: 'train churn model', runId: 'run-42' },
      via: 'simple',
      statement: 'SELECT name, ssn FROM customers',
      fingerprint: null,
      outcome: 'ok',
      durationMs: 1,
      touched: {
        tablesRead: ['public.customers'],
        columns: { 'public.customers.name': 'clear', 'public.customers.ssn': 'redact' },
      },
    } as const;
    const record = JSON.parse(`{${auditText(statement)}}`) as Record<string, unknown>;
    expect(record).toMatchObject({
      purpose: 'train churn model',
      runId: 'run-42',
      tablesRead: ['public.customers'],
      columns: { 'public.customers.name': 'clear', 'public.customers.ssn': 'redact' },
    });
    expect(Object.keys(record).slice(-2)).toEqual(['tablesRead', 'columns']);
    const bare = JSON.parse(`{${auditText({ ...statement, context: sessionContext, touched: undefined })}}`);
    for (const field of ['purpose', 'runId', 'tablesRead', 'tablesWritten', 'columns'])
      expect(bare).not.toHaveProperty(field);
  });
});

describe('chainText', () => {
  const { privateKey } = generateKeyPairSync('ed25519');

  it('makes the line chainLine makes, and knows its length before hashing', () => {
    for (let n = 0; n < 60; n++) {
      for (const event of events(n)) {
        const seq = [1, 9, 10, 99_999, 1_234_567_890_123][n % 5]!;
        const text = `"time":"2026-12-07T03:00:00.000Z",${auditText(event)}`;
        const { line } = chainText(seq, GENESIS, text);
        const fields = { seq, prev: GENESIS, time: '2026-12-07T03:00:00.000Z', ...auditFields(event) };
        expect(line).toBe(
          `${JSON.stringify(fields).slice(0, -1)},"hash":${JSON.stringify(JSON.parse(line).hash)}}`,
        );
        expect(chainTextBytes(seq, text, false)).toBe(Buffer.byteLength(line));
        const signed = chainSignedText(seq, GENESIS, text, privateKey);
        expect(chainTextBytes(seq, text, true)).toBe(Buffer.byteLength(signed.line));
      }
    }
  });
});
