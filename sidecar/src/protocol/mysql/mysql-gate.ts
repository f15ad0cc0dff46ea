import type { Identity } from '../../identity/identity.ts';
import { decide } from '../../policy/guardrails/decide.ts';
import type { PolicySource } from '../../policy/statement-gate.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import type { QueryText } from '../../sql/normalize.ts';
import { describeMysqlStatement } from './audit-text.ts';
import type { MysqlGate } from './session.ts';

/** MySQL dialect analysis: the facts of one COM_QUERY or prepared text under the session's sql_mode. */
export type MysqlAnalyzer = (sql: string, options: { sqlMode: string }) => StatementFacts;

/**
 * One session's guardrail checkpoint for MySQL, as StatementGate is for PostgreSQL: the same decide()
 * over facts from the MySQL analyser, with the session's sql_mode followed through SET statements.
 */
export function createMysqlGate(options: {
  policy: PolicySource;
  identity: Identity;
  database: string;
  sqlMode: string;
  analyze: MysqlAnalyzer | undefined;
}): MysqlGate {
  const { policy, identity, database, analyze } = options;
  return {
    check(sql) {
      const current = policy();
      if (!current) return undefined;
      if (!analyze) throw new Error('no MySQL analyser: statements cannot be judged');
      const facts = analyze(sql, { sqlMode: options.sqlMode });
      return decide(facts, identity, current, { database });
    },
    describe(sql): readonly QueryText[] {
      return [describeMysqlStatement(sql)];
    },
    describeOne(sql) {
      return describeMysqlStatement(sql);
    },
  };
}
