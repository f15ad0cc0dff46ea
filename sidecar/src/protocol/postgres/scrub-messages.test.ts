import { describe, expect, it } from 'vitest';
import { errorResponse } from './backend-writer.ts';
import { errorFields } from './message-fields.ts';
import { scrubFieldsMessage, scrubText } from './scrub-messages.ts';

describe('scrubText', () => {
  it.each([
    ['Key (ssn)=(123-45-6789) already exists.', 'Key (ssn)=(****) already exists.'],
    ['Key (lower(email), id)=(x@y.z, 7) already exists.', 'Key (lower(email), id)=(****) already exists.'],
    ['Failing row contains (1, Alice Smith, null).', 'Failing row contains (****).'],
    ['invalid input syntax for type integer: "987-65-4321"', 'invalid input syntax for type integer: "****"'],
    ['invalid input syntax for type integer: "some name"', 'invalid input syntax for type integer: "****"'],
    ['relation "customers" does not exist', 'relation "customers" does not exist'],
    ['value for alice@example.com is odd', 'value for **** is odd'],
  ])('%s', (text, expected) => {
    expect(scrubText(text)).toBe(expected);
  });
});

describe('scrubFieldsMessage', () => {
  it('rewrites only value-bearing fields and returns the frame itself when nothing changes', () => {
    const frame = errorResponse({
      severity: 'ERROR',
      code: '23505',
      message: 'duplicate key value violates unique constraint "c_email_key"',
      detail: 'Key (email)=(alice@example.com) already exists.',
    });
    const scrubbed = scrubFieldsMessage(frame);
    const fields = errorFields(scrubbed);
    expect(fields.get('D')).toBe('Key (email)=(****) already exists.');
    expect(fields.get('C')).toBe('23505');
    expect(fields.get('M')).toBe('duplicate key value violates unique constraint "c_email_key"');
    const clean = errorResponse({ severity: 'ERROR', code: '42P01', message: 'relation "t" does not exist' });
    expect(scrubFieldsMessage(clean)).toBe(clean);
  });
});
