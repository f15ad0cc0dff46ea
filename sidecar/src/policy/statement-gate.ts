import type { Identity } from '../identity/identity.ts';
import { analyzeStatement } from '../sql/analyze/analyze-statement.ts';
import { resolveExecutes } from '../sql/analyze/assemble-facts.ts';
import type { StatementFacts } from '../sql/analyze/statement-facts.ts';
import {
  type CodeCatalog,
  type CodeUnit,
  changesStoredCode,
  opaqueCall,
  type ReachedCode,
  reachCode,
  withPendingCode,
} from '../sql/code-reach.ts';
import { Lru } from '../sql/lru.ts';
import { type Decision, decide } from './guardrails/decide.ts';
import type { CodeSource, PolicySource } from './sources.ts';

/** A decision, with the stored code the statement runs (for the audit record) and names not in the catalog. */
export type GateDecision = Decision & {
  /** Labels of the functions, triggers, rules and views whose code the statement runs. */
  readonly code: readonly string[];
  /** Routines called that the catalog does not know: a refreshed catalog may tell them. */
  readonly unknownRoutines: readonly string[];
  /** The statement changes stored code (DDL, nested or not): the catalog must be reloaded after it. */
  readonly changesCode: boolean;
};

/**
 * The statement's facts with those of the stored code it runs (see reachCode). Without a catalog
 * nothing is known of any routine or relation, so every call and every relation counts as code
 * Gatehouse cannot see into.
 */
export function withStoredCode(
  facts: StatementFacts,
  catalog: CodeCatalog | undefined,
  pending: readonly StatementFacts[] = [],
): ReachedCode {
  const base = catalog ?? NO_CATALOG;
  const own = changesStoredCode(facts) ? [facts] : [];
  if (pending.length > 0 || own.length > 0)
    return reachCode(facts, withPendingCode(base, [...pending, ...own]));
  const known = base;
  let byCatalog = reached.get(facts);
  if (byCatalog?.catalog !== known) {
    byCatalog = { catalog: known, result: reachCode(facts, known) };
    reached.set(facts, byCatalog);
  }
  return byCatalog.result;
}

/** Analyses are shared and frozen: what their code reaches is kept beside them, per catalog. */
const reached = new WeakMap<StatementFacts, { catalog: CodeCatalog; result: ReachedCode }>();

/** Without a catalog, any relation may have triggers or be a view: code that is not seen into. */
const UNKNOWN_RELATION_CODE: CodeUnit = Object.freeze({
  id: 'no-catalog',
  label: 'the code of relations in a database whose catalog Gatehouse could not load',
  facts: () => opaqueCall('the code of relations', 'no catalog of the database could be loaded'),
});

const NO_CATALOG: CodeCatalog = {
  routine: () => undefined,
  operator: () => [],
  onWrite: () => [UNKNOWN_RELATION_CODE],
  onRead: () => [UNKNOWN_RELATION_CODE],
};

/**
 * One session's guardrail checkpoint. It remembers what the session's SQL PREPAREs hold, so that a
 * later `EXECUTE name` is judged by the statement it runs rather than waved through as opaque.
 */
export class StatementGate {
  private readonly prepared = new Map<string, StatementFacts>();
  private readonly policy: PolicySource;
  private readonly identity: Identity;
  private readonly database: string;

  private readonly code: CodeSource;
  /** DDL the session ran that the catalog may not show yet (uncommitted, or not reloaded). */
  private pending: StatementFacts[] = [];

  constructor(policy: PolicySource, identity: Identity, database: string, code: CodeSource) {
    this.policy = policy;
    this.identity = identity;
    this.database = database;
    this.code = code;
  }

  /**
   * The catalog now shows everything the session committed: its pending DDL is forgotten. Call when
   * no transaction is open and a catalog loaded after the session's last DDL is in force.
   */
  settle(): void {
    if (this.pending.length > 0) this.pending = [];
  }

  /**
   * The decision for one Query or Parse text; undefined when no policy is configured. `shape` (see
   * statementShape) lets texts that differ only in literal values share one analysis.
   */
  check(sql: string, shape?: string): GateDecision | undefined {
    const policy = this.policy();
    if (!policy) return undefined;
    const resolved = resolveExecutes(analyzeByShape(sql, shape), (name) => this.prepared.get(name));
    const { facts, code, unknown } = withStoredCode(resolved, this.code(), this.pending);
    const changesCode = changesStoredCode(facts);
    const decision = {
      ...decide(facts, this.identity, policy, { database: this.database }),
      code,
      unknownRoutines: unknown,
      changesCode,
    };
    if (changesCode && decision.outcome !== 'refuse' && this.pending.length < MAX_PENDING)
      this.pending.push(facts);
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

/** Pending DDL texts kept per session at most; past it, later DDL is still judged, and reloads catch up. */
const MAX_PENDING = 256;

const SHAPES = new Lru<string, StatementFacts>(2048);
/** Kinds whose facts no literal value changes (unlike UPDATE and DELETE, whose WHERE may be `'a' = 'a'`). */
const SHAPE_SAFE_KINDS: ReadonlySet<string> = new Set(['select', 'insert']);
/** Functions whose facts depend on the value of an argument: set_config('role', ...). */
const VALUE_SENSITIVE_FUNCTIONS: ReadonlySet<string> = new Set(['set_config']);

/** analyzeStatement, shared between texts of one shape when nothing in the facts can depend on a literal. */
function analyzeByShape(sql: string, shape: string | undefined): StatementFacts {
  if (shape === undefined) return analyzeStatement(sql);
  const cached = SHAPES.get(shape);
  if (cached) return cached;
  const facts = analyzeStatement(sql);
  if (literalIndependent(facts)) SHAPES.set(shape, facts);
  return facts;
}

function literalIndependent(facts: StatementFacts): boolean {
  return (
    facts.parsed &&
    facts.statementCount === 1 &&
    facts.findings.length === 0 &&
    facts.statements.every((s) => SHAPE_SAFE_KINDS.has(s.kind)) &&
    facts.prepared.length === 0 &&
    facts.unresolvedExecutes.length === 0 &&
    facts.deallocated.length === 0 &&
    facts.cursors.length === 0 &&
    !facts.functions.some((f) => VALUE_SENSITIVE_FUNCTIONS.has(f.slice(f.lastIndexOf('.') + 1).toLowerCase()))
  );
}
