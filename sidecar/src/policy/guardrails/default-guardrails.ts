import { API_VERSION } from '../../../../crds/common.ts';
import { FINDING_KINDS, type GuardrailDocumentType } from '../../../../crds/guardrail.ts';

const ADVICE: Record<(typeof FINDING_KINDS)[number], string> = {
  drop: 'Drop objects through your migration tool, or ask a database administrator.',
  truncate: 'Delete the rows you mean with a WHERE clause, or ask a database administrator.',
  'delete-without-where': 'Add a WHERE clause that names the rows (for example by key).',
  'update-without-where': 'Add a WHERE clause that names the rows (for example by key).',
  alter: 'Change the schema through your migration tool, or ask a database administrator.',
  grant: 'Privileges are managed by database administrators.',
  'multi-statement': 'Send one statement per query, or use the extended protocol.',
  'dynamic-sql': 'Send the SQL itself, so that Gatehouse can check it.',
  'file-access': "Use COPY ... TO STDOUT / FROM STDIN to move data through the client's connection.",
  'copy-program': "Use COPY ... TO STDOUT / FROM STDIN to move data through the client's connection.",
  'identity-change': 'Connect as the identity you need instead of switching roles.',
  'unknown-statement': 'Check the statement for syntax errors.',
};

/**
 * Rows one transaction may update or delete under the built-in guardrail: a few pages of a screen's
 * edits pass, emptying or rewriting a table of a few thousand rows does not.
 */
export const DEFAULT_MAX_AFFECTED_ROWS = 1000;

/**
 * The built-in guardrail set for the quickstart and as a starting point: one rule per finding kind
 * (unknown-shape, a closed world, is a choice, not a default), each named after its kind, each blocking, and a row limit (`row-limit`).
 */
export const DEFAULT_GUARDRAIL: GuardrailDocumentType = {
  apiVersion: API_VERSION,
  kind: 'Guardrail',
  metadata: { name: 'gatehouse-defaults' },
  spec: {
    mode: 'enforce',
    rules: [
      ...FINDING_KINDS.map((kind) => ({
        name: kind,
        kinds: [kind],
        action: 'block' as const,
        message: ADVICE[kind],
      })),
      {
        name: 'row-limit',
        maxAffectedRows: DEFAULT_MAX_AFFECTED_ROWS,
        action: 'block',
        message:
          'Change rows in smaller transactions, by key, or ask for a guardrail with a higher maxAffectedRows.',
      },
    ],
  },
};
