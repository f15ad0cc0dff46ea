/**
 * The evidence for the parser choice (README.md here): `node sidecar/src/sql/mysql/parser-choice.bench.ts`.
 * Over the red-team cases and the parser-choice fixtures it counts, for sqlparser-ts given the raw
 * text, how often it splits the text as MariaDB does, fails to parse, or misreads it; and for
 * analyzeMysql (our lexer in front of sqlparser-ts) how often the default guardrails decide as expected.
 */
import { readFileSync } from 'node:fs';
import { parse } from '@guanmingchiu/sqlparser-ts';
import { API_VERSION } from '../../../../crds/common.ts';
import { decide } from '../../policy/guardrails/decide.ts';
import { DEFAULT_GUARDRAIL } from '../../policy/guardrails/default-guardrails.ts';
import { loadPolicyDocuments } from '../../policy/load-policy.ts';
import { analyzeMysql } from './analyze-mysql.ts';
import { lexMysql } from './lexer.ts';
import { loadMysqlParser } from './parser.ts';
import { DEFAULT_SQL_MODE } from './sql-mode.ts';

await loadMysqlParser();

interface Case {
  readonly id: string;
  readonly sql: string;
  readonly expect: 'block' | 'mask' | 'allow';
  readonly truth?: readonly string[];
}

const read = (path: string): Case[] =>
  readFileSync(new URL(path, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Case);
const cases = [
  ...read('../../policy/guardrails/testdata/redteam-mysql.jsonl'),
  ...read('../../../../test/fixtures/mysql-evasion-cases.jsonl'),
];

const policy = loadPolicyDocuments(
  [
    DEFAULT_GUARDRAIL,
    {
      apiVersion: API_VERSION,
      kind: 'DatabaseAccess',
      metadata: { name: 'app' },
      spec: {
        subjects: [{ kind: 'User', name: 'local:a' }],
        allow: ['read', 'write'],
        guardrails: ['gatehouse-defaults'],
      },
    },
  ],
  'bench',
);
const identity = { subject: 'local:a', groups: [], method: 'local' as const };

const raw = { right: 0, parseError: 0, misread: 0, parseErrorOnAllow: 0 };
const ours = { right: 0, wrong: [] as string[] };
const rawParse: number[] = [];
const ourAnalysis: number[] = [];
for (const c of cases) {
  // What MariaDB runs: the fixtures say; for red-team cases, the lexer's split (checked against MariaDB in lexer-mariadb.test.ts).
  const statements = c.truth?.length ?? lexMysql(c.sql, DEFAULT_SQL_MODE).statements.length;
  let started = process.hrtime.bigint();
  try {
    const parsed = parse(c.sql, 'mysql');
    rawParse.push(Number(process.hrtime.bigint() - started) / 1000);
    if (parsed.length === statements) raw.right++;
    else raw.misread++;
  } catch {
    raw.parseError++;
    if (c.expect !== 'block') raw.parseErrorOnAllow++;
  }
  started = process.hrtime.bigint();
  const facts = analyzeMysql(c.sql + ' ', { sqlMode: DEFAULT_SQL_MODE });
  ourAnalysis.push(Number(process.hrtime.bigint() - started) / 1000);
  const refused = decide(facts, identity, policy, { database: 'rt' }).outcome === 'refuse';
  if (refused === (c.expect === 'block')) ours.right++;
  else ours.wrong.push(c.id);
}

const p = (xs: number[], q: number) =>
  xs.sort((a, b) => a - b)[Math.floor((q / 100) * (xs.length - 1))]!.toFixed(1);
console.log(`${cases.length} cases`);
console.log(
  `sqlparser-ts on raw text: split right ${raw.right}, parse error ${raw.parseError} (${raw.parseErrorOnAllow} of them must run), misread ${raw.misread}; parse p50 ${p(rawParse, 50)} µs p99 ${p(rawParse, 99)} µs`,
);
console.log(
  `analyzeMysql (lexer + sqlparser-ts + rules): decided as expected ${ours.right}, otherwise ${ours.wrong.length} (${ours.wrong.join(', ')}); uncached p50 ${p(ourAnalysis, 50)} µs p99 ${p(ourAnalysis, 99)} µs`,
);
