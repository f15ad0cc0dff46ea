import type { Identity } from '../../identity/identity.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';
import {
  type CodeCatalog,
  type CodeUnit,
  changesStoredCode,
  opaqueCall,
  type ReachedCode,
  reachCode,
  withPendingCode,
} from '../../sql/code-reach.ts';
import type { TextShape } from '../../sql/text-shape.ts';
import { type DecisionContext, decide } from '../guardrails/decide.ts';
import type { Policy } from '../load-policy.ts';
import { type McpTool, toolClasses } from '../mcp-tools.ts';
import type { CodeSource } from '../sources.ts';
import { type PolicyHooks, shapeContext } from './policy-hooks.ts';
import { guardrailVerdict, type Moment, type RefreshCatalog, type Verdict } from './session-gate.ts';

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

/** Pending DDL texts kept per session at most; past it, later DDL is still judged, and reloads catch up. */
const MAX_PENDING = 256;

/**
 * The guardrails of one session over the stored code its statements run, for either protocol. It
 * keeps the DDL the session ran that the catalog may not show yet (uncommitted, or not reloaded),
 * so that a function created and called in one transaction is judged by its body.
 */
export class CodeGuard {
  private pending: StatementFacts[] = [];
  private readonly identity: Identity;
  private readonly database: string;
  private readonly code: CodeSource;
  private readonly hooks: PolicyHooks | undefined;
  private readonly tool: DecisionContext['tool'];

  constructor(
    identity: Identity,
    database: string,
    code: CodeSource,
    hooks?: PolicyHooks,
    /** The MCP tool whose call the session is, when the proxy knows it (see DecisionContext). */
    tool?: McpTool,
  ) {
    this.identity = identity;
    this.database = database;
    this.code = code;
    this.hooks = hooks;
    const classes = tool && toolClasses(tool);
    this.tool = tool && classes ? { name: tool, classes } : undefined;
  }

  /** Forget the kept DDL: the catalog shows everything the session committed. */
  settle(): void {
    if (this.pending.length > 0) this.pending = [];
  }

  /**
   * After DDL (this session's or another's) the catalog may not show the code it changed: reload
   * first. The session's own DDL stays kept until no transaction is open and a later catalog is in force.
   */
  before(moment: Moment): RefreshCatalog | undefined {
    if (moment.outdated && !moment.refreshed) return { outcome: 'refresh-catalog', unknownRoutines: [] };
    if (moment.idle && !moment.outdated) this.settle();
    return undefined;
  }

  /**
   * The verdict of the guardrails on facts (PREPAREd statements resolved), and the facts with the
   * stored code they run. A refusal that names routines the catalog does not know asks for a reload
   * first, once. `shapeOf`: the text's shape, asked only by unknown-shape rules.
   */
  judge(
    facts: StatementFacts,
    policy: Policy,
    moment: Moment,
    shapeOf: () => TextShape | null = () => null,
  ): { verdict: Verdict<never>; reached: StatementFacts } {
    const code = withStoredCode(facts, this.code(), this.pending);
    const shape = shapeContext(this.hooks, this.identity, this.database, shapeOf);
    const decision = decide(code.facts, this.identity, policy, {
      database: this.database,
      ...(moment.released && { released: moment.released }),
      ...(shape && { shape }),
      ...(this.tool && { tool: this.tool }),
    });
    if (decision.dryRun.length > 0) this.hooks?.dryRun?.(decision.dryRun, this.identity);
    const changesCode = changesStoredCode(code.facts);
    if (decision.outcome === 'refuse' && code.unknown.length > 0 && !moment.refreshed)
      return { verdict: { outcome: 'refresh-catalog', unknownRoutines: code.unknown }, reached: code.facts };
    if (changesCode && decision.outcome !== 'refuse' && this.pending.length < MAX_PENDING)
      this.pending.push(code.facts);
    return {
      verdict: guardrailVerdict(decision, { code: code.code, facts: code.facts, changesCode }),
      reached: code.facts,
    };
  }
}
