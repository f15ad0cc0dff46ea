import type { GuardrailAction } from '../../../../crds/guardrail.ts';
import { FOREIGN_WRITE } from '../../sql/analyze/pg-code-catalog.ts';
import type { StatementFacts } from '../../sql/analyze/statement-facts.ts';

/**
 * Blast radius, decided by the database rather than by reading the WHERE clause: no syntactic rule can
 * tell `id != -1` or `body LIKE $1` bound to `%` from a narrow filter, but the database can count what
 * a statement changed before its transaction commits. The protocols measure (PostgreSQL from the
 * transaction's own statistics, MySQL from its counters) and use these pure rules to judge the count.
 */

/** One row-limit rule in force for a statement (a Guardrail rule with maxAffectedRows or ...PerMinute). */
export interface RowLimit {
  readonly guardrail: string;
  readonly rule: string;
  readonly action: GuardrailAction;
  /** The guardrail is in dryRun mode: an exceeded limit is recorded, never enforced. */
  readonly dryRun: boolean;
  /** The most rows the transaction may update or delete. */
  readonly perTransaction?: number;
  /** The most rows the identity may update or delete over any 60 seconds. */
  readonly perMinute?: number;
  /** The rule's message: what to do instead. */
  readonly advice?: string;
}

/**
 * Statement kinds that run statements the analysis may not see whole. A call of a routine is not one:
 * the gates reach its body (sql/code-reach.ts), whose statements are in the facts, and a body that
 * cannot be read is a `dynamic-sql` finding.
 */
const OPAQUE_KINDS: ReadonlySet<string> = new Set(['do', 'execute', 'unknown']);

/**
 * Whether running the statement may update or delete rows, closed-world: a write class, a written
 * table, DO or EXECUTE, or code Gatehouse cannot see into (dynamic SQL, unknown statements, routines
 * the catalog does not know) all count as "may". Pass the facts with the stored code they reach. The
 * measurement, not this, decides how many rows changed; this only spares reads its cost.
 */
export function mayChangeRows(facts: StatementFacts): boolean {
  if (!facts.parsed) return true;
  if (facts.classes.includes('write') || facts.tablesWritten.length > 0) return true;
  if (facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement')) return true;
  return facts.statements.some((s) => OPAQUE_KINDS.has(s.kind));
}

/** Transaction control that ends the transaction: what was changed before it commits (or not) unmeasured. */
const ENDS_TRANSACTION: ReadonlySet<string> = new Set(['COMMIT', 'ROLLBACK', 'PREPARE TRANSACTION']);

/**
 * Why the rows a statement changes cannot be counted before they are committed, or undefined when
 * they can. The count is the transaction's own, read after the statement and before anything can
 * commit: a text that ends its transaction itself (COMMIT in the same Query, a procedure or DO body
 * with COMMIT, or one that runs code Gatehouse cannot see into, which may commit), TRUNCATE (which
 * the database does not count as deleted rows) and writes over other connections (dblink) escape it.
 * Under an enforcing row limit such statements are refused.
 */
export function uncountableChange(facts: StatementFacts): string | undefined {
  const finalEnd = finalTransactionEnd(facts);
  for (const s of facts.statements) {
    if (s.kind === 'truncate') return 'TRUNCATE removes rows the database does not count; use DELETE';
    if (s === finalEnd) continue;
    if (s.kind === 'transaction' && ENDS_TRANSACTION.has(s.command))
      return s.via.length > 0
        ? `it runs ${s.command} inside ${s.via.join(' > ')}, which ends the transaction before its changes can be counted`
        : `${s.command} in the same text as a change ends the transaction before it can be counted; send it separately`;
  }
  const foreign = facts.statements.find((s) => s.command === FOREIGN_WRITE);
  if (foreign)
    return `it writes ${foreign.summary}, whose rows change on another server, which this database does not count`;
  if (
    facts.functions.some((f) =>
      f
        .slice(f.lastIndexOf('.') + 1)
        .toLowerCase()
        .startsWith('dblink'),
    )
  )
    return 'dblink changes rows over another connection, which the database does not count for this transaction';
  const runsCode = facts.statements.some((s) => s.via.length === 0 && (s.kind === 'call' || s.kind === 'do'));
  const opaque =
    !facts.parsed || facts.findings.some((f) => f.kind === 'dynamic-sql' || f.kind === 'unknown-statement');
  if (opaque && runsCode)
    return 'it runs code Gatehouse cannot see into, which may end the transaction before its changes can be counted';
  // Appended to an unparsed text, the proxy's count could become part of the client's SQL.
  if (!facts.parsed) return 'the statement does not parse, so its changes cannot be counted';
  return undefined;
}

/**
 * The statement that ends the text's transaction as its very last top-level statement (`BEGIN; UPDATE
 * ...; COMMIT`), when it is the text's only transaction end: a protocol that can run the row check
 * just before it (PostgreSQL's simple protocol does) counts the transaction before it commits.
 */
export function finalTransactionEnd(facts: StatementFacts): StatementFacts['statements'][number] | undefined {
  const ends = facts.statements.filter((s) => s.kind === 'transaction' && ENDS_TRANSACTION.has(s.command));
  const [end] = ends;
  if (ends.length !== 1 || !end || end.via.length > 0) return undefined;
  if (facts.statementCount < 2 || end.topLevel !== facts.statementCount - 1) return undefined;
  return end;
}

/** What the database counted for a transaction, and what the identity changed recently. */
export interface RowCounts {
  /** Rows the transaction has updated or deleted so far, this statement included. */
  readonly transaction: number;
  /** Of those, the rows counted before this statement (0 at the first measured statement). */
  readonly before: number;
  /** Rows the identity changed over the last 60 s before this statement (RowBudget.spent). */
  readonly minute: number;
}

export interface RowLimitHit {
  readonly limit: RowLimit;
  readonly scope: 'transaction' | 'minute';
  /** The count that went over (rows of the transaction, or of the identity's last minute). */
  readonly count: number;
  readonly max: number;
  /** For the client and the audit record: names the guardrail, the rule, the count and the limit. */
  readonly message: string;
}

export interface RowJudgement {
  /** The first enforcing limit (block or requireApproval) the counts exceed. */
  readonly refusal?: RowLimitHit;
  readonly warnings: readonly RowLimitHit[];
  readonly dryRun: readonly RowLimitHit[];
}

const VERBS: Record<GuardrailAction, string> = {
  block: 'blocked',
  requireApproval: 'requires approval for',
  warn: 'warns about',
};

/**
 * Judges measured counts against the limits. `what` names the statement (`DELETE FROM orders`); the
 * messages say the count and the limit, never a value from the rows.
 */
export function judgeRowCounts(limits: readonly RowLimit[], counts: RowCounts, what: string): RowJudgement {
  const enforced: RowLimitHit[] = [];
  const warnings: RowLimitHit[] = [];
  const dryRun: RowLimitHit[] = [];
  const changedNow = Math.max(0, counts.transaction - counts.before);
  for (const limit of limits) {
    for (const hit of hitsOf(limit, counts.transaction, counts.minute + changedNow, what)) {
      if (limit.dryRun) dryRun.push(hit);
      else if (limit.action === 'warn') warnings.push(hit);
      else enforced.push(hit);
    }
  }
  const refusal = enforced.find((h) => h.limit.action === 'block') ?? enforced[0];
  return { ...(refusal && { refusal }), warnings, dryRun };
}

function hitsOf(limit: RowLimit, transaction: number, minute: number, what: string): RowLimitHit[] {
  const hits: RowLimitHit[] = [];
  const head = `Gatehouse guardrail "${limit.guardrail}" (rule ${limit.rule}) ${VERBS[limit.action]} ${what}`;
  const advice = limit.advice ? ` ${limit.advice}` : '';
  const outcome = limit.action === 'warn' || limit.dryRun ? '' : '; nothing it changed was kept';
  if (limit.perTransaction !== undefined && transaction > limit.perTransaction)
    hits.push({
      limit,
      scope: 'transaction',
      count: transaction,
      max: limit.perTransaction,
      message: `${head}: its transaction updated or deleted ${transaction} rows, over the limit of ${limit.perTransaction} (maxAffectedRows)${outcome}.${advice}`,
    });
  if (limit.perMinute !== undefined && minute > limit.perMinute)
    hits.push({
      limit,
      scope: 'minute',
      count: minute,
      max: limit.perMinute,
      message: `${head}: the identity updated or deleted ${minute} rows in the last minute, over the limit of ${limit.perMinute} (maxAffectedRowsPerMinute)${outcome}.${advice}`,
    });
  return hits;
}

/**
 * The largest transaction count the enforcing limits allow for the next statement, or undefined when
 * none enforces one: what a protocol can hand to the database to check server-side before the
 * transaction can commit. `before` and `minute` are as in RowCounts.
 */
export function rowCap(
  limits: readonly RowLimit[],
  counts: Pick<RowCounts, 'before' | 'minute'>,
): number | undefined {
  let cap: number | undefined;
  for (const limit of limits) {
    if (limit.dryRun || limit.action === 'warn') continue;
    if (limit.perTransaction !== undefined) cap = Math.min(cap ?? Infinity, limit.perTransaction);
    // The statement may add (perMinute - minute) rows to what the transaction had counted before it.
    if (limit.perMinute !== undefined)
      cap = Math.min(cap ?? Infinity, Math.max(0, limit.perMinute - counts.minute) + counts.before);
  }
  return cap;
}

/**
 * Rows each identity changed over the last 60 s, shared by every session of one proxy. Counts are kept
 * in one-second buckets, so memory per identity is bounded whatever the statement rate.
 */
export class RowBudget {
  private readonly bySubject = new Map<string, { seconds: number[]; rows: number[] }>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Rows the subject changed in the last 60 s. */
  spent(subject: string): number {
    const entry = this.bySubject.get(subject);
    if (!entry) return 0;
    this.prune(subject, entry);
    let total = 0;
    for (const rows of entry.rows) total += rows;
    return total;
  }

  add(subject: string, rows: number): void {
    if (rows <= 0) return;
    const second = Math.floor(this.now() / 1000);
    let entry = this.bySubject.get(subject);
    if (!entry) {
      entry = { seconds: [], rows: [] };
      this.bySubject.set(subject, entry);
    }
    const last = entry.seconds.length - 1;
    if (last >= 0 && entry.seconds[last] === second) entry.rows[last]! += rows;
    else {
      entry.seconds.push(second);
      entry.rows.push(rows);
    }
    this.prune(subject, entry);
  }

  private prune(subject: string, entry: { seconds: number[]; rows: number[] }): void {
    const oldest = Math.floor(this.now() / 1000) - WINDOW_SECONDS;
    let drop = 0;
    while (drop < entry.seconds.length && entry.seconds[drop]! <= oldest) drop++;
    if (drop > 0) {
      entry.seconds.splice(0, drop);
      entry.rows.splice(0, drop);
    }
    if (entry.seconds.length === 0) this.bySubject.delete(subject);
  }
}

const WINDOW_SECONDS = 60;
