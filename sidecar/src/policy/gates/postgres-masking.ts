import type { Identity } from '../../identity/identity.ts';
import type { PgCodeCatalog } from '../../sql/analyze/pg-code-catalog.ts';
import type { Catalog } from '../../sql/lineage/catalog.ts';
import { outputLineage } from '../../sql/lineage/output-lineage.ts';
import { applySessionEffects, EMPTY_SESSION, type SessionState } from '../../sql/lineage/session.ts';
import type { StatementLineage } from '../../sql/lineage/types.ts';
import { parseTree } from '../../sql/parse-tree.ts';
import type { MaskingSettings } from '../masking/masking-for.ts';
import { type AccessExemptionSource, MaskingSettingsCache } from '../masking/masking-settings-cache.ts';
import { type PlanBasis, planInForce } from '../masking/plan-basis.ts';
import { type SampledKinds, sensitiveColumns } from '../masking/sensitive-columns.ts';
import {
  MASK_EVERYTHING,
  planStatementMasking,
  type StatementMaskPlan,
} from '../masking/statement-mask-plan.ts';
import { clearTouch } from '../masking/traced-touch.ts';
import type { PolicySource } from '../sources.ts';
import type { TracedTouch } from './statement-touched.ts';

/** What the proxy knows of the upstream's tables: the catalog and what value sampling found. */
export interface CatalogSnapshot {
  readonly catalog: Catalog;
  readonly samples: SampledKinds;
  /** The stored code statements may run (functions, triggers, rules, views), for the guardrails. */
  readonly code: PgCodeCatalog;
}

/**
 * Masking of one Query or Parse text: a plan per statement, or why it must not run, with the catalog
 * snapshot and settings it was planned under (a prepared statement's is planned again when either is
 * no longer the one in force, see plan-basis.ts).
 */
export interface TextMasking extends PlanBasis {
  readonly settings: MaskingSettings;
  readonly catalog: CatalogSnapshot | undefined;
  /** One per statement of the text, in order; results past the end get `MASK_EVERYTHING`. */
  readonly plans: readonly StatementMaskPlan[];
  readonly refusal?: string;
  /** With a refusal: the masked columns whose clear values the statement needs (StatementMaskPlan.needs). */
  readonly needs?: readonly string[];
}

/**
 * One session's masking checkpoint. It keeps the session state lineage needs (temporary views,
 * cursors, prepared statements, search_path), so that a FETCH or EXECUTE is traced to the query
 * behind it.
 */
export class MaskingGate {
  private session: SessionState = EMPTY_SESSION;
  private readonly policy: PolicySource;
  private readonly snapshot: () => CatalogSnapshot | undefined;
  private readonly cache: MaskingSettingsCache<MaskingSettings>;

  constructor(
    policy: PolicySource,
    identity: Identity,
    database: string,
    snapshot: () => CatalogSnapshot | undefined,
    access?: AccessExemptionSource,
  ) {
    this.policy = policy;
    this.snapshot = snapshot;
    this.cache = new MaskingSettingsCache(identity, database, (settings) => settings, access);
  }

  /** The masking in force for this identity now (policy reloads and exemption expiry apply at once). */
  settings(): MaskingSettings | undefined {
    return this.cache.get(this.policy());
  }

  /** Forget the session state lineage followed (a connection reset). */
  reset(): void {
    this.session = EMPTY_SESSION;
  }

  /** Plans masking for a text the guardrails allowed; undefined when this identity sees clear values. */
  check(sql: string, shape?: string): TextMasking | undefined {
    const settings = this.settings();
    if (!settings) return undefined;
    const snapshot = this.snapshot();
    // Without a catalog nothing can be shown to be clean, so every result column is masked.
    if (!snapshot) return { settings, catalog: undefined, plans: [] };
    const lineage = outputLineage(sql, snapshot.catalog, {
      session: this.session,
      ...(shape !== undefined && { shape }),
    });
    if (lineage.parseError)
      return {
        settings,
        catalog: snapshot,
        plans: [],
        refusal: 'Gatehouse cannot trace which columns it would return',
      };
    if (lineage.statements.some((s) => s.kind === 'CopyStmt') && binaryCopyOut(sql))
      return {
        settings,
        catalog: snapshot,
        plans: [],
        refusal: 'COPY TO in binary format cannot be checked for personal data; use the text or CSV format',
      };
    const sensitivity = sensitiveColumns(snapshot.catalog, settings, snapshot.samples);
    const plans: StatementMaskPlan[] = [];
    for (const statement of lineage.statements) {
      const plan = planStatementMasking(statement, sensitivity, settings);
      if (plan.refusal)
        return {
          settings,
          catalog: snapshot,
          plans: [],
          refusal: plan.refusal,
          ...(plan.needs && { needs: plan.needs }),
        };
      plans.push(plan);
    }
    this.follow(lineage.statements);
    return { settings, catalog: snapshot, plans };
  }

  /**
   * Whether a plan check made earlier (a prepared statement's) is still the one it would make now:
   * the same catalog snapshot and settings, and no DDL through the proxy outdating the catalog.
   */
  inForce(masking: TextMasking, outdated: boolean): boolean {
    return planInForce(masking, this.snapshot(), this.settings(), outdated);
  }

  /**
   * For an identity that sees clear values: the source columns of each statement's output, for its
   * audit record (clearTouch); undefined when lineage cannot read the text (the record then says so).
   * Follows the session state as check does, so a later EXECUTE or FETCH is traced as well.
   */
  trace(sql: string, shape?: string): readonly TracedTouch[] | undefined {
    const snapshot = this.snapshot();
    if (!snapshot) return undefined;
    const lineage = outputLineage(sql, snapshot.catalog, {
      session: this.session,
      ...(shape !== undefined && { shape }),
    });
    if (lineage.parseError) return undefined;
    this.follow(lineage.statements);
    return lineage.statements.map(clearTouch);
  }

  private follow(statements: readonly StatementLineage[]): void {
    for (const statement of statements)
      if (statement.effects.length > 0) this.session = applySessionEffects(this.session, statement.effects);
  }
}

/**
 * Whether the text has a COPY ... TO in binary format: its rows cannot be value-scanned, so a session
 * that sees masked values may not run it (the tree is the one lineage has just parsed).
 */
function binaryCopyOut(sql: string): boolean {
  const stmts = parseTree(sql);
  if (typeof stmts === 'string') return false;
  return stmts.some((raw) => {
    const copy = (raw.stmt as { CopyStmt?: { is_from?: boolean; options?: unknown[] } } | undefined)
      ?.CopyStmt;
    if (!copy || copy.is_from) return false;
    return (copy.options ?? []).some((option) => {
      const def = (option as { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } })
        .DefElem;
      return def?.defname === 'format' && def.arg?.String?.sval?.toLowerCase() === 'binary';
    });
  });
}

/**
 * Whether the server's error and notice texts for this text must be withheld: some statement of it
 * touches masked data, or nothing could be traced (see StatementMaskPlan.withholdsServerText).
 */
export function withholdsServerText(masking: TextMasking): boolean {
  return masking.plans.length === 0 || masking.plans.some((plan) => plan.withholdsServerText);
}

/** The plan for the result of statement `index` of a text. */
export function planAt(masking: TextMasking, index: number): StatementMaskPlan {
  return masking.plans[index] ?? MASK_EVERYTHING;
}
