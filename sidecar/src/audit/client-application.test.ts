import { describe, expect, it } from 'vitest';
import {
  clientApplication,
  clientApplicationField,
  declaredWorkFields,
  MAX_PURPOSE_BYTES,
  MAX_RUN_ID_BYTES,
} from './client-application.ts';

describe('clientApplication', () => {
  it('keeps a plain name as declared', () => {
    expect(clientApplication('gatehouse-mcp/query')).toBe('gatehouse-mcp/query');
  });

  it.each([
    ['line\nbreak', 'linebreak'],
    ['tab\there', 'tabhere'],
    ['nul\u0000x', 'nulx'],
    ['esc\u001b[31m', 'esc[31m'],
    ['sep\u2028x\u2029', 'sepx'],
    ['c1\u0085x', 'c1x'],
  ])('drops control characters: %j', (declared, kept) => {
    expect(clientApplication(declared)).toBe(kept);
  });

  it('cuts at 63 bytes without splitting a character', () => {
    expect(Buffer.byteLength(clientApplication('a'.repeat(100))!)).toBe(63);
    const cut = clientApplication(`${'a'.repeat(62)}é`)!;
    expect(cut).toBe('a'.repeat(62));
  });

  it('is absent when nothing is left', () => {
    expect(clientApplication(undefined)).toBeUndefined();
    expect(clientApplication('')).toBeUndefined();
    expect(clientApplication('\n\r')).toBeUndefined();
    expect(clientApplicationField('\n')).toEqual({});
    expect(clientApplicationField('psql')).toEqual({ application: 'psql' });
  });
});

describe('declaredWorkFields', () => {
  it('cleans and bounds a purpose and a run id like an application name', () => {
    expect(declaredWorkFields('train\nchurn', 'run\u0000-1')).toEqual({
      purpose: 'trainchurn',
      runId: 'run-1',
    });
    const long = declaredWorkFields('é'.repeat(MAX_PURPOSE_BYTES), 'r'.repeat(500));
    expect(Buffer.byteLength(long.purpose!)).toBeLessThanOrEqual(MAX_PURPOSE_BYTES);
    expect(long.purpose).not.toContain('\uFFFD');
    expect(long.runId).toHaveLength(MAX_RUN_ID_BYTES);
  });

  it('declares nothing for an absent or empty value', () => {
    expect(declaredWorkFields(undefined, '')).toEqual({});
    expect(declaredWorkFields('\u0001', undefined)).toEqual({});
  });
});
