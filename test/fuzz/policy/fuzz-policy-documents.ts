import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_GUARDRAIL } from '../../../sidecar/src/policy/guardrails/default-guardrails.ts';
import { loadPolicyDocuments } from '../../../sidecar/src/policy/load-policy.ts';
import { REPO_ROOT } from '../../e2e/support/proxy-process.ts';
import { localUser, policyDocument } from '../../support/policy-documents.ts';

/** The masked and guarded identity the fuzzer speaks as. */
export const FUZZ_USER = { name: 'fuzz', password: 'fuzz-secret' };

/** Statements may change at most this many rows, when the policy can say so. */
export const ROW_LIMIT = 5;

const ROW_LIMIT_GUARDRAIL = policyDocument('Guardrail', 'fuzz-row-limit', {
  rules: [{ name: 'row-limit', maxAffectedRows: ROW_LIMIT }],
});

/**
 * Whether this tree's policy loader accepts a per-statement row limit (`maxAffectedRows`). Asked of
 * the loader itself at run time, so the row-limit oracle switches on by itself once the field lands.
 */
export function rowLimitSupported(): boolean {
  try {
    loadPolicyDocuments([ROW_LIMIT_GUARDRAIL], 'fuzz row-limit probe');
    return true;
  } catch {
    return false;
  }
}

/** The quickstart's own MaskingPolicy (examples/quickstart/gatehouse.yaml), so the fuzzer tests what users start with. */
function quickstartMaskingPolicy(): unknown {
  const text = readFileSync(join(REPO_ROOT, 'examples/quickstart/gatehouse.yaml'), 'utf8');
  const found = parseAllDocuments(text)
    .map((doc) => doc.toJS() as { kind?: string })
    .find((doc) => doc?.kind === 'MaskingPolicy');
  if (!found) throw new Error('examples/quickstart/gatehouse.yaml has no MaskingPolicy');
  return found;
}

/** Policy documents for the proxy: the fuzz user reads and writes, masked, under the default guardrails. */
export function fuzzPolicyDocuments(rowLimit: boolean): unknown[] {
  const masking = quickstartMaskingPolicy() as { metadata: { name: string } };
  return [
    DEFAULT_GUARDRAIL,
    ...(rowLimit ? [ROW_LIMIT_GUARDRAIL] : []),
    masking,
    policyDocument('DatabaseAccess', 'fuzz', {
      subjects: [localUser(FUZZ_USER.name)],
      allow: ['read', 'write'],
      guardrails: [DEFAULT_GUARDRAIL.metadata.name, ...(rowLimit ? ['fuzz-row-limit'] : [])],
      maskingPolicies: [masking.metadata.name],
    }),
  ];
}

/** Quoted literals of a statement as parameters, for the extended protocol and prepared statements. */
export function parametrize(
  sql: string,
  placeholder: (index: number) => string,
): { text: string; values: string[] } {
  const values: string[] = [];
  // Literals that must stay literals: typed ones (DATE '...', X'2d'), GROUP_CONCAT's SEPARATOR, casts
  // ('...'::jsonb). The global match takes the literals in order, so quotes always pair up.
  const text = sql.replace(/'([^']*)'/g, (literal: string, value: string, offset: number) => {
    const before = sql.slice(0, offset);
    const after = sql.slice(offset + literal.length);
    if (/\b(DATE|TIMESTAMPTZ|TIMESTAMP|SEPARATOR|X)\s*$/.test(before) || after.startsWith('::'))
      return literal;
    values.push(value);
    return placeholder(values.length);
  });
  return { text, values };
}
