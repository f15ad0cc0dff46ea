/** The kinds of sensitive data the classifiers recognise; a masking rule may name them. */
export const PII_KINDS = [
  'email',
  'phone',
  'ssn',
  'national-id',
  'card',
  'iban',
  'ip',
  'person-name',
  'address',
  'birth-date',
  'secret',
] as const;

export type PiiKind = (typeof PII_KINDS)[number];

export function isPiiKind(value: string): value is PiiKind {
  return (PII_KINDS as readonly string[]).includes(value);
}

/**
 * Kinds in the order they win when one value or span matches several: a password inside an email-like
 * URL is a secret, an `email_address` column an email.
 */
export const KIND_PRIORITY: readonly PiiKind[] = [
  'secret',
  'card',
  'ssn',
  'national-id',
  'iban',
  'email',
  'phone',
  'ip',
  'birth-date',
  'person-name',
  'address',
];
