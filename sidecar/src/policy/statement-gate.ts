import type { Identity } from '../identity/identity.ts';
import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import { resolveExecutes } from '../sql/analyze/assemble-facts.ts';
import type { StatementFacts } from '../sql/analyze/statement-facts.ts';
import { type Decision, decide } from './guardrails/decide.ts';
import type { Policy } from './load-policy.ts';

/** Where the session reads the policy in force; a reload swaps what it returns. */
export type PolicySource = () => Policy | undefined;

/**
 * One session's guardrail checkpoint. It remembers what the session's SQL PREPAREs hold, so that a
 * later `EXECUTE name` is judged by the statement it runs rather than waved through as opaque.
 */
export class StatementGate {
  private readonly prepared = new Map<string, StatementFacts>();
  private readonly policy: PolicySource;
  private readonly identity: Identity;
  private readonly database: string;

  constructor(policy: PolicySource, identity: Identity, database: string) {
    this.policy = policy;
    this.identity = identity;
    this.database = database;
  }

  /** The decision for one Query or Parse text; undefined when no policy is configured. */
  check(sql: string): Decision | undefined {
    const policy = this.policy();
    if (!policy) return undefined;
    const facts = resolveExecutes(analyzeStatement(sql), (name) => this.prepared.get(name));
    const decision = decide(facts, this.identity, policy, { database: this.database });
    if (decision.outcome !== 'refuse') {
      // Only what was allowed can have been prepared; what was refused never reached the server.
      for (const prepared of facts.prepared) this.prepared.set(prepared.name, prepared.facts);
      for (const name of facts.deallocated) {
        if (name === '*') this.prepared.clear();
        else this.prepared.delete(name);
      }
    }
    return decision;
  }
}
