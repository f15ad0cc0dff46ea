import { describe, expect, it } from 'vitest';
import { Backend } from './codes.ts';
import { maskingReport, REPORT_MASKING_PARAMETER, wantsMaskingReport } from './masking-report.ts';

describe('masking reports', () => {
  it.each([
    ['on', true],
    ['ON', true],
    ['true', true],
    ['1', true],
    ['off', false],
    ['', false],
  ])('%s asks for them: %s', (value, wanted) => {
    expect(wantsMaskingReport(new Map([[REPORT_MASKING_PARAMETER, value]]))).toBe(wanted);
  });

  it('are off unless asked for', () => {
    expect(wantsMaskingReport(new Map([['application_name', 'psql']]))).toBe(false);
  });

  it('is one NoticeResponse naming every masked column', () => {
    const frame = maskingReport([
      'email <- public.customers.email (email by name): tokenize',
      'n <- x (y): redact',
    ]);
    expect(frame[0]).toBe(Backend.NoticeResponse);
    expect(frame.readUInt32BE(1)).toBe(frame.length - 1);
    expect(frame.toString('utf8')).toContain(
      'Gatehouse masked for this identity: email <- public.customers.email (email by name): tokenize; n <- x (y): redact',
    );
  });
});
