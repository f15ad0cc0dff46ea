import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import type { StatementClass } from '../../../../crds/database-access.ts';
import type { Identity } from '../../identity/identity.ts';
import { withStoredCode } from '../../policy/gates/stored-code.ts';
import { decide } from '../../policy/guardrails/decide.ts';
import { DEFAULT_GUARDRAIL } from '../../policy/guardrails/default-guardrails.ts';
import { loadPolicyDocuments, type Policy } from '../../policy/load-policy.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { buildMysqlCodeCatalog } from './mysql-code-catalog.ts';
import { loadMysqlParser } from './parser.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

beforeAll(async () => {
  await loadMysqlParser();
});

const ALICE: Identity = { subject: 'local:alice', groups: ['analysts'], method: 'local' };
const CONTEXT = { database: 'rt' };

function policyWith(allow: StatementClass[]): Policy {
  return loadPolicyDocuments(
    [
      DEFAULT_GUARDRAIL,
      {
        apiVersion: API_VERSION,
        kind: 'DatabaseAccess',
        metadata: { name: 'app' },
        spec: {
          subjects: [{ kind: 'User', name: 'local:alice' }],
          allow,
          guardrails: ['gatehouse-defaults'],
        },
      },
    ],
    'test',
  );
}

const READ_WRITE = policyWith(['read', 'write']);
const EVERYTHING = policyWith(['read', 'write', 'ddl', 'admin']);

interface RedTeamCase {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
}

const REDTEAM: readonly RedTeamCase[] = readFileSync(
  new URL('../../policy/guardrails/testdata/redteam-mysql.jsonl', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as RedTeamCase);

/** A server with no stored code: facts as the gate judges them, with the (absent) code they reach. */
const NO_STORED_CODE = buildMysqlCodeCatalog({ routines: [], parameters: [], triggers: [], views: [] });
const facts = (sql: string) =>
  withStoredCode(analyzeMysql(sql, { sqlMode: DEFAULT_SQL_MODE }), NO_STORED_CODE).facts;

describe('MySQL red-team cases with the default guardrails', () => {
  it('has cases of each expectation', () => {
    for (const expectation of ['block', 'mask', 'allow'])
      expect(REDTEAM.filter((c) => c.expect === expectation).length).toBeGreaterThan(5);
  });

  it.each(REDTEAM.filter((c) => c.expect === 'block'))('$id is refused by a guardrail', ({ sql }) => {
    expect(facts(sql).parsed).toBe(true);
    expect(decide(facts(sql), ALICE, READ_WRITE, CONTEXT).outcome).toBe('refuse');
    const decision = decide(facts(sql), ALICE, EVERYTHING, CONTEXT);
    expect(decision.outcome).toBe('refuse');
    expect(decision.outcome === 'refuse' && decision.policyKind).toBe('Guardrail');
  });

  it.each(REDTEAM.filter((c) => c.expect !== 'block'))(
    '$id ($expect) is allowed for read and write',
    ({ sql }) => {
      expect(decide(facts(sql), ALICE, READ_WRITE, CONTEXT)).toMatchObject({ outcome: 'allow', dryRun: [] });
    },
  );
});

interface EvasionCase extends RedTeamCase {
  /** The statements MariaDB 10.11 runs for the text, by kind. */
  readonly truth: readonly string[];
}

/** The cases docs/mysql-parser-choice.md measured parsers on, with what MariaDB runs for each. */
const EVASIONS: readonly EvasionCase[] = readFileSync(
  new URL('../../../../test/fixtures/mysql-evasion-cases.jsonl', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as EvasionCase);

/** Read as code on purpose: which version a server has is not the proxy's to assume (fail closed). */
const FUTURE_VERSION = 'x-versioned-future';

describe('MySQL evasion cases (parser-choice fixtures)', () => {
  it.each(EVASIONS.filter((c) => c.id !== FUTURE_VERSION))(
    '$id: splits as MariaDB does',
    ({ sql, truth }) => {
      expect(facts(sql).statementCount).toBe(truth.length);
    },
  );

  it.each(EVASIONS.filter((c) => c.expect === 'block' || c.id === FUTURE_VERSION))(
    '$id is refused',
    ({ sql }) => {
      expect(decide(facts(sql), ALICE, EVERYTHING, CONTEXT).outcome).toBe('refuse');
    },
  );

  it.each(EVASIONS.filter((c) => c.expect !== 'block' && c.id !== FUTURE_VERSION))(
    '$id ($expect) is allowed for read and write',
    ({ sql }) => {
      expect(decide(facts(sql), ALICE, READ_WRITE, CONTEXT)).toMatchObject({ outcome: 'allow', dryRun: [] });
    },
  );
});
