import { MASKING_CLASSIFIERS } from '../../../../crds/masking-policy.ts';

/**
 * The kinds of sensitive data the classifiers recognise: the names a MaskingPolicy's `classifiers`
 * use, so the CRD, the audit records and the code speak one vocabulary.
 */
export const PII_KINDS = MASKING_CLASSIFIERS;

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
  'date-of-birth',
  'person-name',
  'street-address',
];
