import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** A case of ../shared/redteam, copied into the repository so CI needs nothing beside it. */
export interface RedTeamCase {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
}

export function redTeamCases(protocol: 'postgres' | 'mysql'): RedTeamCase[] {
  return readFileSync(
    join(REPO_ROOT, `sidecar/src/policy/guardrails/testdata/redteam-${protocol}.jsonl`),
    'utf8',
  )
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RedTeamCase);
}

/** The PII values of the red-team schemas (customers.name, email, ssn, phone, card). */
export const REDTEAM_PII = [
  'Alice Smith',
  'alice@example.com',
  '123-45-6789',
  '+1-555-0100',
  '4111111111111111',
  'Bob Jones',
  'bob@example.com',
  '987-65-4321',
  '+1-555-0199',
  '5500000000000004',
] as const;
